"""Run one Alembic revision's own `upgrade()` or `downgrade()` on a database: the program step
`migrate-import` writes for a revision whose work is Python, not SQL.

    python -m retort_migrate.alembic_step alembic/3f2a1c_backfill.py

retort runs that command as a `-- run:` step (working directory: the migrations directory) with
`DATABASE_URL` (the database), `RETORT_DIRECTION` (`up` or `down`) and `RETORT_REVISION` in the
environment. The revision file is loaded like Alembic loads it, and its function runs through
Alembic's own operations (`op.*`, `op.get_bind()`, `op.get_context().autocommit_block()`,
`context.is_offline_mode()`) with a MigrationContext on that database, inside one transaction
that is committed when the function returns. Alembic's version table is not touched: retort
records the revision once this program exits 0.

The MigrationContext gets what env.py gave Alembic and the revision needs: the naming
convention of its `target_metadata` (so that `op.f()` and unnamed constraints get the names
Alembic gave them), read from `_context.json` beside the revision file, written by the import.

The driver: the one `DATABASE_URL` names (`postgresql+psycopg2://`), else the first of
psycopg2, psycopg (3) and asyncpg that imports in this Python. The directory above the working
directory (the project's root, as `prepend_sys_path = .` in alembic.ini gives Alembic), the
working directory and the revision's own directory are put on `sys.path`, so a revision importing the project's modules
finds them.

Exit codes: 0 done; 1 the revision failed (its error on stderr, with the file and line); 2 usage
(no DATABASE_URL, no such file, no such function).

`--serve` (used by `migrate-import`'s verification): reads `up FILE` / `down FILE` lines from
stdin and answers each with one JSON line on stdout, so one process runs many revisions.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import sys
import traceback

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]*@")


def redact(text):
    """Hides the password of every URL in `text`."""
    return _URL_PASSWORD.sub(r"\1***@", str(text))


class StepError(Exception):
    def __init__(self, code, message, file=None, line=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.file = file
        self.line = line

    def text(self):
        at = ""
        if self.file and self.line:
            at = " (%s, line %d)" % (self.file, self.line)
        elif self.file:
            at = " (%s)" % self.file
        return redact(self.message + at)


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def choose_driver(url):
    """`url` with a driver SQLAlchemy can use in this Python: the one it names, else psycopg2,
    psycopg or asyncpg (the first that imports). Returns (url, is_async)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    backend, _, driver = u.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if not driver:
        for module, name in (("psycopg2", "psycopg2"), ("psycopg", "psycopg"),
                             ("asyncpg", "asyncpg")):
            if _importable(module):
                driver = name
                break
        else:
            raise StepError(2, "no PostgreSQL driver imports in %s: install psycopg2-binary, "
                               "psycopg or asyncpg" % sys.executable)
    u = u.set(drivername="%s+%s" % (backend, driver))
    if driver == "asyncpg":
        # libpq's sslmode means ssl to asyncpg
        q = dict(u.query)
        if "sslmode" in q:
            q["ssl"] = q.pop("sslmode")
        u = u.set(query=q)
    return u, driver == "asyncpg"


def _load_module(path):
    name = "retort_alembic_revision_%d" % abs(hash(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StepError(2, "cannot load %s as a Python file" % path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise _failure(e, path, "the revision file does not load")
    return module


def _failure(exc, path, what):
    frames = traceback.extract_tb(exc.__traceback__)
    line = None
    for fr in reversed(frames):
        if os.path.abspath(fr.filename) == os.path.abspath(path):
            line = fr.lineno
            break
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return StepError(1, "%s: %s" % (what, " ".join(text.split())), file=path, line=line)


def _context_options(path, context_file):
    """What the MigrationContext gets from the import's `_context.json`."""
    import sqlalchemy as sa

    candidate = context_file or os.path.join(os.path.dirname(path), "_context.json")
    opts = {}
    if candidate and os.path.isfile(candidate):
        with open(candidate, encoding="utf-8") as f:
            doc = json.load(f)
        nc = doc.get("naming_convention")
        if nc:
            opts["target_metadata"] = sa.MetaData(naming_convention=nc)
    return opts


def _run_function(module, fn_name, path, connection, opts):
    from alembic.config import Config
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

    fn = getattr(module, fn_name, None)
    if fn is None:
        raise StepError(2, "the revision file has no %s() function" % fn_name, file=path)
    ctx = MigrationContext.configure(connection=connection,
                                     opts=dict(opts, transactional_ddl=True))
    env = EnvironmentContext(Config(), None)
    env._migration_context = ctx
    env._install_proxy()
    try:
        with Operations.context(ctx):
            with ctx.begin_transaction():
                try:
                    fn()
                except StepError:
                    raise
                except Exception as e:
                    raise _failure(e, path, "%s() failed" % fn_name)
    finally:
        env._remove_proxy()


def run_step(path, direction, url, context_file=None, engines=None):
    """Runs `upgrade()` (direction `up`) or `downgrade()` of the revision file `path` on `url`."""
    if direction not in ("up", "down"):
        raise StepError(2, "the direction is 'up' or 'down', not %r" % direction)
    if not os.path.isfile(path):
        raise StepError(2, "no revision file %s" % path)
    cwd = os.path.abspath(os.getcwd())
    for d in (os.path.dirname(cwd), cwd, os.path.dirname(os.path.abspath(path))):
        if d not in sys.path:
            sys.path.insert(0, d)
    _lowercase_pgvector_types()
    _named_types_once()
    module = _load_module(path)
    revision = os.environ.get("RETORT_REVISION")
    if revision and getattr(module, "revision", revision) != revision:
        raise StepError(2, "%s is revision %s, not %s" % (path, module.revision, revision),
                        file=path)
    opts = _context_options(path, context_file)
    fn_name = "upgrade" if direction == "up" else "downgrade"
    engines = engines if engines is not None else {}
    if url not in engines:
        engines[url] = _engine(url)
    engine, is_async = engines[url]
    if not is_async:
        with engine.connect() as connection:
            _run_function(module, fn_name, path, connection, opts)
        return
    import asyncio

    async def main():
        async with engine.connect() as connection:
            await connection.run_sync(
                lambda sync: _run_function(module, fn_name, path, sync, opts))

    asyncio.run(main())
    engine.sync_engine.dispose()


def _engine(url):
    import sqlalchemy as sa

    u, is_async = choose_driver(url)
    if is_async:
        from sqlalchemy.ext.asyncio import create_async_engine

        return create_async_engine(u, poolclass=sa.pool.NullPool), True
    return sa.create_engine(u, poolclass=sa.pool.NullPool), False


def _named_types_once():
    """PostgreSQL named types (enums) created or dropped with a table, as a whole Alembic run
    does them.

    `op.create_table()` with an `sa.Enum` column emits `CREATE TYPE`, and `op.drop_table()`
    `DROP TYPE`, unless the same run already did (SQLAlchemy remembers the names per run), so a
    history whose later revision creates another table with the same enum upgrades in one
    `alembic upgrade heads`. A program step runs one revision alone: here the type is created
    only when the database lacks it, and dropped only when it has it, which is what that run
    leaves (the import's verification compares the two after every step)."""
    try:
        from sqlalchemy.dialects.postgresql.named_types import NamedType as cls
    except ImportError:  # SQLAlchemy 1.4: the hooks are the ENUM's own
        try:
            from sqlalchemy.dialects.postgresql.base import ENUM as cls
        except ImportError:
            return
    if getattr(cls, "_retort_once", False):
        return
    create, drop = cls._on_table_create, cls._on_table_drop

    def on_table_create(self, target, bind, checkfirst=False, **kw):
        return create(self, target, bind, checkfirst=True, **kw)

    def on_table_drop(self, target, bind, checkfirst=False, **kw):
        return drop(self, target, bind, checkfirst=True, **kw)

    cls._on_table_create, cls._on_table_drop = on_table_create, on_table_drop
    cls._retort_once = True


def _lowercase_pgvector_types():
    try:
        from retort_migrate.alembic_export import lowercase_pgvector_types
    except ImportError:
        try:
            from alembic_export import lowercase_pgvector_types
        except ImportError:
            return
    lowercase_pgvector_types()


def serve(url, context_file, stdin, stdout):
    engines = {}
    for line in stdin:
        words = line.split(None, 1)
        if not words:
            continue
        if words == ["quit"]:
            break
        try:
            if len(words) != 2:
                raise StepError(2, "expected 'up FILE' or 'down FILE', got %r" % line.strip())
            with contextlib.redirect_stdout(sys.stderr):
                run_step(words[1].strip(), words[0], url, context_file, engines)
            doc = {"ok": True}
        except StepError as e:
            doc = {"ok": False, "error": {"message": redact(e.message), "file": e.file,
                                          "line": e.line}}
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            doc = {"ok": False, "error": {"message": redact("%s: %s" % (type(e).__name__, e)),
                                          "file": None, "line": None}}
        stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        stdout.flush()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m retort_migrate.alembic_step", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", help="the Alembic revision file")
    parser.add_argument("--direction", choices=("up", "down"),
                        default=os.environ.get("RETORT_DIRECTION", "up"),
                        help="up: upgrade(), down: downgrade() (default: RETORT_DIRECTION, else up)")
    parser.add_argument("--context", help="the import's _context.json (default: beside FILE)")
    parser.add_argument("--serve", action="store_true",
                        help="read 'up FILE' / 'down FILE' lines from stdin")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("alembic_step: DATABASE_URL is not set: retort sets it for a -- run: step; set it "
              "to run the revision by hand", file=sys.stderr)
        return 2
    if args.serve:
        real_stdout = sys.stdout
        return serve(url, args.context, sys.stdin, real_stdout)
    if not args.file:
        parser.error("the revision file is required")
    try:
        run_step(args.file, args.direction, url, args.context)
    except StepError as e:
        print("alembic_step: %s" % e.text(), file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
