#!/usr/bin/env bash
# THE test command: installs the test tools, builds the tests, then runs every test of the
# workspace against moto server and DynamoDB Local inside a private network namespace.
#
#   infra/scripts/test.sh [cargo test args...]      e.g. infra/scripts/test.sh -p shared store::
#
# Environment:
#   CGS_SKIP_CARGO=1   do not build or run cargo; start both servers, smoke-check them with
#                      boto3 (list_tables / list_queues / list_secrets) and stop
#   CGS_NO_NETNS=1     do not enter a network namespace (servers on 127.0.0.1; DynamoDB Local
#                      then also listens on the machine's other interfaces)
#   CGS_COMMAND="..."  run this command next to the servers instead of the tests (benchmarks:
#                      see docs/benchmarks.md)
#   CGS_BROWSER=0|1|only  the browser tests (tests/browser: chromium + playwright-core against
#                      the local server); default 1 for a full run, 0 when cargo args are given;
#                      `only` runs just them
#   CGS_BROWSER_SCREENSHOTS=DIR  the browser tests save the settings page's screenshot there
#                      (docs/settings-page.png is one)
#
# Inside, the tests see:
#   CGS_MOTO_ENDPOINT=http://127.0.0.1:PORT       moto server (DynamoDB, Secrets Manager, SQS, ...)
#   CGS_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT   DynamoDB Local
#   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 ...
# Server logs: .tools/logs/moto.log, .tools/logs/dynamodb-local.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/infra/scripts/test.sh"
TOOLS="$ROOT/.tools"
LOGS="$TOOLS/logs"
READY_TIMEOUT="${CGS_READY_TIMEOUT:-60}"

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { printf '[test.sh] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=infra/scripts/netns.sh
source "$ROOT/infra/scripts/netns.sh"

cd "$ROOT"

# ---- phase 1: outside the namespace (network to the registries is available) -------------
if [[ -z "${CGS_IN_NETNS:-}" ]]; then
  bash "$ROOT/infra/scripts/install-tools.sh"
  # ---- browser tests (pages): which, and the local server binary they run against ----
  if [[ -z "${CGS_BROWSER:-}" ]]; then
    if (($#)); then export CGS_BROWSER=0; else export CGS_BROWSER=1; fi
  fi
  if [[ "$CGS_BROWSER" != "0" && "${CGS_SKIP_CARGO:-0}" != "1" && -z "${CGS_COMMAND:-}" ]]; then
    log "cargo build -p local-server --locked (for the browser tests)"
    cargo build -p local-server --locked
  fi
  # ---- end of the browser tests' block ---------------------------------------------------
  if [[ "${CGS_SKIP_CARGO:-0}" != "1" && -z "${CGS_COMMAND:-}" && "${CGS_BROWSER:-}" != "only" ]]; then
    log "cargo test --workspace --no-run --locked (fetch + compile outside the namespace)"
    cargo test --workspace --no-run --locked
  fi

  enter_netns CGS_IN_NETNS "$SELF" \
    "running on 127.0.0.1 in the host namespace: DynamoDB Local listens on all interfaces" "$@"
fi

# ---- phase 2: start the servers --------------------------------------------------------
loopback_up "$CGS_IN_NETNS"
mkdir -p "$LOGS"
PY="$TOOLS/venv/bin/python"

PIDS=()
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Any HTTP answer (even 4xx/5xx) means the server is up.
wait_http() { # name url pid logfile
  local name="$1" url="$2" pid="$3" logfile="$4" deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logfile" >&2 || true
      die "$name exited during start-up (log: $logfile)"
    fi
    if "$PY" - "$url" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
EOF
      log "$name ready at $url ($((SECONDS - deadline + READY_TIMEOUT)) s)"
      return 0
    fi
    sleep 0.3
  done
  tail -n 30 "$logfile" >&2 || true
  die "$name did not answer at $url within ${READY_TIMEOUT}s (log: $logfile)"
}

MOTO_PORT="$(free_port)"
"$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$LOGS/moto.log" 2>&1 &
PIDS+=($!)
MOTO_PID=$!

DDB_PORT="$(free_port)"
while [[ "$DDB_PORT" == "$MOTO_PORT" ]]; do DDB_PORT="$(free_port)"; done
bash "$ROOT/infra/scripts/dynamodb-local.sh" "$DDB_PORT" >"$LOGS/dynamodb-local.log" 2>&1 &
PIDS+=($!)
DDB_PID=$!

wait_http "moto server" "http://127.0.0.1:$MOTO_PORT/moto-api/" "$MOTO_PID" "$LOGS/moto.log"
wait_http "DynamoDB Local" "http://127.0.0.1:$DDB_PORT/" "$DDB_PID" "$LOGS/dynamodb-local.log"

export CGS_MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export CGS_DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL 2>/dev/null || true

# ---- phase 3: run --------------------------------------------------------------------------
if [[ "${CGS_SKIP_CARGO:-0}" == "1" ]]; then
  log "CGS_SKIP_CARGO=1: smoke-checking the servers instead of running cargo"
  "$PY" - <<'EOF'
import os, boto3
moto, ddb = os.environ["CGS_MOTO_ENDPOINT"], os.environ["CGS_DYNAMODB_ENDPOINT"]
for name, url in (("DynamoDB Local", ddb), ("moto", moto)):
    c = boto3.client("dynamodb", endpoint_url=url)
    c.create_table(TableName="smoke", BillingMode="PAY_PER_REQUEST",
                   AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                   KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    c.put_item(TableName="smoke", Item={"PK": {"S": "a"}})
    assert c.get_item(TableName="smoke", Key={"PK": {"S": "a"}})["Item"]["PK"]["S"] == "a"
    print(f"{name}: list_tables -> {c.list_tables()['TableNames']}")
sqs = boto3.client("sqs", endpoint_url=moto)
q = sqs.create_queue(QueueName="smoke.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
sqs.send_message(QueueUrl=q, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
print("moto: list_queues ->", sqs.list_queues().get("QueueUrls"))
sm = boto3.client("secretsmanager", endpoint_url=moto)
sm.create_secret(Name="smoke/operator-key", SecretString="s")
print("moto: list_secrets ->", [s["Name"] for s in sm.list_secrets()["SecretList"]])
print("smoke check ok: DynamoDB Local and moto answer")
EOF
  exit 0
fi

if [[ -n "${CGS_COMMAND:-}" ]]; then
  log "running: $CGS_COMMAND"
  set +e
  bash -c "$CGS_COMMAND"
  exit $?
fi

rc=0
if [[ "${CGS_BROWSER:-0}" != "only" ]]; then
  log "cargo test --workspace --offline --locked $*"
  set +e
  cargo test --workspace --offline --locked "$@"
  rc=$?
  set -e
fi

# ---- browser tests (pages): the local server on the Google sandbox, a fresh data folder,
# Debian's chromium driven by playwright-core (tests/browser/pages.test.js) --------------
run_browser_tests() {
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/local-server" data port sandbox_port pid brc
  [[ -x "$bin" ]] || die "no $bin: build it with cargo build -p local-server"
  data="$(mktemp -d)"
  port="$(free_port)"
  sandbox_port="$(free_port)"
  while [[ "$sandbox_port" == "$port" ]]; do sandbox_port="$(free_port)"; done
  CGS_PORT="$port" CGS_SANDBOX_PORT="$sandbox_port" CGS_DATA_DIR="$data" CGS_GOOGLE=sandbox \
    CGS_STORE=embedded CGS_SECRETS=embedded CGS_QUEUE=inprocess PUBLIC_BASE_URL= \
    "$bin" >"$LOGS/local-server.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http "local server" "http://127.0.0.1:$port/admin/sign-in" "$pid" "$LOGS/local-server.log"
  log "browser tests (chromium $(chromium --version 2>/dev/null | awk '{print $2}'), log: $LOGS/local-server.log)"
  set +e
  (cd "$ROOT/tests/browser" &&
    CGS_BROWSER_API="http://127.0.0.1:$port" CGS_BROWSER_SANDBOX="http://127.0.0.1:$sandbox_port" \
      CGS_BROWSER_ADMIN_KEY="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_key"])' "$data/demo-credentials.json")" \
      node --test --test-concurrency=1 --test-reporter=spec pages.test.js settings.test.js)
  brc=$?
  set -e
  if ((brc != 0)); then
    log "browser tests failed; the local server's passes, warnings and errors (last 80):"
    grep -E 'WARN|ERROR| synced ' "$LOGS/local-server.log" | tail -n 80 >&2 || true
  fi
  kill "$pid" 2>/dev/null || true
  rm -rf "$data"
  return "$brc"
}
if [[ "${CGS_BROWSER:-0}" != "0" ]]; then
  brc=0
  run_browser_tests || brc=$?
  ((rc != 0)) || rc=$brc
fi
# ---- end of the browser tests' block ------------------------------------------------------
exit "$rc"
