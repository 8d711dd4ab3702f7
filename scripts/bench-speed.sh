#!/usr/bin/env bash
# Speed with every safety on (release build), run by `make bench` under a throwaway PostgreSQL
# (scripts/pg.sh run sets TEST_DATABASE_URL and PG_BIN). Prints Markdown; docs/benchmarks.md
# keeps the figures of the last recorded run. Whole processes everywhere, default options.
#
#   1. Side by side, applying an N-revision chain (each revision: a table and an index) on a
#      fresh database: `psql -1 -f` running the same SQL (the limit), migrate-up, Alembic
#      (`alembic upgrade head`, each revision an op.execute of the same SQL), dbmate (`dbmate
#      up`, the same files) and sqlx-cli (`sqlx migrate run`, the same SQL). The tools take
#      turns in each round (a CHECKPOINT before each); the figure is the median over the
#      rounds of each tool's time divided by psql's in the same round. Peak memory: max RSS
#      (/usr/bin/time). Missing peers are skipped (scripts/install-bench-tools.sh installs them).
#   2. migrate-up at the heads of that chain (nothing pending): one process (mean of 20), and
#      20 processes started at once (wall time until the last exits).
#   3. A LONG-revision chain replayed with one transaction per revision: psql -f running
#      retort's own `--sql --transaction-per-migration` output vs `migrate-up
#      --transaction-per-migration`, alternating, median of paired ratios; then migrate-current
#      and migrate-history on it (mean of 20, the header index warm).
#   4. migrate-check --round-trip on the first 100 revisions vs one migrate-up of them, taking
#      turns for BENCH_RT_ROUNDS rounds (3); the figure is the median of the paired ratios.
#
# BENCH_REVISIONS (1000), BENCH_ROUNDS (5), BENCH_LONG (10000), BENCH_LONG_ROUNDS (3),
# BENCH_RT_ROUNDS (3).
# BEFORE_BIN=<dir of other migrate-* binaries>: their figures beside these (e.g. a build of the
# previous commit), in the same rounds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_REVISIONS:-1000}
ROUNDS=${BENCH_ROUNDS:-5}
LONG=${BENCH_LONG:-10000}
LONG_ROUNDS=${BENCH_LONG_ROUNDS:-3}
RT_ROUNDS=${BENCH_RT_ROUNDS:-3}
BIN=${BIN:-$ROOT/target/release}
BEFORE_BIN=${BEFORE_BIN:-}
VENV=${RETORT_VENV:-$ROOT/.venv}
PSQL=${PG_BIN:?run through scripts/pg.sh run}/psql
: "${TEST_DATABASE_URL:?run through scripts/pg.sh run}"
ALEMBIC=$VENV/bin/alembic
DBMATE=$(command -v dbmate || echo "$VENV/bin/dbmate")
SQLX=$(command -v sqlx || echo "$HOME/.cargo/bin/sqlx")

work=$(mktemp -d /tmp/retort-bench-speed.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
db_url() { local base=${TEST_DATABASE_URL%/*}; echo "$base/$1"; }
admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
fresh() { admin "DROP DATABASE IF EXISTS $1"; admin "CREATE DATABASE $1"; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }

up_sql() { echo "CREATE TABLE bench_$1 (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"; echo "CREATE INDEX bench_${1}_name_idx ON bench_$1 (name);"; }

chain() { # chain DIR COUNT: retort's scripts (the format dbmate reads too)
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do
    rev=$(printf '%05d' "$i"); prev=$(printf '%05d' $((i - 1)))
    {
      echo "-- revision: $rev"
      [ "$i" -gt 1 ] && echo "-- down_revision: $prev"
      echo "-- message: table $i"
      echo
      echo "-- migrate:up"
      up_sql "$i"
      echo
      echo "-- migrate:down"
      echo "DROP TABLE bench_$i;"
    } > "$1/${rev}_table_$i.sql"
  done
}

chain m "$N"
# psql: retort's own offline SQL (with the version-table writes), minus BEGIN/COMMIT (-1 wraps it)
"$BIN/migrate-up" --dir m --sql heads 2>/dev/null | grep -v -e '^BEGIN;$' -e '^COMMIT;$' > chain.sql
# dbmate: the same files, numbered as it wants them
mkdir -p dbm sqlx alembic/versions
for i in $(seq 1 "$N"); do
  v=$(printf '%014d' "$i")
  { echo "-- migrate:up"; up_sql "$i"; echo; echo "-- migrate:down"; echo "DROP TABLE bench_$i;"; } > "dbm/${v}_table_$i.sql"
  up_sql "$i" > "sqlx/${i}_table_$i.sql"
done
cat > alembic.ini <<'EOF'
[alembic]
script_location = alembic
EOF
cat > alembic/env.py <<'EOF'
import os
from alembic import context
from sqlalchemy import create_engine, pool
with create_engine(os.environ["BENCH_URL"], poolclass=pool.NullPool).connect() as c:
    context.configure(connection=c)
    with context.begin_transaction():
        context.run_migrations()
EOF
"$VENV/bin/python" - "$N" <<'EOF'
import sys
n = int(sys.argv[1])
prev = None
for i in range(1, n + 1):
    rev = "%012x" % (0xa1e000000000 + i)
    up = ("CREATE TABLE bench_%d (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "
          "created_at timestamptz NOT NULL DEFAULT now())" % i)
    idx = "CREATE INDEX bench_%d_name_idx ON bench_%d (name)" % (i, i)
    open("alembic/versions/%s_t%d.py" % (rev, i), "w").write(
        "from alembic import op\nrevision = %r\ndown_revision = %r\nbranch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    op.execute(%r)\n    op.execute(%r)\n\ndef downgrade():\n    op.execute('DROP TABLE bench_%d')\n"
        % (rev, prev, up, idx, i))
    prev = rev
EOF

# tool_cmd NAME DB: sets CMD, the command line that applies the chain to database DB
tool_cmd() {
  local url; url=$(db_url "$2")
  case $1 in
    psql) CMD=("$PSQL" "$url" -qX -1 -v ON_ERROR_STOP=1 -f chain.sql) ;;
    retort) CMD=(env "DATABASE_URL=$url" "$BIN/migrate-up" --dir m -q) ;;
    before) CMD=(env "DATABASE_URL=$url" "$BEFORE_BIN/migrate-up" --dir m -q) ;;
    alembic) CMD=(env "BENCH_URL=postgresql+psycopg2://${url#postgresql://}" "$ALEMBIC" -c alembic.ini upgrade head) ;;
    dbmate) CMD=(env "DATABASE_URL=$url?sslmode=disable" "$DBMATE" --migrations-dir dbm --no-dump-schema up) ;;
    sqlx) CMD=("$SQLX" migrate run --source sqlx --database-url "$url") ;;
  esac
}
tools=(psql retort)
[ -n "$BEFORE_BIN" ] && tools+=(before)
[ -x "$ALEMBIC" ] && tools+=(alembic)
[ -x "$DBMATE" ] && tools+=(dbmate)
[ -x "$SQLX" ] && tools+=(sqlx)

declare -A times rss ratios
for r in $(seq 1 "$ROUNDS"); do
  line="round $r:"
  declare -A this=()
  for t in "${tools[@]}"; do
    fresh "bench_$t"
    admin "CHECKPOINT"
    s=$(now_ns)
    tool_cmd "$t" "bench_$t"
    /usr/bin/time -f %M -o "rss_$t" "${CMD[@]}" >/dev/null 2>"err_$t" || { cat "err_$t" >&2; exit 1; }
    this[$t]=$(ms_since "$s")
    times[$t]="${times[$t]:-} ${this[$t]}"
    rss[$t]="${rss[$t]:-} $(tail -n 1 "rss_$t")"
    line="$line $t ${this[$t]} ms"
  done
  for t in "${tools[@]}"; do ratios[$t]="${ratios[$t]:-} $(ratio "${this[$t]}" "${this[psql]}")"; done
  echo "$line" >&2
  tools=("${tools[@]:1}" "${tools[0]}") # the next round starts with the next tool
done

echo "## Speed ($(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'))"
echo
echo "Applying $N revisions on a fresh database, $ROUNDS rounds, tools taking turns:"
echo
echo "| tool | median time | median of the per-round ratios to psql | peak memory (median) |"
echo "|---|---|---|---|"
for t in psql retort before alembic dbmate sqlx; do
  [ -n "${times[$t]:-}" ] || continue
  # shellcheck disable=SC2086
  {
    m=$(median ${times[$t]})
    q=$(median ${ratios[$t]})
    k=$(median ${rss[$t]})
  }
  label=$t
  case $t in
    psql) label="\`psql -1 -f\` (the limit)" ;;
    retort) label="\`migrate-up\` (gate, retries, monitor, audit: the defaults)" ;;
    before) label="\`migrate-up\` of BEFORE_BIN" ;;
    alembic) label="Alembic $("$VENV/bin/python" -c 'import alembic; print(alembic.__version__)')" ;;
    dbmate) label="dbmate $("$DBMATE" --version | awk '{print $3}')" ;;
    sqlx) label="sqlx-cli $("$SQLX" --version | awk '{print $2}')" ;;
  esac
  echo "| $label | ${m} ms | **${q}x** | $(python3 -c "print(f'{$k/1024:.1f}')") MiB |"
done
echo
echo "Rounds (ms):"
for t in "${!times[@]}"; do echo "- $t:${times[$t]}"; done
echo

# 2. at the heads
mean20() { local s; s=$(now_ns); for _ in $(seq 1 20); do "$@" >/dev/null 2>&1; done; python3 -c "print(f'{($(now_ns) - $s) / 20 / 1e6:.1f}')"; }
replicas() { # replicas BIN: 20 processes at once, ms until the last exits (exit codes checked)
  local s pids=() fail=0; s=$(now_ns)
  for _ in $(seq 1 20); do DATABASE_URL=$(db_url bench_retort) "$1/migrate-up" --dir m -q & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ "$fail" = 0 ] || echo "a replica failed" >&2
  ms_since "$s"
}
export DATABASE_URL; DATABASE_URL=$(db_url bench_retort)
heads1=$(mean20 "$BIN/migrate-up" --dir m -q); rep=$(replicas "$BIN")
echo "| \`migrate-up\` with nothing pending ($N revisions) | figure | target |"
echo "|---|---|---|"
echo "| one process (mean of 20) | ${heads1} ms | ≤ 15 ms |"
echo "| 20 processes at once, until the last exits | ${rep} ms | < 1000 ms |"
if [ -n "$BEFORE_BIN" ]; then
  echo "| BEFORE_BIN: one process | $(mean20 "$BEFORE_BIN/migrate-up" --dir m -q) ms | |"
  echo "| BEFORE_BIN: 20 at once | $(replicas "$BEFORE_BIN") ms | |"
fi
echo

# 4. round trip of 100 revisions vs one upgrade of them
mkdir m100; find m -maxdepth 1 -name '*.sql' | sort | head -n 100 | while read -r f; do cp "$f" m100/; done
roundtrip() { # roundtrip BIN: medians over RT_ROUNDS of migrate-check --round-trip ms, of one migrate-up ms, of their paired ratios
  local s rt up rts=() ups=() rs=()
  for _ in $(seq 1 "$RT_ROUNDS"); do
    fresh bench_rt; s=$(now_ns); DATABASE_URL=$(db_url bench_rt) "$1/migrate-check" --dir m100 --round-trip -q >/dev/null || true; rt=$(ms_since "$s")
    fresh bench_up100; s=$(now_ns); DATABASE_URL=$(db_url bench_up100) "$1/migrate-up" --dir m100 -q; up=$(ms_since "$s")
    rts+=("$rt"); ups+=("$up"); rs+=("$(ratio "$rt" "$up")")
  done
  echo "$(median "${rts[@]}") $(median "${ups[@]}") $(median "${rs[@]}")"
}
read -r rt up100 rtratio < <(roundtrip "$BIN")
echo "| \`migrate-check --round-trip\`, 100 revisions, $RT_ROUNDS rounds | figure | target |"
echo "|---|---|---|"
echo "| round trip (shadow database), median | ${rt} ms | |"
echo "| one \`migrate-up\` of the same 100 revisions, median | ${up100} ms | |"
echo "| median of the paired ratios (round trip, then upgrade, each round) | **${rtratio}x** | ≤ 2x |"
if [ -n "$BEFORE_BIN" ]; then
  read -r brt bup bratio < <(roundtrip "$BEFORE_BIN")
  echo "| BEFORE_BIN: round trip / upgrade (medians), paired ratio | ${brt} ms / ${bup} ms, ${bratio}x | |"
fi
echo

# 3. the long chain, one transaction per revision
chain long "$LONG"
"$BIN/migrate-up" --dir long --sql heads --transaction-per-migration 2>/dev/null > long.sql
pr=(); rr=(); ratios_long=()
for r in $(seq 1 "$LONG_ROUNDS"); do
  fresh bench_lp; fresh bench_lr
  if [ $((r % 2)) = 1 ]; then order="p r"; else order="r p"; fi
  for o in $order; do
    admin "CHECKPOINT"; s=$(now_ns)
    if [ "$o" = p ]; then "$PSQL" "$(db_url bench_lp)" -qX -v ON_ERROR_STOP=1 -f long.sql >/dev/null; p=$(ms_since "$s")
    else DATABASE_URL=$(db_url bench_lr) "$BIN/migrate-up" --dir long -q --transaction-per-migration; m=$(ms_since "$s"); fi
  done
  echo "long round $r: psql ${p} ms, migrate-up ${m} ms" >&2
  pr+=("$p"); rr+=("$m"); ratios_long+=("$(ratio "$m" "$p")")
done
DATABASE_URL=$(db_url bench_lr)
"$BIN/migrate-history" --dir long >/dev/null 2>&1 || true # builds the header index
cur=$(mean20 "$BIN/migrate-current" --dir long)
hist=$(mean20 "$BIN/migrate-history" --dir long)
echo "| $LONG revisions | figure | target |"
echo "|---|---|---|"
echo "| \`psql -f\`, one transaction per revision (median of $LONG_ROUNDS) | $(median "${pr[@]}") ms | |"
echo "| \`migrate-up --transaction-per-migration\` (median) | $(median "${rr[@]}") ms | |"
echo "| median of the paired ratios | **$(median "${ratios_long[@]}")x** | ≤ 1.10x |"
echo "| \`migrate-current\` (mean of 20) | ${cur} ms | ≤ 25 ms |"
echo "| \`migrate-history\` (mean of 20) | ${hist} ms | ≤ 25 ms |"
if [ -n "$BEFORE_BIN" ]; then
  echo "| BEFORE_BIN: \`migrate-current\` / \`migrate-history\` | $(mean20 "$BEFORE_BIN/migrate-current" --dir long) ms / $(mean20 "$BEFORE_BIN/migrate-history" --dir long) ms | |"
fi
for d in bench_psql bench_retort bench_before bench_alembic bench_dbmate bench_sqlx bench_rt bench_up100 bench_lp bench_lr; do
  admin "DROP DATABASE IF EXISTS $d"
done
