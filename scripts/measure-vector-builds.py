#!/usr/bin/env python3
"""Calibrates retort's vector build estimates on this machine's server (run under
`scripts/pg.sh run -- .venv/bin/python scripts/measure-vector-builds.py memory|time`).

memory: the HNSW graph's bytes per row. Each build runs single-process with a small
maintenance_work_mem over just enough rows to outgrow it; pgvector's NOTICE "hnsw graph no
longer fits into maintenance_work_mem after N tuples" gives maintenance_work_mem / N.

time: in-memory, single-process HNSW builds at a few rows/dims/m/ef_construction, the seconds
each took. Prints one JSON line per measurement.
"""
import json, math, os, sys, time
import psycopg2

URL = os.environ["TEST_DATABASE_URL"]
MWM_MB = 4


def connect():
    c = psycopg2.connect(URL)
    c.autocommit = True
    return c


def fill(cur, table, typ, dims, rows):
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, e {typ}({dims}))")
    cur.execute(
        f"INSERT INTO {table} SELECT i, (SELECT array_agg(random())::vector({dims}) FROM generate_series(1, {dims}) WHERE i > 0)::{typ}({dims}) "
        f"FROM generate_series(1, {rows}) i")
    cur.execute(f"VACUUM ANALYZE {table}")


def memory(cur, conn, version):
    types = ["vector"] + (["halfvec"] if version >= (0, 7) else [])
    for typ in types:
        for dims in (8, 32, 128, 384, 1024):
            for m in (8, 16, 32):
                low = 8 + (2 if typ == "halfvec" else 4) * dims + 30 * m + 150
                rows = math.ceil(MWM_MB * 2**20 / low)
                fill(cur, "mem", typ, dims, rows)
                cur.execute(f"SET maintenance_work_mem = '{MWM_MB}MB'")
                cur.execute("SET max_parallel_maintenance_workers = 0")
                del conn.notices[:]
                cur.execute(f"CREATE INDEX ON mem USING hnsw (e {typ}_l2_ops) WITH (m = {m}, ef_construction = {max(16, 2 * m)})")
                at = [n for n in conn.notices if "no longer fits" in n]
                tuples = int(at[0].split("after ")[1].split()[0]) if at else None
                print(json.dumps({"kind": "memory", "pgvector": ".".join(map(str, version)), "type": typ,
                                  "dims": dims, "m": m, "rows": rows, "overflow_after": tuples,
                                  "bytes_per_row": MWM_MB * 2**20 / tuples if tuples else None}), flush=True)


def timing(cur, conn, version):
    for rows, dims, m, efc in ((4000, 64, 16, 64), (16000, 64, 16, 64), (8000, 32, 16, 64),
                               (8000, 128, 16, 64), (8000, 384, 16, 64), (8000, 64, 8, 64),
                               (8000, 64, 32, 64), (8000, 64, 16, 32), (8000, 64, 16, 128),
                               (8000, 64, 16, 64), (32000, 64, 16, 64)):
        fill(cur, "tim", "vector", dims, rows)
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 0")
        t = time.monotonic()
        cur.execute(f"CREATE INDEX ON tim USING hnsw (e vector_l2_ops) WITH (m = {m}, ef_construction = {efc})")
        s = time.monotonic() - t
        print(json.dumps({"kind": "time", "pgvector": ".".join(map(str, version)), "rows": rows, "dims": dims,
                          "m": m, "ef_construction": efc, "seconds": round(s, 3)}), flush=True)
        cur.execute("DROP TABLE tim")


def main():
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    version = tuple(int(x) for x in cur.fetchone()[0].split(".")[:2])
    for what in sys.argv[1:]:
        {"memory": memory, "time": timing}[what](cur, conn, version)


main()
