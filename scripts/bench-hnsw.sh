#!/usr/bin/env bash
# The HNSW build inside a migration (release migrate-up), run by scripts/bench.sh or alone under
# `scripts/pg.sh run -- scripts/bench-hnsw.sh`: ROWS (default 60,000) x DIMS (384) random
# vectors, the same `CREATE INDEX ... USING hnsw` run once with the script pinning the server's
# defaults (`-- set:` maintenance_work_mem and max_parallel_maintenance_workers as the server has
# them) and once with no header, planned by migrate-up itself (docs/vector-builds.md). Prints a
# Markdown table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${BENCH_HNSW_ROWS:-60000}
DIMS=${BENCH_HNSW_DIMS:-384}
BIN=$ROOT/target/release
PSQL=${PG_BIN:?run through scripts/pg.sh run}/psql
: "${TEST_DATABASE_URL:?run through scripts/pg.sh run}"
[ -x "$BIN/migrate-up" ] || (cd "$ROOT" && cargo build --release --bin migrate-up --bin migrate-down)

db_url() { local base=${TEST_DATABASE_URL%/*}; echo "$base/$1"; }
admin() { "$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
now_ns() { date +%s%N; }

work=$(mktemp -d /tmp/retort-bench-hnsw.XXXXXX)
trap 'rm -rf "$work"; admin "DROP DATABASE IF EXISTS bench_hnsw" || true' EXIT

# one database with the vectors; each build runs in it, dropped between the two
admin "DROP DATABASE IF EXISTS bench_hnsw"; admin "CREATE DATABASE bench_hnsw"
"$PSQL" "$(db_url bench_hnsw)" -qAtX -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE EXTENSION vector;
CREATE TABLE docs (id int PRIMARY KEY, embedding vector($DIMS));
INSERT INTO docs SELECT i, (SELECT array_agg(random())::vector($DIMS) FROM generate_series(1, $DIMS) WHERE i > 0)
  FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE docs;
SQL

build() { # $1: label, $2: header line (or empty)
  local dir=$work/$1
  mkdir -p "$dir/migrations"
  printf -- '-- revision: 001\n-- message: hnsw index\n%s\n-- migrate:up\nCREATE INDEX docs_embedding ON docs USING hnsw (embedding vector_l2_ops);\n\n-- migrate:down\nDROP INDEX docs_embedding;\n' "$2" \
    > "$dir/migrations/001_hnsw.sql"
  admin "CHECKPOINT"
  local t; t=$(now_ns)
  # --allow-unsafe: the lint gate refuses an HNSW build without CONCURRENTLY on a table with rows
  DATABASE_URL=$(db_url bench_hnsw) "$BIN/migrate-up" --dir "$dir/migrations" --ddl-lock-timeout 0 \
    --progress-interval 30s --allow-unsafe 2> "$dir/log" >/dev/null || { cat "$dir/log" >&2; exit 1; }
  grep -h -e 'hnsw build:' "$dir/log" | sed 's/^.*hnsw build: /    /' >&2 || true
  echo $(( ($(now_ns) - t) / 1000000 ))
  grep -h -e 'no longer fits' -e 'needs about' "$dir/log" | sed 's/^/    /' >&2 || true
  DATABASE_URL=$(db_url bench_hnsw) "$BIN/migrate-down" --dir "$dir/migrations" base --yes -q
  "$PSQL" "$(db_url bench_hnsw)" -qAtX -c "DROP TABLE IF EXISTS alembic_version, alembic_version_applied, alembic_version_audit" >/dev/null
}

DEFAULTS=$("$PSQL" "$(db_url bench_hnsw)" -qAtX -c "SELECT 'maintenance_work_mem=' || current_setting('maintenance_work_mem') || ', max_parallel_maintenance_workers=' || current_setting('max_parallel_maintenance_workers')")
echo "server defaults, pinned by the script (-- set: $DEFAULTS):" >&2
plain=$(build defaults "-- set: $DEFAULTS")
echo "planned by migrate-up (no header):" >&2
tuned=$(build planned "")
ratio=$(python3 -c "print(f'{$plain/$tuned:.2f}')")

cat <<EOT
HNSW build inside a migration ($ROWS x $DIMS random vectors, vector_l2_ops, m = 16, ef_construction = 64; $(nproc) cores):

| settings | migrate-up |
|---|---|
| server defaults (\`-- set: $DEFAULTS\`) | $(python3 -c "print(f'{$plain/1000:.1f}')") s |
| planned by migrate-up (no header) | $(python3 -c "print(f'{$tuned/1000:.1f}')") s |
| ratio | ${ratio}x |
EOT
