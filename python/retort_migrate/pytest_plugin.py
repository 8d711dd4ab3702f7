"""retort's pytest plugin, registered by the wheel (entry point `pytest11`): databases migrated
by retort for the application's own tests, and ready-made migration checks.

Fixtures:

- `retort_db`: a database at the heads of the migrations, new for each test. The migrations run
  once per session, into a template database; each test gets `CREATE DATABASE ... TEMPLATE`
  of it (a file copy on the server: milliseconds, whatever the history's length), dropped after
  the test.
- `retort_db_at`: a factory, `retort_db_at("0041")`: a new database migrated to that revision,
  to seed rows and then `.upgrade("0042")` — a data migration's test.
- `retort_template`: the session's template (its URL, name, heads).

The server is the one of `RETORT_TEST_DATABASE_URL`, else `DATABASE_URL` (the environment or
`.env`); its database is only connected to, never changed. The migrations directory is the
`retort_migrations` ini option, else `MIGRATIONS_DIR`, else `migrations/` beside the rootdir.

The checks (`from retort_migrate.checks import *` in a test module) live in `checks.py`.

The plugin is loaded by every pytest run of an environment where the wheel is installed:
importing it costs nothing and does nothing until a fixture is asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

URL_VARIABLES = ("RETORT_TEST_DATABASE_URL", "DATABASE_URL", "PGVECTOR_DB_URL")


class _Setup(Exception):
    """A fixture cannot be set up: the message says what to set or install."""


def _stop(message: str):
    """Ends the fixture's setup with `message` alone (no traceback of the plugin's code)."""
    pytest.fail(message, pytrace=False)


def pytest_addoption(parser):
    parser.addini("retort_migrations", "retort: the migrations directory (default: "
                  "MIGRATIONS_DIR, else migrations/ beside the rootdir)", default=None)
    parser.addini("retort_schema_command", "retort: the command printing the models' schema "
                  "for the models-match-migrations check (default: MIGRATE_SCHEMA_COMMAND), e.g. "
                  "python -m retort_migrate.schema app.models:Base", default=None)


# ---- configuration ----------------------------------------------------------------------------

def _dotenv(path: Path) -> Dict[str, str]:
    """KEY=value lines of a .env file (enough to find a URL; the binaries read it fully)."""
    out: Dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def server_url(config) -> str:
    """The URL whose server the test databases are created on."""
    dotenv = _dotenv(Path(str(config.rootpath)) / ".env")
    for var in URL_VARIABLES:
        value = os.environ.get(var) or dotenv.get(var)
        if value:
            return value
    raise _Setup(
        "retort: no database server for the test databases: set RETORT_TEST_DATABASE_URL (or "
        "DATABASE_URL) to a PostgreSQL URL whose role may CREATE DATABASE; its own database is "
        "only connected to, the tests get databases of their own")


def migrations_dir(config) -> Path:
    configured = config.getini("retort_migrations") or os.environ.get("MIGRATIONS_DIR")
    root = Path(str(config.rootpath))
    path = Path(configured) if configured else Path("migrations")
    return path if path.is_absolute() else root / path


def schema_command(config) -> Optional[str]:
    return config.getini("retort_schema_command") or os.environ.get("MIGRATE_SCHEMA_COMMAND")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _libpq_url(url: str) -> str:
    """postgresql+asyncpg://... as a driver accepts it (postgresql://...)."""
    return re.sub(r"^postgres(ql)?\+[a-z0-9]+://", "postgresql://", url)


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# ---- the server's administration: CREATE / DROP DATABASE --------------------------------------

class _Admin:
    """One connection to the server's URL for the session's CREATE / DROP DATABASE statements
    (each outside a transaction), with whichever PostgreSQL driver the application has:
    psycopg (3), psycopg2, or asyncpg (a connection per statement)."""

    def __init__(self, url: str):
        self.url = _libpq_url(url)
        self.conn = None
        self.kind = None

    def _connect(self):
        try:
            import psycopg  # type: ignore

            self.conn, self.kind = psycopg.connect(self.url, autocommit=True), "psycopg"
            return
        except ImportError:
            pass
        try:
            import psycopg2  # type: ignore

            self.conn = psycopg2.connect(self.url)
            self.conn.autocommit = True
            self.kind = "psycopg2"
            return
        except ImportError:
            pass
        try:
            import asyncpg  # type: ignore  # noqa: F401
        except ImportError:
            raise _Setup(
                "retort: creating the test databases needs a PostgreSQL driver in this "
                "environment: pip install psycopg (or psycopg2-binary, or asyncpg)") from None
        self.kind = "asyncpg"

    def execute(self, sql: str) -> None:
        if self.kind is None:
            self._connect()
        if self.kind == "psycopg":
            self.conn.execute(sql)
        elif self.kind == "psycopg2":
            with self.conn.cursor() as cur:
                cur.execute(sql)
        else:
            import asyncio

            import asyncpg  # type: ignore

            async def run():
                conn = await asyncpg.connect(self.url)
                try:
                    await conn.execute(sql)
                finally:
                    await conn.close()
            asyncio.run(run())

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- what the fixtures hand out ---------------------------------------------------------------

@dataclass
class MigratedDatabase:
    """A test database: `url` (the server URL's form, its database replaced: a
    `postgresql+asyncpg://` URL stays one), `name`, and the revisions it is at."""
    url: str
    name: str
    migrations_dir: Path
    heads: List[str] = field(default_factory=list)

    def upgrade(self, target: str = "heads"):
        """migrate-up TARGET on this database (`retort_migrate.upgrade`); its RunReport."""
        import retort_migrate

        report = retort_migrate.upgrade(target, url=self.url, migrations_dir=self.migrations_dir)
        self.heads = list(report.to_heads)
        return report

    def current(self) -> List[str]:
        import retort_migrate

        return retort_migrate.current(url=self.url, migrations_dir=self.migrations_dir)


class _Server:
    """Creates and drops the session's databases, named after one token per session (pytest-
    xdist workers each have their own)."""

    def __init__(self, config):
        self.url = server_url(config)
        self.migrations_dir = migrations_dir(config)
        self.token = uuid.uuid4().hex[:8]
        self.count = 0
        self.admin = _Admin(self.url)

    def name(self, kind: str) -> str:
        self.count += 1
        return f"retort_test_{self.token}_{kind}{self.count}"

    def create(self, name: str, template: Optional[str] = None) -> str:
        sql = f"CREATE DATABASE {_ident(name)}"
        if template:
            sql += f" TEMPLATE {_ident(template)}"
        try:
            self.admin.execute(sql)
        except _Setup:
            raise
        except Exception as e:  # the driver's own error type
            raise _Setup(
                f"retort: cannot create the test database {name} on {_masked(self.url)}: "
                f"{str(e).strip()}; the role needs CREATEDB (ALTER ROLE ... CREATEDB)") from None
        return with_database(self.url, name)

    def drop(self, name: str) -> None:
        self.admin.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def _migration_failed(e) -> None:
    pytest.fail(f"retort: migrating the test database failed:\n{e}", pytrace=False)


@pytest.fixture(scope="session")
def retort_server(request) -> _Server:
    try:
        server = _Server(request.config)
    except _Setup as e:
        _stop(str(e))
    try:
        yield server
    finally:
        server.admin.close()


def _create(server: _Server, name: str, template: Optional[str] = None) -> str:
    try:
        return server.create(name, template)
    except _Setup as e:
        _stop(str(e))


@pytest.fixture(scope="session")
def retort_template(retort_server) -> MigratedDatabase:
    """The session's template: a database migrated to the heads once."""
    import retort_migrate

    name = retort_server.name("template")
    url = _create(retort_server, name)
    db = MigratedDatabase(url, name, retort_server.migrations_dir)
    try:
        try:
            db.upgrade("heads")
        except retort_migrate.MigrationError as e:
            _migration_failed(e)
        yield db
    finally:
        retort_server.drop(name)


@pytest.fixture
def retort_db(retort_server, retort_template) -> MigratedDatabase:
    """A new database at the heads, copied from the session's template; dropped afterwards."""
    name = retort_server.name("db")
    url = _create(retort_server, name, retort_template.name)
    try:
        yield MigratedDatabase(url, name, retort_server.migrations_dir,
                               list(retort_template.heads))
    finally:
        retort_server.drop(name)


@pytest.fixture
def retort_db_at(retort_server) -> Callable[[str], MigratedDatabase]:
    """`retort_db_at("0041")`: a new database migrated to that revision (`base`: empty), to
    seed and then `.upgrade("0042")`. Every database it made is dropped after the test."""
    import retort_migrate

    made: List[str] = []

    def make(revision: str) -> MigratedDatabase:
        name = retort_server.name("at")
        url = _create(retort_server, name)
        made.append(name)
        db = MigratedDatabase(url, name, retort_server.migrations_dir)
        if revision != "base":
            try:
                db.upgrade(revision)
            except retort_migrate.MigrationError as e:
                _migration_failed(e)
        return db

    try:
        yield make
    finally:
        for name in made:
            retort_server.drop(name)


def run_binary(binary: str, args: List[str], url: Optional[str]) -> subprocess.CompletedProcess:
    """A migrate-* binary, the database URL in its environment (never on its command line)."""
    from ._binaries import find_binary

    env = dict(os.environ)
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run([find_binary(binary), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
