#!/usr/bin/env bash
# Autogenerate benchmarks (release build): catalog introspection of a 1,000-table schema
# (target < 2 s) and `migrate-revision --autogenerate` for a 300-table schema.sql against a
# 300-revision history (target < 10 s, end to end, validation included).
#
#   scripts/pg.sh run -- scripts/bench-autogen.sh
#
# Needs TEST_DATABASE_URL (pg.sh run sets it: a throwaway PostgreSQL with pgvector). Prints
# the figures (lines starting with BENCH) and exits non-zero when a target is missed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -n "${TEST_DATABASE_URL:-}" ] || { echo "bench-autogen.sh: TEST_DATABASE_URL is not set (run it under scripts/pg.sh run --)" >&2; exit 2; }
cargo test --release -p retort-bins --test scenarios -- --ignored --nocapture autogen_bench:: --test-threads=1 2>&1 \
  | tee /dev/stderr | grep -o 'BENCH .*' || { echo "bench-autogen.sh: the benchmarks failed" >&2; exit 1; }
