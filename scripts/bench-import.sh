#!/usr/bin/env bash
# Benchmark of migrate-import (release build): a generated 100-revision Alembic history
# (tables, columns, indexes, an HNSW index, an enum), imported with its verification (Alembic's
# own upgrade and downgrade beside retort's, step by step, on two shadow databases), against the
# time of Alembic's own `alembic upgrade head` on an empty database; then the real histories of
# python/tests/real_histories.py (HISTORIES="optuna phoenix" by default; each installed once
# into .histories/ from PyPI), each imported with no flag: revisions imported as SQL / as
# program steps / refused, upgrades and downgrades verified, and the time per 100 revisions.
# Run under `scripts/pg.sh run --` (TEST_DATABASE_URL); the figures go to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=${BIN:-$ROOT/target/release}
N=${N:-100}
: "${TEST_DATABASE_URL:?run under scripts/pg.sh run --}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" - "$work" "$N" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
root, n = Path(sys.argv[1]), int(sys.argv[2])
(root / "migrations" / "versions").mkdir(parents=True)
(root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\nsqlalchemy.url = postgresql+psycopg2://x@localhost/x\n")
(root / "migrations" / "env.py").write_text('''
import os
from alembic import context
from sqlalchemy import create_engine, pool
config = context.config
def url():
    return os.environ.get("BENCH_URL") or config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url(), poolclass=pool.NullPool).connect() as c:
        context.configure(connection=c)
        with context.begin_transaction():
            context.run_migrations()
''')
prev = None
for i in range(n):
    rev = "%012x" % (0xbe0000000000 + i)
    if i == 0:
        up = '''op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table("t0", sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("embedding", Vector(384)))
    op.create_index("t0_hnsw", "t0", ["embedding"], postgresql_using="hnsw", postgresql_with={"m": 16, "ef_construction": 64}, postgresql_ops={"embedding": "vector_cosine_ops"})'''
        down = 'op.drop_table("t0")'
    elif i % 3 == 1:
        up = 'op.create_table("t%d", sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("name", sa.Text(), nullable=False), sa.Column("t0_id", sa.BigInteger(), sa.ForeignKey("t0.id")))' % i
        down = 'op.drop_table("t%d")' % i
    elif i % 3 == 2:
        up = 'op.add_column("t%d", sa.Column("status", sa.Text(), nullable=True))' % (i - 1)
        down = 'op.drop_column("t%d", "status")' % (i - 1)
    else:
        up = 'op.create_index("ix_t%d_name", "t%d", ["name"])' % (i - 2, i - 2)
        down = 'op.drop_index("ix_t%d_name", table_name="t%d")' % (i - 2, i - 2)
    (root / "migrations" / "versions" / ("%s_step_%d.py" % (rev, i))).write_text(
        '"""step %d\n\nRevision ID: %s\n"""\nfrom alembic import op\nimport sqlalchemy as sa\n'
        'from pgvector.sqlalchemy import Vector\n\nrevision = %r\ndown_revision = %r\n'
        'branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    %s\n\n\n'
        'def downgrade():\n    %s\n' % (i, rev, rev, prev, up, down))
    prev = rev
PYEOF
base=${TEST_DATABASE_URL%/*}; base=${base/postgresql:\/\//postgresql+psycopg2://}
admin() { "$PY" -c 'import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); c.autocommit = True; c.cursor().execute(sys.argv[2])' "$TEST_DATABASE_URL" "$1"; }
admin "DROP DATABASE IF EXISTS bench_import_alembic"
admin "CREATE DATABASE bench_import_alembic"
cd "$work"
t0=$(date +%s.%N)
BENCH_URL="$base/bench_import_alembic" "$PY" -m alembic upgrade head 2>alembic.err || { cat alembic.err >&2; exit 1; }
t1=$(date +%s.%N)
DATABASE_URL=$TEST_DATABASE_URL "$BIN/migrate-import" -q --python "$PY" --format json > import.json
t2=$(date +%s.%N)
DATABASE_URL=$TEST_DATABASE_URL "$BIN/migrate-import" -q --python "$PY" --no-verify --force --format json > noverify.json
t3=$(date +%s.%N)
admin "DROP DATABASE IF EXISTS bench_import_alembic"
echo "load: $(uptime)"
"$PY" - "$t0" "$t1" "$t2" "$t3" "$N" <<'PYEOF'
import json, sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
doc = json.load(open("import.json"))
v = doc["verification"]
assert doc["ok"] and v["ok"], doc
print("revisions: %s" % sys.argv[5])
print("alembic upgrade head (empty database):        %6.2f s" % (t1 - t0))
print("migrate-import --no-verify (export + write):  %6.2f s" % (t3 - t2))
print("migrate-import with verification:             %6.2f s  (export %.2f s, verification %.2f s: %d of %d upgrades + %d of %d downgrades compared, one catalog digest per side per step)"
      % (t2 - t1, doc["export_seconds"], v["seconds"], v["upgrades"], v["steps"], v["downgrades"], v["steps"]))
print("per 100 revisions, with verification:         %6.2f s" % ((t2 - t1) * 100.0 / int(sys.argv[5])))
PYEOF

# the real histories, each imported with no flag (its own Python, its own env.py)
cd "$ROOT/python/tests"
for name in ${HISTORIES:-optuna phoenix}; do
  hist_py=$("$PY" real_histories.py "$name" | tail -1)
  rm -rf "${work:?}/$name"
  "$PY" -c 'import sys, pathlib, real_histories as r; h = r.HISTORIES[sys.argv[1]]; r.project(h, pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))' "$name" "$hist_py" "$work/$name"
  h0=$(date +%s.%N)
  (cd "$work/$name" && PHOENIX_WORKING_DIR="$work/phoenix-home" DATABASE_URL=$TEST_DATABASE_URL \
     "$BIN/migrate-import" -q --python "$hist_py" --format json > "$work/$name.json")
  h1=$(date +%s.%N)
  "$PY" - "$name" "$work/$name.json" "$h0" "$h1" <<'PYEOF'
import json, sys
name, path, h0, h1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
doc = json.load(open(path))
revs, v = doc["revisions"], doc["verification"]
n = len(revs)
programs = sum(1 for r in revs if r["program"])
refused = sum(1 for r in revs if r["unconverted"])
print("%s: %d revisions: %d as SQL, %d as program steps, %d refused; verified %d of %d upgrades, "
      "%d of %d downgrades; %.2f s (export %.2f s, verification %.2f s), %.2f s per 100 revisions"
      % (name, n, n - programs - refused, programs, refused, v["upgrades"], v["steps"],
         v["downgrades"], v["steps"], h1 - h0, doc["export_seconds"], v["seconds"],
         (h1 - h0) * 100.0 / n))
for line in v["not_verifiable"]:
    print("  not verifiable: " + line[:200])
PYEOF
done
