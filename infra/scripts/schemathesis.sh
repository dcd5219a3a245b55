#!/usr/bin/env bash
# Fuzzes the HTTP API against its contract, docs/openapi.yaml, with Schemathesis.
#
#   infra/scripts/schemathesis.sh [extra `schemathesis run` arguments...]
#
# Installs Schemathesis (pinned) into .tools/schemathesis-venv and builds the local server
# (phase 1, with the network: registries only); then, inside a private network namespace
# (`unshare -n`: only loopback, so nothing the fuzzer stores, such as a webhook URL, can make
# the server reach another host), starts the local server (`cargo run -p local-server`:
# embedded store and secrets, Google sandbox) on free ports with a throwaway data folder,
# takes the operator key and the demo tenant's admin key from that folder, runs
# `schemathesis run` (every check, bounded in examples and time) and stops the server.
# Exits with Schemathesis' status; on failure the server log and the reports are kept.
#
# Knobs (environment): ST_MAX_EXAMPLES (default 30 per operation), ST_MAX_TIME (seconds for
# the whole run, default 240: the fuzzing and stateful phases repeat until it is spent),
# ST_CHECKS (default: every check), ST_SEED, ST_WORKERS (default 1), ST_REPORT_DIR (where
# the JUnit and NDJSON reports go), CGS_NO_NETNS=1 (stay in the host network namespace).
#
# Per-operation settings (the generated config below):
# * operations tagged `not-available-yet` answer 501 by design: the checks that judge the
#   status of an answer to good or bad input (not_a_server_error, positive_data_acceptance,
#   negative_data_rejection, missing_required_header) are off for them; conformance stays;
# * positive_data_acceptance also accepts the answers the schema cannot foresee: 400 for an
#   opaque page token or OAuth `state` that was never handed out, 422 where the code checks a
#   value against stored state or other fields (a return URL against the allow-list, a
#   client file's redirect URIs, `rotate_webhook_secret` without a webhook, an event's end
#   before its start or an unknown time zone).
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.tools/schemathesis-venv"
STAMP="$VENV/.schemathesis-$SCHEMATHESIS_VERSION"
SPEC="$ROOT/docs/openapi.yaml"

log() { printf '[schemathesis] %s\n' "$*" >&2; }
die() { printf '[schemathesis] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=infra/scripts/netns.sh
source "$ROOT/infra/scripts/netns.sh"

cd "$ROOT"

# ---- phase 1: outside the namespace (registries reachable) ----------------------------
if [[ -z "${CGS_ST_IN_NETNS:-}" ]]; then
  if [[ -f "$STAMP" && -x "$VENV/bin/schemathesis" ]]; then
    log "schemathesis $SCHEMATHESIS_VERSION up to date"
  else
    command -v python3 >/dev/null || die "python3 not found (need 3.10+)"
    rm -rf "$VENV"
    log "creating $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
    log "pip install schemathesis==$SCHEMATHESIS_VERSION"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
      "schemathesis==$SCHEMATHESIS_VERSION"
    touch "$STAMP"
  fi
  log "building the local server"
  cargo build -q -p local-server

  enter_netns CGS_ST_IN_NETNS "$SELF" \
    "running in the host namespace: a fuzzed webhook URL could point anywhere" "$@"
fi

# ---- phase 2: the local server ---------------------------------------------------------
loopback_up "$CGS_ST_IN_NETNS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cgs-schemathesis.XXXXXX")"
DATA_DIR="$WORK/data"
PORT="$(free_port)"
SANDBOX_PORT="$(free_port)"
while [[ "$SANDBOX_PORT" == "$PORT" ]]; do SANDBOX_PORT="$(free_port)"; done
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""
KEEP_WORK=0

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    log "stopping the local server (pid $SERVER_PID)"
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  if [[ $rc -ne 0 || $KEEP_WORK -eq 1 ]]; then
    log "kept $WORK (server.log, reports)"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting the local server on $BASE (data in $DATA_DIR)"
# `cargo run` replaces itself with the server (exec), so $! is the server. Already built in
# phase 1: --offline, the namespace has no network.
CGS_DATA_DIR="$DATA_DIR" CGS_PORT="$PORT" CGS_SANDBOX_PORT="$SANDBOX_PORT" \
  PUBLIC_BASE_URL="$BASE" RUST_LOG="${RUST_LOG:-warn}" \
  cargo run -q --offline -p local-server >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the local server exited"; }
  if [[ -f "$DATA_DIR/demo-credentials.json" ]] &&
    python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/v1/admin/accounts", timeout=1)
except urllib.error.HTTPError:
    pass' "$BASE" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
[[ -n "$ready" ]] || { cat "$WORK/server.log" >&2; die "the local server did not answer on $BASE"; }

# Keys: never on a command line, only in this process's environment.
CGS_ST_ADMIN_KEY="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin_key"])' "$DATA_DIR/demo-credentials.json")"
CGS_ST_OPERATOR_KEY="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["operator-key"])' "$DATA_DIR/secrets.json")"
[[ -n "$CGS_ST_ADMIN_KEY" && -n "$CGS_ST_OPERATOR_KEY" ]] || die "no demo admin key or operator key in $DATA_DIR"
export CGS_ST_ADMIN_KEY CGS_ST_OPERATOR_KEY

# ---- phase 3: the run ------------------------------------------------------------------
CONFIG="$WORK/schemathesis.toml"
cat >"$CONFIG" <<'TOML'
# Each security scheme of docs/openapi.yaml gets its key: the operator key for
# `operatorKey`, the demo tenant's admin key (the admin scope covers sync) for `tenantKey`.
[auth.openapi.operatorKey]
bearer = "${CGS_ST_OPERATOR_KEY}"

[auth.openapi.tenantKey]
bearer = "${CGS_ST_ADMIN_KEY}"

# 501 by design: judge only whether the answers conform to the contract.
[[operations]]
include-tag = "not-available-yet"
checks.not_a_server_error.enabled = false
checks.positive_data_acceptance.enabled = false
checks.negative_data_rejection.enabled = false
checks.missing_required_header.enabled = false

# An opaque token that was never handed out (a page token, an OAuth state) is rightly
# refused with 400.
[[operations]]
include-operation-id = ["listApiKeys", "listAccounts", "oauthCallback"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

# Values checked against stored state or against other fields: 422 for a schema-valid body.
[[operations]]
include-operation-id = ["putGoogleClient", "patchSettings", "connectGoogle", "putEvent"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
TOML

REPORT_DIR="${ST_REPORT_DIR:-$WORK/report}"
args=(
  run "$SPEC"
  --url "$BASE"
  --max-examples "${ST_MAX_EXAMPLES:-30}"
  --max-time "${ST_MAX_TIME:-240}"
  --workers "${ST_WORKERS:-1}"
  --request-timeout 10
  --continue-on-failure
  --report junit,ndjson --report-dir "$REPORT_DIR"
)
# Every check is on unless ST_CHECKS names some (a --checks option would also override the
# per-operation settings above).
[[ -n "${ST_CHECKS:-}" ]] && args+=(--checks "$ST_CHECKS")
[[ -n "${ST_SEED:-}" ]] && args+=(--seed "$ST_SEED")

log "schemathesis ${args[*]} $*"
set +e
"$VENV/bin/schemathesis" --config-file "$CONFIG" "${args[@]}" "$@"
status=$?
set -e
if [[ $status -ne 0 ]]; then
  log "failures found (exit $status); reports in $REPORT_DIR"
fi
exit $status
