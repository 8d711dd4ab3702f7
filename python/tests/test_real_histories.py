"""migrate-import on real Alembic histories, as public projects ship them on PyPI (see
real_histories.py for each one's package, version and path; nothing of theirs is in this
repository). Each: Alembic's own `alembic upgrade heads` on one database; `migrate-import` with
no flag (every revision imported, the whole history verified); retort's replay of the imported
scripts from base to the heads on a fresh database has Alembic's catalog and rows; and the
database Alembic migrated passes `migrate-check` with nothing to apply.

The long histories (`slow` in real_histories.py) run with `make test-histories`
(RETORT_SLOW_HISTORIES=1); every `make test-python` runs the others."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import real_histories
from conftest import catalog, query
from test_import import run

# name: (revisions, SQL revisions, program-step revisions, downgrades verified, heads,
#        what the summary says could not be verified)
EXPECTED = {
    "optuna": (10, 4, 6, 2, ["v3.2.0.a"],
               "v3.0.0.c and the revisions below it, because Alembic's own downgrade fails"),
    "phoenix": (10, 10, 0, 10, ["6a88424799fe"], ""),
}


def _histories():
    slow = os.environ.get("RETORT_SLOW_HISTORIES") == "1"
    return [pytest.param(name, marks=pytest.mark.skipif(
        real_histories.HISTORIES[name].slow and not slow,
        reason="a long history: make test-histories runs it"))
        for name in sorted(real_histories.HISTORIES)]


@pytest.fixture
def bins(release_bins, monkeypatch):
    for var in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR", "MIGRATE_SCHEMA_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return release_bins


def alembic_upgrade(py: Path, root: Path, h: real_histories.History, url: str, env: dict):
    """`alembic upgrade heads` as the project runs it: its env.py and driver, on `url`."""
    sa_url = url.replace("postgresql://", "postgresql+%s://" % h.driver, 1)
    ini = root / "alembic.ini"
    text = ini.read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("sqlalchemy.url")]
    lines.insert(lines.index("[alembic]") + 1, "sqlalchemy.url = " + sa_url.replace("%", "%%"))
    ini.write_text("\n".join(lines) + "\n")
    out = subprocess.run([str(py), "-m", "alembic", "upgrade", "heads"], cwd=root,
                         capture_output=True, text=True,
                         env=dict(env, PATH="/usr/bin:/bin", DATABASE_URL=sa_url))
    ini.write_text(text)
    assert out.returncode == 0, out.stderr[-3000:]


def replay_and_compare(bins: Path, root: Path, alembic_db: str, fresh_db: str, env=None):
    """retort's replay of the imported scripts, from base to the heads, on `fresh_db`: the same
    schema and rows as the database Alembic migrated."""
    out = run(bins, "migrate-up", cwd=root, url=fresh_db, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    schema, rows = catalog(fresh_db)
    theirs_schema, theirs_rows = catalog(alembic_db)
    assert schema == theirs_schema
    assert rows == theirs_rows
    assert query(fresh_db, "SELECT version_num FROM alembic_version ORDER BY 1") == \
        query(alembic_db, "SELECT version_num FROM alembic_version ORDER BY 1")


@pytest.mark.parametrize("name", _histories())
def test_a_real_history_imports_with_no_flag_and_replays_to_alembics_catalog(
        name, bins, database, fresh_database, tmp_path):
    h = real_histories.HISTORIES[name]
    total, sql, programs, downgrades, heads, not_verifiable = EXPECTED[name]
    py = real_histories.venv(h)
    root = real_histories.project(h, py, tmp_path / name)
    # program steps run the revisions' own functions in the project's Python, with this
    # checkout's retort_migrate
    env = dict(real_histories.environment(h, tmp_path), RETORT_PYTHON=str(py),
               PYTHONPATH=str(real_histories.REPO / "python"))
    # a database Alembic migrated to the heads
    alembic_upgrade(py, root, h, database, env)
    out = run(bins, "migrate-import", "--python", str(py), "--format", "json", cwd=root,
              url=database, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["written"] is True and doc["heads"] == heads
    revs = doc["revisions"]
    assert len(revs) == total
    assert not any(r["unconverted"] for r in revs)
    assert (sum(1 for r in revs if not r["program"]), sum(1 for r in revs if r["program"])) == \
        (sql, programs)
    v = doc["verification"]
    assert (v["upgrades"], v["steps"], v["downgrades"]) == (total, total, downgrades), v
    assert v["differences"] == []
    assert any(not_verifiable in n for n in v["not_verifiable"]) if not_verifiable else \
        v["not_verifiable"] == []
    # retort's replay on a fresh database is Alembic's database
    replay_and_compare(bins, root, database, fresh_database, env)
    # Alembic's database is where retort expects it: nothing to apply, no problem reported
    out = run(bins, "migrate-check", cwd=root, url=database, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
