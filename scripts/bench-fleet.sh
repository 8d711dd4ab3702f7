#!/usr/bin/env bash
# Fleet benchmarks (release build), run by `make bench-fleet` (and `make bench`) under a
# throwaway PostgreSQL (scripts/pg.sh run sets TEST_DATABASE_URL and PG_BIN). Prints Markdown.
#
#   1. 1,000 tenant SCHEMAS of one database (schema-per-tenant), 3 revisions each: the first
#      migrate-up over the fleet, then migrate-check (the status page) and migrate-up again
#      with everything up to date.
#   2. 200 tenant DATABASES x 20 revisions: one `migrate-up --targets --parallel 8` vs a shell
#      loop calling migrate-up once per database (each on 200 fresh databases); then
#      `migrate-check --targets` without and with a schema file (schema drift per target).
#   3. migrate-current / migrate-history on a 10,000-revision chain (mean of 10 runs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
PSQL=${PG_BIN:?run through scripts/pg.sh run}/psql
: "${TEST_DATABASE_URL:?run through scripts/pg.sh run}"
SCHEMAS=${BENCH_SCHEMAS:-1000}
DBS=${BENCH_DATABASES:-200}
REVS=${BENCH_FLEET_REVISIONS:-20}
PAR=${BENCH_PARALLEL:-8}
LONG=${BENCH_LONG:-10000}

work=$(mktemp -d /tmp/retort-bench-fleet.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
db_url() { local base=${TEST_DATABASE_URL%/*}; echo "$base/$1"; }
admin() { "$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

chain() { # chain DIR N: N revisions, each a table with a primary key and an index
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do
    rev=$(printf '%05d' "$i"); prev=$(printf '%05d' $((i - 1)))
    {
      echo "-- revision: $rev"
      [ "$i" -gt 1 ] && echo "-- down_revision: $prev"
      echo "-- message: table $i"
      echo
      echo "-- migrate:up"
      echo "CREATE TABLE t_$i (id bigint PRIMARY KEY, name text NOT NULL);"
      echo "CREATE INDEX t_${i}_name ON t_$i (name);"
      echo
      echo "-- migrate:down"
      echo "DROP TABLE t_$i;"
    } > "$1/${rev}_t.sql"
  done
}

echo "## Fleets ($(date -u +%Y-%m-%d), $(nproc) cores, --parallel $PAR)"
echo

# 1. schemas
chain m3 3
admin "DROP DATABASE IF EXISTS bench_schemas"; admin "CREATE DATABASE bench_schemas"
"$PSQL" "$(db_url bench_schemas)" -qAtX -v ON_ERROR_STOP=1 -c "DO \$\$BEGIN FOR i IN 1..$SCHEMAS LOOP EXECUTE format('CREATE SCHEMA tenant_%s', i); END LOOP; END\$\$" >/dev/null
Q="SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1"
DATABASE_URL=$(db_url bench_schemas)
export DATABASE_URL
t=$(now_ns); "$BIN/migrate-up" -q --dir m3 --targets-query "$Q" --parallel "$PAR" >/dev/null; first=$(ms_since "$t")
t=$(now_ns); "$BIN/migrate-check" -q --dir m3 --targets-query "$Q" --parallel "$PAR" >/dev/null; check=$(ms_since "$t")
t=$(now_ns); "$BIN/migrate-up" -q --dir m3 --targets-query "$Q" --parallel "$PAR" >/dev/null; again=$(ms_since "$t")
unset DATABASE_URL
echo "| $SCHEMAS tenant schemas of one database, 3 revisions | time |"
echo "|---|---|"
echo "| first \`migrate-up --targets-query\` (applies 3 each) | ${first} ms |"
echo "| \`migrate-check --targets-query\`, all up to date | ${check} ms |"
echo "| \`migrate-up --targets-query\` again, all up to date | ${again} ms |"
echo
admin "DROP DATABASE bench_schemas"

# 2. databases
chain m20 "$REVS"
make_dbs() {
  : > targets.txt
  for i in $(seq 1 "$DBS"); do
    admin "DROP DATABASE IF EXISTS bench_f_$i"; admin "CREATE DATABASE bench_f_$i"
    echo "tenant$i=$(db_url "bench_f_$i")" >> targets.txt
  done
}
drop_dbs() { for i in $(seq 1 "$DBS"); do admin "DROP DATABASE IF EXISTS bench_f_$i"; done; }
make_dbs
t=$(now_ns)
while IFS= read -r line; do
  DATABASE_URL=${line#*=} "$BIN/migrate-up" -q --dir m20 >/dev/null
done < targets.txt
loop=$(ms_since "$t")
drop_dbs; make_dbs
t=$(now_ns); "$BIN/migrate-up" -q --dir m20 --targets targets.txt --parallel "$PAR" >/dev/null; fleet=$(ms_since "$t")
t=$(now_ns); "$BIN/migrate-up" -q --dir m20 --targets targets.txt --parallel "$PAR" >/dev/null; rerun=$(ms_since "$t")
t=$(now_ns); "$BIN/migrate-check" -q --dir m20 --targets targets.txt --parallel "$PAR" >/dev/null; check=$(ms_since "$t")
for i in $(seq 1 "$REVS"); do
  echo "CREATE TABLE t_$i (id bigint PRIMARY KEY, name text NOT NULL);"
  echo "CREATE INDEX t_${i}_name ON t_$i (name);"
done > m20-schema.sql
t=$(now_ns); "$BIN/migrate-check" -q --dir m20 --schema m20-schema.sql --targets targets.txt --parallel "$PAR" >/dev/null; drift=$(ms_since "$t")
drop_dbs
echo "| $DBS databases x $REVS revisions | time |"
echo "|---|---|"
echo "| shell loop, one \`migrate-up\` per database | ${loop} ms |"
echo "| \`migrate-up --targets --parallel $PAR\` | ${fleet} ms |"
echo "| the same again, all up to date | ${rerun} ms |"
echo "| \`migrate-check --targets\`, all up to date, no schema file | ${check} ms |"
echo "| \`migrate-check --targets --schema FILE\` (schema drift per target, one replay) | ${drift} ms |"
echo

# 3. a long chain on a fresh database: the replay (a transaction per revision; in one
#    transaction it does not fit the lock table) vs the squashed baseline; then the reading
#    commands on it
chain mlong "$LONG"
head_rev=$(printf '%05d' "$LONG")
admin "DROP DATABASE IF EXISTS bench_long"; admin "CREATE DATABASE bench_long"
t=$(now_ns); DATABASE_URL=$(db_url bench_long) "$BIN/migrate-up" -q --dir mlong --transaction-per-migration >/dev/null; replay=$(ms_since "$t")
admin "DROP DATABASE bench_long"; admin "CREATE DATABASE bench_long"
t=$(now_ns); DATABASE_URL=$(db_url bench_long) "$BIN/migrate-revision" -q --dir mlong --squash "$head_rev" >/dev/null; squash=$(ms_since "$t")
t=$(now_ns); DATABASE_URL=$(db_url bench_long) "$BIN/migrate-up" -q --dir mlong >/dev/null; base=$(ms_since "$t")
echo "| $LONG-revision chain on a fresh database | time |"
echo "|---|---|"
echo "| \`migrate-up --transaction-per-migration\` (the replay) | ${replay} ms |"
echo "| \`migrate-revision --squash $head_rev\` (once: replay in a shadow, render, verify) | ${squash} ms |"
echo "| \`migrate-up\` through the squashed baseline | ${base} ms |"
echo
rm -rf mlong/baselines
mean() { local n=10 total=0; for _ in $(seq 1 $n); do t=$(now_ns); "$@" >/dev/null; total=$(( total + $(ms_since "$t") )); done; echo $(( total / n )); }
# through the header index (the first call writes it), then reading every file
export XDG_CACHE_HOME=$work/cache
DATABASE_URL=$(db_url bench_long) "$BIN/migrate-current" --dir mlong >/dev/null
cur=$(DATABASE_URL=$(db_url bench_long) mean "$BIN/migrate-current" --dir mlong)
hist=$(mean "$BIN/migrate-history" --dir mlong)
cur_full=$(DATABASE_URL=$(db_url bench_long) MIGRATE_CACHE_DIR=off mean "$BIN/migrate-current" --dir mlong)
hist_full=$(MIGRATE_CACHE_DIR=off mean "$BIN/migrate-history" --dir mlong)
unset XDG_CACHE_HOME
echo "| $LONG-revision chain, mean of 10 | header index | every file read (MIGRATE_CACHE_DIR=off) |"
echo "|---|---|---|"
echo "| \`migrate-current\` | ${cur} ms | ${cur_full} ms |"
echo "| \`migrate-history\` | ${hist} ms | ${hist_full} ms |"
admin "DROP DATABASE bench_long"
