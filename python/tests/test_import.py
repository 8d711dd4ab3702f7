"""migrate-import on Alembic projects written the way RAG applications write them: real Alembic
(online and offline), the release binaries, a real PostgreSQL with pgvector; and the users'
loop of autogenerate from SQLAlchemy models through --schema-command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHON_SRC, AlembicProject, psql, query, revision_file
from test_alembic_export import (API_KEYS, AUDIT, BACKFILL, BASELINE, BATCH, CONCURRENT, MERGE,
                                 SETTINGS, TAGS, TOUCH, write_rag_history)


@pytest.fixture
def bins(release_bins, monkeypatch):
    for var in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR", "MIGRATE_SCHEMA_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return release_bins


def run(bins: Path, name: str, *args, cwd: Path, url: str | None = None, env=None):
    e = dict(os.environ, VIRTUAL_ENV=str(Path(sys.executable).parent.parent), **(env or {}))
    if url:
        e["DATABASE_URL"] = url
    return subprocess.run([str(bins / name), *args], cwd=cwd, capture_output=True, text=True,
                          env=e)


def scripts(p: AlembicProject) -> dict:
    return {f.name: f.read_text() for f in sorted((p.root / "migrations").glob("*.sql"))}


def alembic(p: AlembicProject, url: str, *args):
    """Alembic's own command line, on `url` (written into alembic.ini as users do)."""
    ini = p.root / "alembic.ini"
    text = ini.read_text()
    start = text.index("sqlalchemy.url = ")
    end = text.index("\n", start)
    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    ini.write_text(text[:start] + "sqlalchemy.url = " + url.replace("%", "%%") + text[end:])
    out = subprocess.run([sys.executable, "-m", "alembic", *args], cwd=p.root,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture
def converted_history(alembic_project):
    """The seed-like history without its data migration: every revision converts."""
    write_rag_history(alembic_project)
    (alembic_project.root / "migrations" / "versions" / "d81e3f5a7b90_backfill_titles.py").unlink()
    return alembic_project


def test_an_alembic_database_is_at_the_right_place_after_the_import(converted_history, bins,
                                                                    database):
    p = converted_history
    alembic(p, database, "upgrade", TOUCH)
    out = run(bins, "migrate-import", cwd=p.root, url=database)
    assert out.returncode == 0, out.stderr
    assert "Imported 9 Alembic revisions into migrations" in out.stdout
    assert ("Verified on two shadow databases: 9 of 9 upgrades, 9 of 9 downgrades (after each, "
            "the schema is Alembic's).") in out.stdout
    files = scripts(p)
    assert len(files) == 9
    merge = files["e0a3c5d7f950_merge_api_keys_and_tags.sql"]
    assert f"-- down_revision: {API_KEYS}, {TAGS}\n" in merge
    assert "-- branch_labels: tags\n" in files["5b9f1e2c4d40_document_tags.sql"]
    audit = files["aa11bb22cc01_audit_log.sql"]
    assert "-- branch_labels: audit\n" in audit and f"-- depends_on: {SETTINGS}\n" in audit
    assert "-- down_revision" not in audit
    concurrent = files["9a4b6c8d0e70_index_chunks_by_document_concurrently.sql"]
    assert "-- transactional: false\n" in concurrent
    baseline = files["3f1a9c2e7b10_baseline_documents_and_chunks_with_embed.sql"]
    assert baseline.startswith(f"-- revision: {BASELINE}\n-- message: baseline: documents and "
                               "chunks with embeddings\n-- created: 2025-03-04 10:11:12.345678\n")
    assert ("USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);"
            in baseline)
    # no stamp: retort reads Alembic's row, and applies the rest
    out = run(bins, "migrate-current", cwd=p.root, url=database)
    assert out.returncode == 0 and TOUCH in out.stdout, out
    out = run(bins, "migrate-up", cwd=p.root, url=database)
    assert out.returncode == 0, out.stderr
    assert sorted(r for (r,) in query(database, "SELECT version_num FROM alembic_version")) == \
        sorted([BATCH, AUDIT])
    out = run(bins, "migrate-check", "--allow-multiple-heads", cwd=p.root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    # the shadows are gone, and the URL's password was never printed
    shadows = query(database, "SELECT datname FROM pg_database WHERE datname LIKE 'retort_shadow%'")
    assert shadows == []
    password = database.split(":")[2].split("@")[0]
    assert password not in out.stdout + out.stderr


def test_a_python_data_migration_is_imported_as_a_program_step_and_verified(
        alembic_project, bins, database):
    """By default nothing is refused: the backfill through op.get_bind() becomes a program step
    running its own upgrade() through Alembic's operations, its file kept beside the scripts,
    and the verification walks the whole history through it."""
    p = alembic_project
    write_rag_history(p)
    line = p.line_of("d81e3f5a7b90_backfill_titles.py", "rows = conn.execute(")
    out = run(bins, "migrate-import", cwd=p.root, url=database)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Imported 10 Alembic revisions into migrations" in out.stdout
    assert (f"program {BACKFILL}: upgrade() reads rows through op.get_bind() (line {line}) in "
            "migrations/versions/d81e3f5a7b90_backfill_titles.py") in out.stdout
    assert ("Verified on two shadow databases: 10 of 10 upgrades, 10 of 10 downgrades, 1 of them "
            "program step") in out.stdout
    text = scripts(p)["d81e3f5a7b90_backfill_empty_titles.sql"]
    assert "-- unconverted" not in text
    up = text.split("-- migrate:up\n")[1].split("-- migrate:down")[0]
    assert ("-- run: \"${RETORT_PYTHON:-python3}\" -m retort_migrate.alembic_step "
            "alembic/d81e3f5a7b90_backfill_titles.py\n") in up
    kept = p.root / "migrations" / "alembic" / "d81e3f5a7b90_backfill_titles.py"
    assert kept.read_text() == (p.root / "migrations" / "versions" /
                                "d81e3f5a7b90_backfill_titles.py").read_text()
    ctx = json.loads((p.root / "migrations" / "alembic" / "_context.json").read_text())
    assert ctx["naming_convention"]["pk"] == "pk_%(table_name)s"
    # the step as retort runs it: its working directory, DATABASE_URL, the direction
    alembic(p, database, "upgrade", BATCH)
    assert psql(database, "INSERT INTO documents (title) VALUES ('')").returncode == 0
    env = dict(os.environ, DATABASE_URL=database, RETORT_DIRECTION="up", RETORT_REVISION=BACKFILL,
               PYTHONPATH=str(PYTHON_SRC))
    out = subprocess.run(["sh", "-c", up.strip().splitlines()[-1].removeprefix("-- run: ")],
                         cwd=p.root / "migrations", env=dict(env, RETORT_PYTHON=sys.executable),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert query(database, "SELECT title FROM documents") == [("document 1",)]


def test_strict_refuses_what_is_not_sql_unless_allowed(alembic_project, bins, database):
    p = alembic_project
    write_rag_history(p)
    line = p.line_of("d81e3f5a7b90_backfill_titles.py", "rows = conn.execute(")
    out = run(bins, "migrate-import", "--strict", cwd=p.root, url=database)
    assert out.returncode == 1, out
    assert "Not imported: 1 revision cannot be written as SQL (nothing was written)" in out.stdout
    assert (f"unconverted {BACKFILL}: upgrade() reads rows through op.get_bind() (line {line}) "
            "in migrations/versions/d81e3f5a7b90_backfill_titles.py") in out.stdout
    assert scripts(p) == {}
    out = run(bins, "migrate-import", "--strict", "--allow-unconverted", "--format", "json",
              cwd=p.root, url=database)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is True and doc["written"] is True
    (r,) = [r for r in doc["revisions"] if r["unconverted"]]
    assert r["revision"] == BACKFILL
    # the walk goes on past it (Alembic's own code in its place), which is not counted
    assert doc["verification"]["upgrades"] == 9 and doc["verification"]["downgrades"] == 10
    assert f"the upgrade of {BACKFILL} (unconverted" in doc["verification"]["notes"][0]
    text = scripts(p)["d81e3f5a7b90_backfill_empty_titles.sql"]
    assert "-- unconverted: upgrade() reads rows through op.get_bind()" in text
    assert "-- |     rows = conn.execute(sa.text(\"SELECT id FROM documents WHERE title = ''\"))" in text
    # migrate-check reports it; migrate-up stops there with the message
    out = run(bins, "migrate-check", "--offline", cwd=p.root)
    assert out.returncode == 1
    assert f"problem [unconverted]: migrations/d81e3f5a7b90_backfill_empty_titles.sql: revision {BACKFILL}" in out.stdout
    out = run(bins, "migrate-up", cwd=p.root, url=database)
    assert out.returncode == 4
    assert "was imported from Alembic without its upgrade SQL: write it in" in out.stderr


def test_existing_files_are_only_replaced_with_force(converted_history, bins):
    p = converted_history
    assert run(bins, "migrate-import", "--no-verify", cwd=p.root).returncode == 0
    path = p.root / "migrations" / "8d2e4b6a1c20_server_settings.sql"
    path.write_text(path.read_text() + "-- my note\n")
    out = run(bins, "migrate-import", "--no-verify", cwd=p.root)
    assert out.returncode == 2
    assert "9 files in migrations would be overwritten or would define the same revision" in out.stderr
    assert "pass --force" in out.stderr
    assert path.read_text().endswith("-- my note\n")
    out = run(bins, "migrate-import", "--no-verify", "--force", cwd=p.root)
    assert out.returncode == 0, out.stderr
    assert not path.read_text().endswith("-- my note\n")


def test_the_verification_names_the_revision_and_the_objects_that_differ(alembic_project, bins,
                                                                         database):
    p = alembic_project
    write_rag_history(p)
    versions = p.root / "migrations" / "versions"
    for f in versions.glob("*.py"):
        if not f.name.startswith(("3f1a9c2e7b10", "8d2e4b6a1c20")):
            f.unlink()
    assert run(bins, "migrate-import", cwd=p.root, url=database).returncode == 0
    (path,) = (p.root / "migrations").glob("3f1a9c2e7b10_*.sql")
    path.write_text(path.read_text().replace("m = 16", "m = 24"))
    out = run(bins, "migrate-import", "--verify-only", cwd=p.root, url=database)
    assert out.returncode == 1, out
    assert (f"difference after the upgrade of {BASELINE} (baseline: documents and chunks with "
            "embeddings): to match Alembic's, retort's schema would need:") in out.stdout
    assert "chunks_embedding_hnsw_idx" in out.stdout
    assert "Verified" not in out.stdout


def test_errors_are_clear_and_change_nothing(alembic_project, bins, tmp_path):
    p = alembic_project
    write_rag_history(p)
    out = run(bins, "migrate-import", "--config", "nowhere.ini", cwd=p.root)
    assert out.returncode == 2
    assert "error: no Alembic configuration at nowhere.ini" in out.stderr
    out = run(bins, "migrate-import", "--python", "/nonexistent/python", cwd=p.root)
    assert out.returncode == 2 and "pass --python" in out.stderr
    nosite = tmp_path / "python-without-alembic"
    nosite.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    nosite.chmod(0o755)
    out = run(bins, "migrate-import", "--python", str(nosite), cwd=p.root)
    assert out.returncode == 2
    assert "Alembic is not importable by" in out.stderr and "pip install alembic" in out.stderr
    env_py = p.root / "migrations" / "env.py"
    good = env_py.read_text()
    env_py.write_text(good.replace("target_metadata = Base.metadata",
                                   "target_metadata = Base.metadata\nraise RuntimeError('no settings')"))
    out = run(bins, "migrate-import", cwd=p.root)
    assert out.returncode == 6
    assert "env.py failed in offline mode: RuntimeError: no settings (migrations/env.py:" in out.stderr
    env_py.write_text(good)
    p.add("0001_loop.py", revision_file("0001", "0002", "a", upgrade="pass"))
    p.add("0002_loop.py", revision_file("0002", "0001", "b", upgrade="pass"))
    out = run(bins, "migrate-import", cwd=p.root)
    assert out.returncode == 6 and "Alembic rejects the revision graph" in out.stderr
    assert scripts(p) == {}
    # a migrate-* binary pointed at the Alembic directory says what to do
    out = run(bins, "migrate-history", cwd=p.root)
    assert out.returncode == 2
    assert "looks like an Alembic script directory" in out.stderr and "run migrate-import" in out.stderr


# ---- the users' loop: models -> autogenerate -> up -> check ------------------------------------

MODELS_V1 = '''
from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, ForeignKey, Index, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_uri: Mapped[str] = mapped_column(Text, unique=True)


class Chunk(Base):
    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    content: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[float]] = mapped_column(Vector(1536))

    __table_args__ = (
        Index("chunks_embedding_hnsw_idx", "embedding", postgresql_using="hnsw",
              postgresql_with={"m": 16, "ef_construction": 64},
              postgresql_ops={"embedding": "vector_cosine_ops"}),
    )
'''


def test_autogenerate_from_sqlalchemy_models_over_four_steps(tmp_path, bins, database):
    app = tmp_path / "app"
    (app / "ragapp").mkdir(parents=True)
    (app / "migrations").mkdir()
    (app / "ragapp" / "__init__.py").write_text("")
    models = app / "ragapp" / "models.py"
    env = {"PYTHONPATH": f"{PYTHON_SRC}:{app}"}
    command = f"{sys.executable} -m retort_migrate.schema ragapp.models"

    def step(message, edit=None, up_args=()):
        if edit:
            models.write_text(edit(models.read_text()))
        out = run(bins, "migrate-revision", "--autogenerate", "-m", message, "--schema-command",
                  command, cwd=app, url=database, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Generating migrations/" in out.stdout
        written = max((app / "migrations").glob("*.sql"))
        out = run(bins, "migrate-up", *up_args, cwd=app, url=database)
        assert out.returncode == 0, out.stderr
        out = run(bins, "migrate-check", cwd=app, url=database,
                  env=dict(env, MIGRATE_SCHEMA_COMMAND=command))
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"the output of `{command}` matches the migrations and the database" in out.stdout
        return written.read_text()

    models.write_text(textwrap.dedent(MODELS_V1))
    first = step("documents and chunks")
    # the file names its source: the command, not the temporary file its output went to
    assert f"-- Generated by migrate-revision --autogenerate from the output of `{command}`." \
        in first
    assert "schema-command-output.sql" not in first
    assert "CREATE EXTENSION IF NOT EXISTS vector" in first or "CREATE EXTENSION vector" in first
    assert "vector(1536)" in first and "vector_cosine_ops" in first
    second = step("document titles", lambda t: t.replace(
        '    source_uri: Mapped[str] = mapped_column(Text, unique=True)\n',
        '    source_uri: Mapped[str] = mapped_column(Text, unique=True)\n'
        '    title: Mapped[str | None] = mapped_column(Text)\n'))
    assert "ADD COLUMN title text" in second
    # the app goes live: chunks holds rows, so a blocking rebuild of its HNSW index would hold
    # writes for the whole build; autogenerate sees the rows and writes the index changes as
    # CONCURRENTLY builds, which the lint gate passes with no --allow-unsafe
    filled = psql(database, "INSERT INTO documents (id, source_uri)"
                            " SELECT g, 'doc-' || g FROM generate_series(1, 50) g;"
                            " INSERT INTO chunks (id, document_id, content, embedding)"
                            " SELECT g, 1 + g % 50, 'chunk ' || g,"
                            " array_fill((g % 97)::real / 97, ARRAY[1536])::vector"
                            " FROM generate_series(1, 2000) g;")
    assert filled.returncode == 0, filled.stderr
    # what Alembic's autogenerate does not see: the WITH parameters, then the operator class
    third = step("denser hnsw graph", lambda t: t.replace('"m": 16', '"m": 32'))
    flat = third.replace(" ", "").replace("m=32", "m='32'")
    assert "CONCURRENTLY" in third and "DROP INDEX" in third and "m='32'" in flat
    fourth = step("l2 distance", lambda t: t.replace("vector_cosine_ops", "vector_l2_ops"))
    assert "vector_l2_ops" in fourth and "CONCURRENTLY" in fourth and "DROP INDEX" in fourth
    # a provider that fails is an error with its stderr, and changes nothing
    models.write_text(models.read_text() + "\nraise RuntimeError('settings missing')\n")
    before = sorted((app / "migrations").glob("*.sql"))
    out = run(bins, "migrate-revision", "--autogenerate", "-m", "x", "--schema-command", command,
              cwd=app, url=database, env=env)
    assert out.returncode == 2
    assert f"error: the schema command `{command}` failed" in out.stderr
    assert "settings missing" in out.stderr
    assert sorted((app / "migrations").glob("*.sql")) == before
