"""Shared pieces of the Python scenarios: paths, a real database per test, the built binaries,
the wheel (built once per session), and a writer for Alembic projects in tmp directories.

Run through `make test-python`, which starts a throwaway PostgreSQL with pgvector
(scripts/pg.sh run) and gives TEST_DATABASE_URL and PG_BIN."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON_SRC = REPO / "python"
EXPORTER = PYTHON_SRC / "retort_migrate" / "alembic_export.py"
sys.path.insert(0, str(PYTHON_SRC))  # import retort_migrate from this checkout

MIGRATE_BINS = ["migrate-up", "migrate-down", "migrate-current", "migrate-history",
                "migrate-revision", "migrate-check", "migrate-stamp", "migrate-import"]


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.fail("TEST_DATABASE_URL is not set: run these tests with `make test-python` "
                    "(it starts a throwaway PostgreSQL with pgvector)", pytrace=False)
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def psql_bin() -> str:
    pg_bin = os.environ.get("PG_BIN")
    if pg_bin and (Path(pg_bin) / "psql").exists():
        return str(Path(pg_bin) / "psql")
    found = shutil.which("psql")
    if not found:
        pytest.fail("no psql: PG_BIN is not set and psql is not on PATH", pytrace=False)
    return found


def _new_database(request, suffix=""):
    import psycopg2

    server = _server_url()
    name = "py_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + \
        uuid.uuid4().hex[:6] + suffix
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    yield with_database(server, name)
    conn = psycopg2.connect(server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def database(request) -> str:
    """A new, empty database on the test server; its URL (dropped after the test)."""
    yield from _new_database(request)


@pytest.fixture
def fresh_database(request) -> str:
    """A second new, empty database on the test server, beside `database`."""
    yield from _new_database(request, "_b")


def catalog(url: str) -> tuple[str, str]:
    """The database as pg_dump prints it: its schema, and its rows (timestamps masked), without
    the version tables (retort's `alembic_version*` bookkeeping beside Alembic's own), to
    compare two databases."""
    parts = urlsplit(url)
    pg_dump = str(Path(psql_bin()).with_name("pg_dump"))
    env = dict(os.environ, PGPASSWORD=parts.password or "")
    dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}"))

    def dump(what):
        out = subprocess.run([pg_dump, "--no-owner", "--no-privileges",
                              "--exclude-table=alembic_version*", what, "-d", dsn],
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        # comments, blank lines and the dump's random \restrict key are not the database
        return "\n".join(ln for ln in out.stdout.splitlines()
                         if ln.strip() and not ln.startswith("--")
                         and not ln.startswith(("\\restrict", "\\unrestrict")))

    # a row's time of insertion (a `DEFAULT now()` column) is the only thing two runs of the same
    # history may not share
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:\d{2})?)?")
    return dump("--schema-only"), stamp.sub("<timestamp>", dump("--data-only"))


def query(url: str, sql: str, *args):
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def psql(url: str, sql: str) -> subprocess.CompletedProcess:
    """Runs `sql` with psql (ON_ERROR_STOP, each statement in its own transaction, as a DBA
    would run a script); the password goes through PGPASSWORD, not the command line."""
    parts = urlsplit(url)
    env = dict(os.environ, PGPASSWORD=parts.password or "")
    dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}"))
    return subprocess.run([psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
                          input=sql, text=True, capture_output=True, env=env)


@pytest.fixture(scope="session")
def release_bins() -> Path:
    """The migrate-* binaries of this checkout, built with `cargo build --release` (a no-op when
    they are up to date) with the wheel's features (pyproject.toml: OpenSSL built in), so that
    `make wheel` finds them compiled."""
    out = subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "retort-bins", "--bins",
         "--features", "vendored-openssl"],
        cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, f"cargo build --release failed:\n{out.stderr}"
    bin_dir = REPO / "target" / "release"
    for b in MIGRATE_BINS:
        assert (bin_dir / b).is_file(), f"{b} was not built"
    return bin_dir


@pytest.fixture(scope="session")
def wheel() -> Path:
    """`make wheel` once per session; the wheel it leaves in target/wheels/."""
    wheels = REPO / "target" / "wheels"
    for old in wheels.glob("retort_migrate-*.whl"):
        old.unlink()
    out = subprocess.run(["make", "--no-print-directory", "wheel"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"make wheel failed:\n{out.stdout}\n{out.stderr}"
    built = sorted(wheels.glob("retort_migrate-*.whl"))
    assert len(built) == 1, f"expected one wheel in {wheels}, found {built}"
    return built[0]


# ---- Alembic projects -------------------------------------------------------------------------

ALEMBIC_INI = """\
[alembic]
script_location = migrations
prepend_sys_path = .
sqlalchemy.url = postgresql+psycopg2://app:s3cret-pw@db.internal:5432/rag

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

# Alembic's generic env.py, with the application's metadata as target_metadata
ENV_PY = """\
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from ragapp.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

MODELS_PY = """\
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""


def revision_file(rev: str, down, message: str, upgrade: str, downgrade: str = "pass",
                  imports: str = "", branch_labels=None, depends_on=None,
                  create_date: str = "2025-03-04 10:11:12.345678") -> str:
    """A revision module as `alembic revision` writes it (script.py.mako)."""
    down_repr = repr(down)
    return (
        f'"""{message}\n\nRevision ID: {rev}\nRevises: {down or ""}\n'
        f'Create Date: {create_date}\n\n"""\n'
        "from typing import Sequence, Union\n\n"
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        f"{imports}\n\n"
        f"revision: str = {rev!r}\n"
        f"down_revision: Union[str, Sequence[str], None] = {down_repr}\n"
        f"branch_labels: Union[str, Sequence[str], None] = {branch_labels!r}\n"
        f"depends_on: Union[str, Sequence[str], None] = {depends_on!r}\n\n\n"
        "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
        + "\n\n\ndef downgrade() -> None:\n"
        + textwrap.indent(textwrap.dedent(downgrade).strip(), "    ") + "\n"
    )


class AlembicProject:
    """An Alembic project in a directory: alembic.ini, migrations/env.py, migrations/versions/,
    and the application package ragapp/ with its models."""

    def __init__(self, root: Path):
        self.root = root
        (root / "migrations" / "versions").mkdir(parents=True)
        (root / "ragapp").mkdir()
        (root / "ragapp" / "__init__.py").write_text("")
        (root / "ragapp" / "models.py").write_text(MODELS_PY)
        (root / "alembic.ini").write_text(ALEMBIC_INI)
        (root / "migrations" / "env.py").write_text(ENV_PY)

    def add(self, filename: str, text: str) -> Path:
        path = self.root / "migrations" / "versions" / filename
        path.write_text(text)
        return path

    def line_of(self, filename: str, needle: str) -> int:
        lines = (self.root / "migrations" / "versions" / filename).read_text().splitlines()
        hits = [i + 1 for i, ln in enumerate(lines) if needle in ln]
        assert len(hits) == 1, f"{needle!r} is on lines {hits} of {filename}"
        return hits[0]

    def export(self, *args: str, python: str = sys.executable, env=None):
        """Runs the exporter as retort's importer does: the file, with the project's Python, in
        the project's directory. Returns (exit code, the JSON document, stderr)."""
        out = subprocess.run([python, str(EXPORTER), *args], cwd=self.root,
                             capture_output=True, text=True, env=env)
        try:
            doc = json.loads(out.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"stdout is not one JSON document:\n{out.stdout}\nstderr:\n{out.stderr}")
        return out.returncode, doc, out.stderr


@pytest.fixture
def alembic_project(tmp_path) -> AlembicProject:
    return AlembicProject(tmp_path / "project")
