#!/usr/bin/env bash
# The embedding swap (migrate-revision --vector-swap, docs/vector-swap.md), run by `make bench`
# under scripts/pg.sh run, or alone: `scripts/pg.sh run -- scripts/bench-vector-swap.sh`.
#
# A table of BENCH_SWAP_ROWS (default 100,000) x BENCH_SWAP_DIMS (384) random vectors near a
# surface of two parameters (as embeddings lie near one of few dimensions; uniform random
# vectors are all about equally far apart, and no ANN index finds their neighbours) with an
# HNSW cosine index; while a client inserts a row and asks a nearest-neighbour query in a loop
# (latencies kept; with a program fill it also writes the new model's embedding once the new
# column exists: the application's dual write), the column is swapped twice, each on its own
# copy of the database; the load stops before the switch (the application's second deploy):
#   1. retort: the chain migrate-revision --vector-swap writes, run by migrate-up (fill in
#      ranges, index CONCURRENTLY with planned memory/workers, recall check) and
#      migrate-up --contract;
#   2. by hand: the same steps with psql: the column and trigger, the fill in batches of the
#      same width with a COMMIT each, CREATE INDEX CONCURRENTLY with the server's defaults, the
#      rename in one transaction and the drop.
# The new type: by default vector(256) through the deterministic test model
# bins/tests/fixtures/swap_model.py as the backfill worker (--run; by hand the same worker is
# handed the same ranges, without checkpoints); BENCH_SWAP_SQL=1: halfvec(DIMS), an SQL fill
# (pgvector 0.7+: PG_SERVER=18).
# BENCH_BIN: where the migrate-* binaries are (default target/release, built when missing).
# Prints a Markdown report: swap time, queries' p50/p99/max and failures during each swap,
# the index step's time (planned vs the server's defaults), and the new index's recall.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${BENCH_SWAP_ROWS:-100000}
DIMS=${BENCH_SWAP_DIMS:-384}
BATCH=${BENCH_SWAP_BATCH:-1000}
BIN=${BENCH_BIN:-$ROOT/target/release}
PY=${PYTHON:-$ROOT/.venv/bin/python}
PSQL=${PG_BIN:?run through scripts/pg.sh run}/psql
: "${TEST_DATABASE_URL:?run through scripts/pg.sh run}"
if [ "${BENCH_SWAP_SQL:-0}" = 1 ]; then
  TO="halfvec($DIMS)"
  MODEL=
else
  TO="vector(256)"
  NEWDIMS=256
  MODEL="$PY $ROOT/bins/tests/fixtures/swap_model.py"
  export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ ! -x "$BIN/migrate-up" ] || [ ! -x "$BIN/migrate-revision" ]; then
  (cd "$ROOT" && cargo build --release --bin migrate-up --bin migrate-revision --bin migrate-check)
fi

db_url() { local base=${TEST_DATABASE_URL%/*}; echo "$base/$1"; }
admin() { "$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
q() { "$PSQL" "$(db_url "$1")" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

work=$(mktemp -d /tmp/retort-bench-swap.XXXXXX)
cleanup() {
  touch "$work/stop"
  if [ -n "${loadpid:-}" ]; then wait "$loadpid" 2>/dev/null || true; fi
  for d in bench_swap bench_swap_retort bench_swap_hand; do admin "DROP DATABASE IF EXISTS $d WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

admin "DROP DATABASE IF EXISTS bench_swap"; admin "CREATE DATABASE bench_swap"
"$PSQL" "$(db_url bench_swap)" -qAtX -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE EXTENSION vector;
CREATE TABLE chunks (id bigserial PRIMARY KEY, body text, embedding vector($DIMS));
INSERT INTO chunks (body, embedding)
  SELECT 'row ' || g, (SELECT array_agg(sin(i * r.a) + cos(i * r.b) + random() * 0.01)
                        FROM generate_series(1, $DIMS) i,
                             (SELECT random() * 3 AS a, random() * 3 AS b WHERE g > 0) r)::vector($DIMS)
  FROM generate_series(1, $ROWS) g;
SET maintenance_work_mem = '1GB';
CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding vector_cosine_ops);
VACUUM ANALYZE chunks;
SQL
for d in bench_swap_retort bench_swap_hand; do
  admin "DROP DATABASE IF EXISTS $d"; admin "CREATE DATABASE $d TEMPLATE bench_swap"
done

# the application: insert a row and ask a nearest-neighbour query, in a loop; "seconds ok" per
# query. With a program fill it writes the new model's embedding too once the new column exists
# (the dual write of docs/vector-swap.md), with the test model.
start_load() { # $1: database, $2: file
  rm -f "$work/stop"
  "$PY" - "$(db_url "$1")" "$DIMS" "$work/stop" "$2" "${MODEL:+$ROOT/bins/tests/fixtures}" <<'PY' &
import math, os, random, sys, time
import psycopg2
url, dims, stop, out, model = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
embed = None
if model:
    sys.path.insert(0, model)
    from swap_model import embed
c = psycopg2.connect(url); c.autocommit = True
cur = c.cursor()
def has_next():
    cur.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding_next' AND NOT attisdropped")
    return cur.fetchone()[0] == 1
with open(out, "w") as f:
    while not os.path.exists(stop):
        a, b = random.random() * 3, random.random() * 3
        v = "[" + ",".join(f"{math.sin(i * a) + math.cos(i * b):.4f}" for i in range(1, dims + 1)) + "]"
        t = time.time(); ok = 1
        try:
            if embed and has_next():
                cur.execute("INSERT INTO chunks (body, embedding, embedding_next) VALUES ('new', %s::vector, %s::vector)", (v, embed(v)))
            else:
                cur.execute("INSERT INTO chunks (body, embedding) VALUES ('new', %s::vector)", (v,))
            cur.execute("SELECT id FROM chunks ORDER BY embedding <=> %s::vector LIMIT 10", (v,))
            cur.fetchall()
        except Exception as e:
            ok = 0
            print(e, file=sys.stderr)
            c.rollback() if not c.autocommit else None
        f.write(f"{time.time() - t:.6f} {ok}\n"); f.flush()
        time.sleep(0.01)
PY
  loadpid=$!
}
stop_load() { touch "$work/stop"; wait "$loadpid" 2>/dev/null || true; loadpid=; }
latency() { # file -> "p50 p99 max queries failed" (ms)
  python3 - "$1" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
lat = sorted(float(a) * 1000 for a, _ in rows)
bad = sum(1 for _, ok in rows if ok != "1")
pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
print(f"{pick(0.5):.1f} {pick(0.99):.1f} {lat[-1] if lat else 0:.1f} {len(lat)} {bad}")
PY
}

# 1. retort
mkdir -p "$work/retort/migrations"
export DATABASE_URL; DATABASE_URL=$(db_url bench_swap_retort)
args=(--vector-swap chunks.embedding --to "$TO" --batch "$BATCH" --dir "$work/retort/migrations")
[ -n "$MODEL" ] && args+=(--run "SWAP_DIMS=$NEWDIMS $MODEL")
"$BIN/migrate-revision" "${args[@]}" >/dev/null
revs=$(find "$work/retort/migrations" -name '*.sql' | sort | xargs -n1 basename | cut -d_ -f1)
index_rev=$(grep -l 'CREATE INDEX CONCURRENTLY' "$work"/retort/migrations/*.sql | xargs -n1 basename | cut -d_ -f1)
before_index=$(echo "$revs" | grep -B1 -x "$index_rev" | head -1)
start_load bench_swap_retort "$work/lat.retort"; sleep 2
t0=$(now)
"$BIN/migrate-up" --dir "$work/retort/migrations" -q "$before_index"
ti=$(now)
"$BIN/migrate-up" --dir "$work/retort/migrations" "$index_rev" 2> "$work/index.log"
tj=$(now)
"$BIN/migrate-up" --dir "$work/retort/migrations" 2> "$work/check.log" || { cat "$work/check.log" >&2; exit 1; }
sleep 1; stop_load
"$BIN/migrate-up" --dir "$work/retort/migrations" -q --contract
t1=$(now)
retort_time=$(secs "$t0" "$t1"); retort_index=$(secs "$ti" "$tj")
read -r r50 r99 rmax rn rbad <<<"$(latency "$work/lat.retort")"
recall=$(grep -o 'recall@10 [0-9.]*' "$work/check.log" | head -1)
planned=$(grep -oE '(maintenance_work_mem|max_parallel_maintenance_workers) = [0-9.]+( [MG]B)?' "$work/index.log" | paste -sd, - || true)
missing=$(q bench_swap_retort "SELECT count(*) FROM chunks WHERE embedding IS NULL")

# 2. by hand
H=bench_swap_hand
fill_sql="embedding::$TO"
start_load $H "$work/lat.hand"; sleep 2
t0=$(now)
q $H "ALTER TABLE chunks ADD COLUMN embedding_next $TO" >/dev/null
if [ -z "$MODEL" ]; then
  q $H "CREATE FUNCTION chunks_swap() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.embedding_next := NEW.embedding::$TO; RETURN NEW; END \$\$;
        CREATE TRIGGER chunks_swap BEFORE INSERT OR UPDATE OF embedding ON chunks FOR EACH ROW EXECUTE FUNCTION chunks_swap()" >/dev/null
  max=$(q $H "SELECT max(id) FROM chunks")
  "$PSQL" "$(db_url $H)" -qAtX -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
DECLARE s bigint := 1;
BEGIN
  WHILE s <= $max LOOP
    UPDATE chunks SET embedding_next = $fill_sql WHERE id >= s AND id < s + $BATCH AND embedding_next IS NULL;
    COMMIT;
    s := s + $BATCH;
  END LOOP;
END \$\$;
SQL
else
  # the same worker, handed the whole key range in ranges of BATCH (what a hand-written loop does)
  max=$(q $H "SELECT max(id) FROM chunks")
  python3 -c "for s in range(1, $max + 1, $BATCH): print(f'range {s} {s + $BATCH} SELECT 1')" |
    DATABASE_URL=$(db_url $H) SWAP_DIMS=$NEWDIMS $MODEL >/dev/null
fi
ti=$(now)
q $H "CREATE INDEX CONCURRENTLY chunks_embedding_idx_next ON chunks USING hnsw (embedding_next ${TO%%(*}_cosine_ops)" >/dev/null
tj=$(now)
sleep 1; stop_load
q $H "BEGIN; DROP TRIGGER IF EXISTS chunks_swap ON chunks; ALTER TABLE chunks RENAME COLUMN embedding TO embedding_old;
      ALTER TABLE chunks RENAME COLUMN embedding_next TO embedding; ALTER TABLE chunks DROP COLUMN embedding_old;
      ALTER INDEX chunks_embedding_idx_next RENAME TO chunks_embedding_idx; COMMIT" >/dev/null
t1=$(now)
hand_time=$(secs "$t0" "$t1"); hand_index=$(secs "$ti" "$tj")
read -r h50 h99 hmax hn hbad <<<"$(latency "$work/lat.hand")"

echo
echo "## Vector swap: $(printf "%'d" "$ROWS") x $DIMS vector -> $TO${MODEL:+ (test model worker)}, inserts and queries meanwhile"
echo
echo "| swap | total (s) | index step (s) | queries | failed | p50 (ms) | p99 (ms) | max (ms) |"
echo "|---|---|---|---|---|---|---|---|"
echo "| retort chain (migrate-up, then --contract) | $retort_time | $retort_index (planned: ${planned:-server settings}) | $rn | $rbad | $r50 | $r99 | $rmax |"
echo "| by hand (psql, server defaults) | $hand_time | $hand_index | $hn | $hbad | $h50 | $h99 | $hmax |"
echo
echo "Check step: ${recall:-no recall line}; rows without an embedding after the contract: $missing."
