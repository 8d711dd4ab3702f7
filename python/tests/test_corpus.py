"""migrate-import on the corpus of Alembic histories (python/tests/corpus/, see its README.md):
every kind of history real projects have — revisions that inspect the live schema to be
idempotent, ORM-session data migrations, batch_alter_table with render_as_batch and a merge, an
async env.py on asyncpg — imports with no flag, is verified through the whole history, and a
database Alembic migrated is then where retort expects it, and retort's replay of the imported
scripts on a fresh database is that database (schema and rows)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import query
from test_import import run
from test_real_histories import replay_and_compare

CORPUS = Path(__file__).parent / "corpus"

# project: (revisions, SQL revisions, program-step revisions, downgrades verified, heads)
EXPECTED = {
    "idempotent_rag": (5, 2, 3, 5, ["a1b2c3d4e505"]),
    "orm_data": (5, 1, 4, 5, ["0b1c2d3e4f05"]),
    "batch_history": (5, 4, 1, 5, ["c0ffee000005"]),
    "async_app": (4, 3, 1, 2, ["5e6f7a8b9c04"]),
}


@pytest.fixture
def bins(release_bins, monkeypatch):
    for var in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR", "MIGRATE_SCHEMA_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return release_bins


def copy_project(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(CORPUS / name, root, ignore=shutil.ignore_patterns("README.md", "__pycache__"))
    return root


def alembic_upgrade(root: Path, url: str) -> None:
    """`alembic upgrade heads` as the project runs it: its env.py and driver, on `url`."""
    import subprocess

    ini = root / "alembic.ini"
    text = ini.read_text()
    driver = "postgresql+asyncpg://" if "asyncpg" in text else "postgresql+psycopg2://"
    sa_url = url.replace("postgresql://", driver, 1)
    lines = [ln for ln in text.splitlines() if not ln.startswith("sqlalchemy.url")]
    lines.insert(lines.index("[alembic]") + 1, "sqlalchemy.url = " + sa_url.replace("%", "%%"))
    ini.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "heads"], cwd=root,
                         capture_output=True, text=True,
                         env={"DATABASE_URL": sa_url, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    ini.write_text(text)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_corpus_history_imports_with_no_flag_and_is_verified_whole(name, bins, database,
                                                                          fresh_database,
                                                                          tmp_path):
    total, sql, programs, downgrades, heads = EXPECTED[name]
    root = copy_project(name, tmp_path)
    # a database Alembic migrated to the heads
    alembic_upgrade(root, database)
    out = run(bins, "migrate-import", "--format", "json", cwd=root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["written"] is True and doc["heads"] == heads
    revs = doc["revisions"]
    assert len(revs) == total
    assert not any(r["unconverted"] for r in revs)
    assert sum(1 for r in revs if r["program"]) == programs
    assert sum(1 for r in revs if not r["program"]) == sql
    v = doc["verification"]
    assert (v["upgrades"], v["steps"], v["downgrades"]) == (total, total, downgrades), v
    assert v["differences"] == []
    # every program step's Alembic file is kept, and nothing refers to internals
    kept = sorted(p.name for p in (root / "migrations" / "alembic").glob("*.py"))
    assert len(kept) == programs
    for r in revs:
        assert "OfflineBind" not in (r["program"] or "")
    # retort's replay, base to the heads, on a fresh database is Alembic's database
    replay_and_compare(bins, root, database, fresh_database,
                       env={"RETORT_PYTHON": sys.executable,
                            "PYTHONPATH": str(Path(__file__).parents[1])})
    # Alembic's database is where retort expects it: nothing to apply, no problem reported
    out = run(bins, "migrate-check", cwd=root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    assert query(database, "SELECT count(*) FROM alembic_version")[0][0] == len(heads)


def test_a_baseline_import_carries_the_schema_and_the_reference_rows(bins, database, tmp_path):
    """--baseline: one script under the head's id, from a shadow Alembic migrated; a database
    Alembic migrated needs nothing, a fresh one gets the schema and the seeded roles."""
    root = copy_project("orm_data", tmp_path)
    out = run(bins, "migrate-import", "--baseline", "--format", "json", cwd=root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    b = doc["baseline"]
    assert (b["revision"], b["revisions"], b["tables"], b["rows"]) == ("0b1c2d3e4f05", 5, 1, 3)
    assert b["differences"] == []
    (script,) = (root / "migrations").glob("*.sql")
    text = script.read_text()
    assert text.startswith("-- revision: 0b1c2d3e4f05\n")
    assert "-- down_revision" not in text and "-- migrate:down" not in text
    assert "CONSTRAINT fk_users_role_id_roles FOREIGN KEY" in text
    assert "SELECT pg_catalog.setval('public.roles_id_seq', 3, true);" in text
    # a fresh database: one step, the roles are there
    out = run(bins, "migrate-up", cwd=root, url=database)
    assert out.returncode == 0, out.stderr
    assert query(database, "SELECT name FROM roles ORDER BY id") == [("admin",), ("member",),
                                                                     ("viewer",)]
    assert query(database, "SELECT version_num FROM alembic_version") == [("0b1c2d3e4f05",)]


def test_a_baseline_of_a_history_with_two_heads_records_both(bins, database, fresh_database,
                                                             tmp_path):
    """--baseline on two branches never merged: the first head's script carries the schema of
    both, the second head's is empty; a database Alembic migrated to both heads needs nothing,
    a fresh one gets Alembic's schema and both ids."""
    root = copy_project("batch_history", tmp_path)
    versions = root / "migrations" / "versions"
    (versions / "c0ffee000004_merge.py").unlink()
    (versions / "c0ffee000005_unique_names.py").unlink()
    alembic_upgrade(root, database)
    assert sorted(query(database, "SELECT version_num FROM alembic_version")) == \
        [("c0ffee000002",), ("c0ffee000003",)]
    out = run(bins, "migrate-import", "--baseline", "--format", "json", cwd=root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    b = json.loads(out.stdout)["baseline"]
    assert sorted(b["heads"]) == ["c0ffee000002", "c0ffee000003"]
    assert b["differences"] == [] and b["revisions"] == 3
    first, other = b["heads"]
    scripts = {p.name: p.read_text() for p in (root / "migrations").glob("*.sql")}
    assert len(scripts) == 2
    (other_text,) = [t for t in scripts.values() if t.startswith(f"-- revision: {other}\n")]
    assert "-- down_revision" not in other_text and "-- depends_on" not in other_text
    assert f"rows of all of them are in {first}'s script" in other_text
    assert "CREATE TABLE" not in other_text
    # Alembic's database: nothing to apply; the one problem is the history's own two heads
    out = run(bins, "migrate-check", cwd=root, url=database)
    problems = [ln for ln in out.stdout.splitlines() if ln.startswith("problem")]
    assert len(problems) == 1 and problems[0].startswith("problem [multiple_heads]"), out.stdout
    assert "pending" not in out.stdout, out.stdout
    # a fresh database: both heads recorded, Alembic's schema
    replay_and_compare(bins, root, database, fresh_database)
