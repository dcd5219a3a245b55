#!/usr/bin/env bash
# The benchmark: Google requests per idle calendar per day (push vs 10-minute polling),
# change -> CRM webhook latency, sixteen edits in one second by push (how many arrive, the
# last one's latency), scheduler time for 10,000 / 100,000 accounts, the worker's peak memory
# during a 10,000-event initial sync, embedded store writes/s (puts, conditional puts, 2-item
# transactions; in memory and on file, 100,000 items), feed appends/s per tenant with 1, 4 and
# 16 concurrent writers on DynamoDB Local (bench_feed_appends_per_tenant; CGS_BENCH_FEED_RECORDS
# sets the records per run, 2,000 by default), a 10,000-meeting backlog for one user (batch
# requests against ceil(N/50), 409s; BENCH_BACKLOG sets N), and the store operations per
# idle and busy pass (the cost model in docs/benchmarks.md). Runs the ignored `bench_*` cases of
# tests/tests/e2e/bench.rs through the test command (moto, DynamoDB Local and the Google sandbox
# in a private network namespace) and prints lines starting with BENCH.
#
#   infra/scripts/bench.sh              debug build (what the figures in docs/benchmarks.md use)
#   infra/scripts/bench.sh --release    optimized build
#   infra/scripts/bench.sh --sizes      only: each function's release `bootstrap` size for
#                                       this machine's target (the release profile Lambda
#                                       uses; `cargo lambda build --release --arm64` for arm64)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUNCTIONS=(crm-api admin-config oauth-callback google-webhook sync-scheduler sync-worker)
if [[ "${1:-}" == "--sizes" ]]; then
  cd "$ROOT"
  args=()
  for f in "${FUNCTIONS[@]}"; do args+=(-p "$f"); done
  cargo build --release --locked "${args[@]}" >&2
  target="$(rustc -vV | sed -n 's/^host: //p')"
  for f in "${FUNCTIONS[@]}"; do
    bytes=$(stat -c %s "target/release/$f")
    awk -v f="$f" -v b="$bytes" -v t="$target" \
      'BEGIN { printf "BENCH bootstrap %s %d bytes (%.1f MB, %s)\n", f, b, b / 1048576, t }'
  done
  exit 0
fi
exec "$ROOT/infra/scripts/test.sh" "$@" -p e2e-tests --test e2e -- --ignored --nocapture --test-threads=1 bench::bench_
