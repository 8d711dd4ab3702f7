#!/usr/bin/env bash
# Backfill benchmark (release build), run by `make bench` under scripts/pg.sh run (for PG_BIN).
# Prints a Markdown report; docs/benchmarks.md keeps the figures of the last recorded run.
#
# A primary and a streaming replica of their own (initdb + pg_basebackup -R, from PG_BIN, as the
# `postgres` user when run as root), a table of BENCH_BACKFILL_ROWS rows (default 1,000,000),
# and the same change made twice while pgbench updates random rows of the table (4 clients, a
# custom script, in 1-second runs whose per-transaction logs are kept):
#   1. one `UPDATE docs SET title_lower = lower(title)` (psql);
#   2. a backfill step (`-- backfill: docs.id`, default pacing) run by migrate-up.
# For each: rows per second, the concurrent writes' latency (p50, p99, max) while it ran, and
# the replica's maximum replay lag (pg_stat_replication.replay_lag, and bytes behind), polled
# every 100 ms. Both start from the same table: between them the column is reset and the table
# rewritten (VACUUM FULL: no dead rows, full pages), the replica caught up, and a CHECKPOINT run.
# A write's latency counts for a change when the write overlapped it (a write blocked by the
# single UPDATE ends only after its COMMIT: it counts, with its whole wait).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${BENCH_BACKFILL_ROWS:-1000000}
BIN=$ROOT/target/release
PGB=${PG_BIN:?run through scripts/pg.sh run}

load0=$(uptime | sed 's/.*load average: //')
work=$(mktemp -d /tmp/retort-bench-backfill.XXXXXX)
chmod 755 "$work"
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port)
[ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
  touch "$work/stop" "$work/stoplag" 2>/dev/null || true
  if [ -n "${loadpid:-}" ]; then kill "$loadpid" 2>/dev/null || true; fi
  if [ -n "${lagpid:-}" ]; then kill "$lagpid" 2>/dev/null || true; fi
  as_owner "$PGB/pg_ctl" -D "$work/replica" -m immediate -w stop >/dev/null 2>&1 || true
  as_owner "$PGB/pg_ctl" -D "$work/primary" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_owner "$PGB/initdb" -D "$work/primary" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_owner "$PGB/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w -o "-p $P1 -k $work -c listen_addresses=localhost -c fsync=off -c max_wal_size=4GB" start >/dev/null
as_owner "$PGB/pg_basebackup" -h localhost -p "$P1" -U postgres -D "$work/replica" -R -X stream
as_owner "$PGB/pg_ctl" -D "$work/replica" -l "$work/replica.log" -w -o "-p $P2 -k $work -c listen_addresses=localhost -c fsync=off -c hot_standby=on -c cluster_name=replica1 -c wal_receiver_status_interval=1s" start >/dev/null

URL="postgresql://postgres@localhost:$P1/postgres"
q() { "$PGB/psql" "$URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL, title_lower text, n int NOT NULL DEFAULT 0)"
q "INSERT INTO docs (id, title) SELECT g, 'Document Title ' || g || ' ' || md5(g::text) FROM generate_series(1, $ROWS) g"
q "VACUUM ANALYZE docs"

mkdir "$work/migrations"
cat > "$work/migrations/001_lower.sql" <<'EOF'
-- revision: 001
-- message: lower-case titles
-- backfill: docs.id

-- migrate:up
UPDATE docs SET title_lower = lower(title) WHERE id >= :start AND id < :end;

-- migrate:down
SELECT 1;
EOF
cat > "$work/write.sql" <<EOF
\set id random(1, $ROWS)
UPDATE docs SET n = n + 1 WHERE id = :id;
EOF

now() { python3 -c 'import time; print(f"{time.time():.6f}")'; }

# the write load: 1-second pgbench runs (their logs are written when each ends) until told to stop
start_load() {
  rm -f "$work/stop"; mkdir -p "$work/lat/$1"
  ( cd "$work/lat/$1"; i=0
    while [ ! -f "$work/stop" ]; do
      i=$((i + 1))
      "$PGB/pgbench" -n -c 4 -j 2 -T 1 -f "$work/write.sql" -l --log-prefix="run$i" "$URL" >/dev/null 2>&1 || true
    done ) &
  loadpid=$!
}
stop_load() { touch "$work/stop"; wait "$loadpid" 2>/dev/null || true; loadpid=; }

# the replica's lag, every 100 ms, until told to stop: "replay_lag_seconds bytes_behind"
start_lag() {
  ( while [ ! -f "$work/stoplag" ]; do
      q "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0), coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) FROM pg_stat_replication" || true
      sleep 0.1
    done ) > "$work/lag.$1" &
  lagpid=$!
}
stop_lag() { touch "$work/stoplag"; wait "$lagpid" 2>/dev/null || true; lagpid=; rm -f "$work/stoplag"; }

# the replica has replayed everything the primary wrote
caught_up() {
  local i
  for i in $(seq 1 600); do
    [ "$(q "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()")" = 1 ] && return 0
    sleep 0.1
  done
  echo "the replica did not catch up in 60 s" >&2; return 1
}

# the table as the first change found it: title_lower NULL, no dead rows, full pages
reset_table() {
  q "UPDATE docs SET title_lower = NULL"
  q "VACUUM FULL docs"
  q "VACUUM ANALYZE docs"
  caught_up
  q "CHECKPOINT"
}

# latency (ms) of the writes that overlapped $2..$3 (epoch seconds): p50 p99 max count
latency() {
  python3 - "$work/lat/$1" "$2" "$3" <<'PY'
import glob, sys
d, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lat = []
for f in glob.glob(d + "/run*"):
    for line in open(f):
        p = line.split()
        if len(p) < 6:
            continue
        end = int(p[4]) + int(p[5]) / 1e6
        took = int(p[2]) / 1e6
        if end >= t0 and end - took <= t1:
            lat.append(took * 1000.0)
lat.sort()
if not lat:
    print("- - - 0"); sys.exit()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"{pick(0.5):.1f} {pick(0.99):.1f} {lat[-1]:.1f} {len(lat)}")
PY
}
maxlag() { awk -F'|' 'BEGIN{s=0;b=0} {if ($1+0>s) s=$1+0; if ($2+0>b) b=$2+0} END {printf "%.2f %.1f\n", s, b/1048576}' "$work/lag.$1"; }

run_case() { # name, command...
  local name=$1; shift
  caught_up; q "CHECKPOINT"
  start_load "$name"; start_lag "$name"; sleep 2
  local t0 t1; t0=$(now)
  "$@"
  t1=$(now)
  sleep 1; stop_lag; stop_load
  read -r p50 p99 max n <<<"$(latency "$name" "$t0" "$t1")"
  read -r lag mb <<<"$(maxlag "$name")"
  local secs rate; secs=$(python3 -c "print(f'{$t1 - $t0:.2f}')"); rate=$(python3 -c "print(round($ROWS / ($t1 - $t0)))")
  echo "$name|$secs|$rate|$p50|$p99|$max|$n|$lag|$mb"
}

one=$(run_case "one UPDATE" q "UPDATE docs SET title_lower = lower(title)")
reset_table
bf=$(run_case "backfill" env DATABASE_URL="$URL" "$BIN/migrate-up" --dir "$work/migrations" -q)

rate1=$(echo "$one" | cut -d'|' -f3); rate2=$(echo "$bf" | cut -d'|' -f3)
share=$(python3 -c "print(f'{100 * $rate2 / $rate1:.0f}')")
echo
echo "## Backfill: $(python3 -c "print(f'{$ROWS:,}')") rows, writes from pgbench (4 clients) meanwhile, a streaming replica"
echo
echo "| change | time (s) | rows/s | writes p50 (ms) | p99 (ms) | max (ms) | writes | replica max replay_lag (s) | max bytes behind (MB) |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in "$one" "$bf"; do echo "| ${r//|/ | } |"; done
echo
echo "The backfill's throughput: ${share} % of the single UPDATE's."
echo
echo "Machine: $(nproc) cores; load average before the run: $load0; after: $(uptime | sed 's/.*load average: //')."
