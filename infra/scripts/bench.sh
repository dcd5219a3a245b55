#!/usr/bin/env bash
# The benchmark: Google requests per idle calendar per day (push vs 10-minute polling),
# change -> CRM webhook latency, scheduler time for 10,000 / 100,000 accounts, the worker's
# peak memory during a 10,000-event initial sync. Runs the ignored `bench_*` cases of
# tests/tests/bench.rs through the test command (moto, DynamoDB Local and the Google sandbox
# in a private network namespace) and prints lines starting with BENCH.
#
#   infra/scripts/bench.sh              debug build (what the figures in docs/benchmarks.md use)
#   infra/scripts/bench.sh --release    optimized build
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "$ROOT/infra/scripts/test.sh" "$@" -p e2e-tests --test bench -- --ignored --nocapture --test-threads=1 bench_
