#!/usr/bin/env bash
# Benchmarks (release build), run by `make bench` under a throwaway PostgreSQL (scripts/pg.sh run
# sets TEST_DATABASE_URL and PG_BIN). Prints a Markdown report; docs/benchmarks.md keeps the
# figures of the last recorded run.
#
#   1. migrate-up on an N-revision chain (each revision: a table and an index) vs `psql -1 -f`
#      running the same SQL (retort's own offline output) in one session, alternating, median
#      of R rounds, a CHECKPOINT before each (`make bench` puts the server on /dev/shm, so disk
#      noise does not drown the difference).
#   2. migrate-current and migrate-history on that history (mean of 20 runs).
#   3. graph operations on 10,000 revisions (the graph module's timing test).
#   4. peak memory (max RSS) of migrate-up on the chain.
#   5. lint of the chain (migrate-check --offline --lint-all) beside squawk's CLI on the same
#      files (squawk-cli from .venv, see scripts/setup.sh; SQUAWK= another binary), mean of 5;
#      squawk's parser against retort's statement splitter (the lint::split_bench test).
#   6. migrate-check --round-trip on the first 100 revisions against 3x migrate-up of them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_REVISIONS:-1000}
ROUNDS=${BENCH_ROUNDS:-7}
BIN=$ROOT/target/release
PSQL=${PG_BIN:?run through scripts/pg.sh run}/psql
: "${TEST_DATABASE_URL:?run through scripts/pg.sh run}"

work=$(mktemp -d /tmp/retort-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/migrations"

# the chain
for i in $(seq 1 "$N"); do
  rev=$(printf '%04d' "$i")
  prev=$(printf '%04d' $((i - 1)))
  {
    echo "-- revision: $rev"
    [ "$i" -gt 1 ] && echo "-- down_revision: $prev"
    echo "-- message: table $i"
    echo
    echo "-- migrate:up"
    echo "CREATE TABLE bench_$i (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
    echo "CREATE INDEX bench_${i}_name_idx ON bench_$i (name);"
    echo
    echo "-- migrate:down"
    echo "DROP TABLE bench_$i;"
  } > "$work/migrations/${rev}_table_$i.sql"
done

db_url() { # replace the database name in TEST_DATABASE_URL
  local base=${TEST_DATABASE_URL%/*}
  echo "$base/$1"
}
admin() { "$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

cd "$work"
# the same SQL for psql, minus retort's own BEGIN/COMMIT (psql -1 wraps it in one transaction)
"$BIN/migrate-up" --dir migrations --sql heads 2>/dev/null | grep -v -e '^BEGIN;$' -e '^COMMIT;$' > chain.sql

psql_runs=(); retort_runs=()
for r in $(seq 1 "$ROUNDS"); do
  admin "DROP DATABASE IF EXISTS bench_psql"; admin "CREATE DATABASE bench_psql"
  admin "DROP DATABASE IF EXISTS bench_retort"; admin "CREATE DATABASE bench_retort"
  admin "CHECKPOINT"
  t=$(now_ns); "$PSQL" "$(db_url bench_psql)" -qX -1 -v ON_ERROR_STOP=1 -f chain.sql >/dev/null; p=$(ms_since "$t")
  admin "CHECKPOINT"
  t=$(now_ns); DATABASE_URL=$(db_url bench_retort) "$BIN/migrate-up" --dir migrations -q; m=$(ms_since "$t")
  echo "round $r: psql -1 -f ${p} ms, migrate-up ${m} ms" >&2
  psql_runs+=("$p"); retort_runs+=("$m")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
best_psql=$(median "${psql_runs[@]}")
best_retort=$(median "${retort_runs[@]}")
ratio=$(python3 -c "print(f'{$best_retort/$best_psql:.3f}')")

mean_ms() { # mean wall time of a command over 20 runs, in ms with one decimal
  local t; t=$(now_ns)
  for _ in $(seq 1 20); do "$@" >/dev/null 2>&1; done
  python3 -c "print(f'{($(now_ns) - $t) / 20 / 1e6:.1f}')"
}
export DATABASE_URL; DATABASE_URL=$(db_url bench_retort)
cur=$(mean_ms "$BIN/migrate-current" --dir migrations)
hist=$(mean_ms "$BIN/migrate-history" --dir migrations)
histi=$(mean_ms "$BIN/migrate-history" --dir migrations --indicate-current)
check=$(mean_ms "$BIN/migrate-check" --dir migrations)

admin "DROP DATABASE IF EXISTS bench_mem"; admin "CREATE DATABASE bench_mem"
rss_up=$(DATABASE_URL=$(db_url bench_mem) /usr/bin/time -f %M "$BIN/migrate-up" --dir migrations -q 2>&1 >/dev/null | tail -n 1)
rss_hist=$(/usr/bin/time -f %M "$BIN/migrate-history" --dir migrations 2>&1 >/dev/null | tail -n 1)
admin "DROP DATABASE bench_psql"; admin "DROP DATABASE bench_retort"; admin "DROP DATABASE bench_mem"

mean5_ms() { # like mean_ms, over 5 runs
  local t; t=$(now_ns)
  for _ in $(seq 1 5); do "$@" >/dev/null 2>&1 || true; done
  python3 -c "print(f'{($(now_ns) - $t) / 5 / 1e6:.1f}')"
}
lint=$(mean5_ms "$BIN/migrate-check" --offline --lint-all --dir migrations)
SQUAWK=${SQUAWK:-${RETORT_VENV:-$ROOT/.venv}/bin/squawk}
if [ -x "$SQUAWK" ]; then
  squawk_ms="$(mean5_ms "$SQUAWK" migrations/*.sql) ms ($("$SQUAWK" --version))"
else
  squawk_ms="not installed (scripts/setup.sh)"
fi
split=$( { cd "$ROOT" && cargo test -q -p retort --release --lib lint::split_bench -- --ignored --nocapture 2>/dev/null | grep '^split '; } || true)

mkdir migrations100; cp $(ls migrations/*.sql | head -n 100) migrations100/
admin "DROP DATABASE IF EXISTS bench_rt"; admin "CREATE DATABASE bench_rt"
t=$(now_ns); DATABASE_URL=$(db_url bench_rt) "$BIN/migrate-check" --dir migrations100 --round-trip -q >/dev/null || true; rt=$(ms_since "$t")
up3=0
for _ in 1 2 3; do
  admin "DROP DATABASE IF EXISTS bench_up100"; admin "CREATE DATABASE bench_up100"
  t=$(now_ns); DATABASE_URL=$(db_url bench_up100) "$BIN/migrate-up" --dir migrations100 -q; up3=$((up3 + $(ms_since "$t")))
done
admin "DROP DATABASE bench_rt"; admin "DROP DATABASE bench_up100"
rt_ratio=$(python3 -c "print(f'{$rt/$up3:.2f}')")

graph=$( { cd "$ROOT" && cargo test -q -p retort --release --lib graph::bench -- --ignored --nocapture 2>/dev/null | grep '^graph '; } || true)

echo "psql rounds (ms): ${psql_runs[*]}; migrate-up rounds (ms): ${retort_runs[*]}" >&2
cat <<EOT
## Results ($(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'))

| what | figure | target |
|---|---|---|
| \`psql -1 -f\` on the $N-revision chain (median of $ROUNDS) | ${best_psql} ms | |
| \`migrate-up\` on the same chain (median of $ROUNDS) | ${best_retort} ms | |
| ratio of the medians, migrate-up / psql | ${ratio}x | < 1.15x |
| \`migrate-current\` ($N revisions, mean of 20) | ${cur} ms | < 50 ms |
| \`migrate-history\` ($N revisions, mean of 20) | ${hist} ms | < 50 ms |
| \`migrate-history --indicate-current\` | ${histi} ms | |
| \`migrate-check\` | ${check} ms | |
| peak memory, \`migrate-up\` of $N revisions | $((rss_up / 1024)) MB (${rss_up} KiB) | < 30 MB |
| peak memory, \`migrate-history\` | $((rss_hist / 1024)) MB (${rss_hist} KiB) | |
| lint of the $N scripts, \`migrate-check --offline --lint-all\` (mean of 5) | ${lint} ms | |
| \`squawk\` CLI on the same files (mean of 5) | ${squawk_ms} | |
| \`migrate-check --round-trip\`, 100 revisions (shadow database) | ${rt} ms | |
| 3x \`migrate-up\` of the same 100 revisions | ${up3} ms | |
| ratio, round trip / 3x upgrade | ${rt_ratio}x | |

Statement splitting, squawk's parser against retort's splitter (release, in-process):
\`\`\`
$split
\`\`\`

Graph operations on 10,000 revisions (release, in-process; target < 100 ms each):
\`\`\`
$graph
\`\`\`
EOT

echo
echo "Autogenerate (scripts/bench-autogen.sh):"
echo '```'
"$ROOT/scripts/bench-autogen.sh" 2>/dev/null | grep BENCH || true
echo '```'

echo
"$ROOT/scripts/bench-hnsw.sh"
echo "migrate-import (scripts/bench-import.sh):"
echo '```'
"$ROOT/scripts/bench-import.sh" 2>/dev/null || echo "bench-import failed"
echo '```'
