"""Export an Alembic history as one JSON document, each revision's body rendered as SQL.

    python alembic_export.py --config alembic.ini [--name alembic] [--skip-env]

retort's importer runs this file with the Python of the Alembic project (so the project's own
packages, SQLAlchemy types and pgvector import as they do for Alembic) and turns the document
into retort scripts. It is self-contained: only the standard library at import time; Alembic,
SQLAlchemy and pgvector are imported from the running environment.

How a body is rendered: for each revision alone, a MigrationContext in Alembic's offline mode
(`as_sql`, `literal_binds`, dialect postgresql) with the options env.py passes to
`context.configure()` (its `target_metadata`, hence its naming conventions), `Operations` bound
to it, then the module's `upgrade()` / `downgrade()`. Every statement Alembic would send is
collected in order; nothing of Alembic's version table and no BEGIN/COMMIT is produced, since
the migration functions are called directly. Statements inside
`op.get_context().autocommit_block()` mark the revision `transactional: false`.

A body that cannot be rendered without a database (it executes statements through
`op.get_bind()` and reads their results, branches on live data, or raises anything in offline
mode) comes out `unconverted`, with the reason, the file and line of the offending call and the
original source of `upgrade()` / `downgrade()`.

Running migrations online (retort's verification of an import, and scripts that want Alembic
to apply one revision on a given database):

    python alembic_export.py --config alembic.ini --upgrade REV [--url URL]
    python alembic_export.py --config alembic.ini --downgrade REV [--url URL]
    python alembic_export.py --config alembic.ini --steps [--url URL]

`--upgrade` / `--downgrade` apply exactly that one revision (its parents and dependencies must
already be applied; its children already removed) through the project's own env.py, online,
with Alembic's version-table bookkeeping. `--steps` does the same for a sequence read from
stdin, one `up REV` / `down REV` line at a time, answering each with one JSON line on stdout
(`{"ok": true, "revision": ...}` or `{"ok": false, "error": {...}}`), so the caller can look at
the database between two revisions; the process loads the project once. The database is
`--url`, else the environment variable RETORT_ALEMBIC_URL (so a password need not be on a
command line): it becomes `sqlalchemy.url` (keeping the driver alembic.ini names, such as
`postgresql+psycopg`) and the variables env.py files commonly read it from (DATABASE_URL,
SQLALCHEMY_DATABASE_URL, SQLALCHEMY_URL, DB_URL, POSTGRES_URL, PGVECTOR_DB_URL and libpq's
PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).

stdout carries exactly one JSON document, on success and on failure (`--steps`: one per line). Exit codes: 0 exported
(possibly with unconverted revisions); 2 usage (no alembic.ini, Alembic not importable, no
section or script_location); 3 the project is broken (env.py raises, a revision file does not
load, Alembic rejects the revision graph); 4 a bug of this exporter.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import re
import sys
import traceback

FORMAT_VERSION = 1

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]*@")


def redact(text):
    """Hides the password of every URL in `text` (`postgresql://u:***@host/db`)."""
    if text is None:
        return None
    return _URL_PASSWORD.sub(r"\1***@", str(text))


class ExportError(Exception):
    """A failure of the whole export: becomes `{"ok": false, "error": {...}}` and the exit code."""

    def __init__(self, exit_code, code, message, hint=None, file=None, line=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.message = message
        self.hint = hint
        self.file = file
        self.line = line

    def document(self):
        return {
            "version": FORMAT_VERSION,
            "ok": False,
            "error": {
                "code": self.code,
                "message": redact(self.message),
                "hint": redact(self.hint),
                "file": self.file,
                "line": self.line,
            },
        }


class NeedsDatabase(Exception):
    """Raised inside a migration function for something only a live database can do."""


def _display_path(path):
    """`path` relative to the current directory when it is below it, else absolute."""
    if not path:
        return path
    path = os.path.abspath(path)
    cwd = os.getcwd()
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _frame_in(tb_or_frames, path):
    """The last frame of a traceback (or list of FrameSummary) that is in file `path`."""
    frames = tb_or_frames
    if not isinstance(frames, list):
        frames = traceback.extract_tb(tb_or_frames)
    for fr in reversed(frames):
        if path and _same_file(fr.filename, path):
            return fr
    return None


def _describe_exception(exc):
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return redact(" ".join(text.split()))


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# ---- pgvector ---------------------------------------------------------------------------------


def lowercase_pgvector_types():
    """Renders pgvector's SQLAlchemy types as PostgreSQL spells them (`vector(384)`, `halfvec(8)`,
    `sparsevec(5)`) instead of pgvector's upper case. No-op without pgvector."""
    try:
        import pgvector.sqlalchemy as pgv
        from sqlalchemy.ext.compiler import compiles
    except ImportError:
        return False
    names = {"VECTOR": "vector", "HALFVEC": "halfvec", "SPARSEVEC": "sparsevec"}
    for attr, sql_name in names.items():
        cls = getattr(pgv, attr, None)
        if cls is None or getattr(cls, "_retort_lowercase", False):
            continue

        def render(type_, compiler, _name=sql_name, **kw):
            dim = getattr(type_, "dim", None)
            return "%s(%d)" % (_name, dim) if dim is not None else _name

        compiles(cls)(render)
        cls._retort_lowercase = True
    return True


# ---- env.py -----------------------------------------------------------------------------------


def _capture_environment(cfg, script):
    """An EnvironmentContext that runs env.py in offline mode and keeps what it passes to
    `context.configure()` instead of configuring anything; `run_migrations()` runs nothing.
    (Alembic's `context` module proxies the EnvironmentContext class itself, so the instance's
    methods are replaced rather than subclassed.)"""
    from alembic.runtime.environment import EnvironmentContext

    env = EnvironmentContext(cfg, script, as_sql=True, fn=lambda rev, context: [])
    env.captured = None
    env.ran_migrations = False

    def configure(**kw):
        env.captured = dict(kw)

    @contextlib.contextmanager
    def begin_transaction(*a, **kw):
        yield

    def run_migrations(**kw):
        env.ran_migrations = True

    env.configure = configure
    env.begin_transaction = begin_transaction
    env.run_migrations = run_migrations
    return env


# ---- rendering one body -----------------------------------------------------------------------


def _make_offline_context_class():
    from alembic.runtime.migration import MigrationContext

    class OfflineContext(MigrationContext):
        """Alembic's offline MigrationContext that collects statements and knows which ran in an
        autocommit block; its bind refuses what needs a database."""

        def _retort_setup(self, script_path):
            self.statements = []  # (sql, in_autocommit)
            self._autocommit_depth = 0
            self._script_path = script_path
            self.bind_calls = []
            impl = self.impl
            context = self
            impl.static_output = lambda text: context.statements.append(
                (text, context._autocommit_depth > 0)
            )
            impl.emit_begin = lambda: None
            impl.emit_commit = lambda: None
            impl.__class__ = type(
                "Retort" + type(impl).__name__,
                (type(impl),),
                {"bind": property(lambda _self: context.bind)},
            )

        @property
        def bind(self):
            fr = _frame_in(traceback.extract_stack()[:-1], self._script_path)
            self.bind_calls.append(fr.lineno if fr else None)
            return OfflineBind(self.connection, fr.lineno if fr else None, self._script_path)

        @contextlib.contextmanager
        def autocommit_block(self):
            self._autocommit_depth += 1
            try:
                yield
            finally:
                self._autocommit_depth -= 1

    return OfflineContext


class OfflineBind(object):
    """What `op.get_bind()` returns here: DDL through SQLAlchemy's schema API
    (`sa.Enum(...).create(bind)`, `metadata.create_all(bind)`) is rendered like Alembic's offline
    mode does; running statements or reading rows raises NeedsDatabase, saying in the revision
    author's words what the revision does (`inspects the live schema (line 14)`)."""

    def __init__(self, mock, line, script_path=None):
        self._mock = mock
        self._line = line
        self._script_path = script_path

    @property
    def dialect(self):
        return self._mock.dialect

    def _run_ddl_visitor(self, *a, **kw):
        return self._mock._run_ddl_visitor(*a, **kw)

    def schema_for_object(self, obj):
        return self._mock.schema_for_object(obj)

    def execute(self, statement, *a, **kw):
        try:
            from sqlalchemy.sql.ddl import ExecutableDDLElement as _DDL
        except ImportError:  # SQLAlchemy 1.4
            from sqlalchemy.sql.ddl import DDLElement as _DDL
        if isinstance(statement, _DDL):
            return self._mock.execute(statement, *a, **kw)
        raise NeedsDatabase(self._what("execute", statement))

    def _what(self, call, statement=None):
        return describe_live_use(call, statement, self._script_path, self._line)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsDatabase(self._what(name))


def describe_live_use(call, statement, script_path, bind_line):
    """What a revision does with the live database, in its author's words, with the line of the
    revision file where it does it: `opens an ORM session (line 30)`, `reflects tables (line 9)`,
    `inspects the live schema (line 14)`, `reads rows through op.get_bind() (line 22)`."""
    stack = traceback.extract_stack()[:-1]
    files = [f.filename.replace("\\", "/") for f in stack]
    names = [f.name for f in stack]
    if any("/sqlalchemy/orm/" in f for f in files):
        what = "opens an ORM session"
    elif any(n in ("reflect", "_autoload", "reflect_table", "_reflect_info") for n in names):
        what = "reflects tables"
    elif call == "inspect" or any(f.endswith("/sqlalchemy/inspection.py") for f in files) \
            or any(f.endswith("/sqlalchemy/engine/reflection.py") for f in files):
        what = "inspects the live schema"
    elif call in ("execute", "exec_driver_sql", "scalar", "scalars"):
        text = str(statement).lstrip().lower() if statement is not None else ""
        try:
            from sqlalchemy.sql import Select
            is_select = isinstance(statement, Select)
        except ImportError:
            is_select = False
        if is_select or text.startswith(("select", "with", "show", "values")):
            what = "reads rows through op.get_bind()"
        else:
            what = "runs statements through op.get_bind() and uses their result"
    elif call in ("connect", "begin", "commit", "rollback", "engine"):
        what = "uses the database connection of op.get_bind() directly"
    else:
        what = "uses the live database through op.get_bind()"
    fr = _frame_in(stack, script_path) if script_path else None
    line = fr.lineno if fr else bind_line
    return "%s%s" % (what, " (line %d)" % line if line else "")


def _register_offline_inspection():
    """`sa.inspect(op.get_bind())` (and MetaData.reflect, Table(autoload_with=)) on the offline
    bind: NeedsDatabase saying the revision inspects the live schema, not SQLAlchemy's
    'No inspection system is available'."""
    try:
        from sqlalchemy import inspection
    except ImportError:
        return
    if OfflineBind in getattr(inspection, "_registrars", {}):
        return

    def refuse(bind):
        raise NeedsDatabase(describe_live_use("inspect", None, bind._script_path, bind._line))

    try:
        inspection._inspects(OfflineBind)(refuse)
    except Exception:
        pass


_LITERAL_COMPILER = []


def _literal_compiler_class():
    """PostgreSQL's statement compiler that also renders, as literals, the values SQLAlchemy has
    no literal renderer for but whose SQL is plain: JSON/JSONB (`'{"a": 1}'::jsonb`), arrays
    (`ARRAY['a', 'b']::varchar[]`), UUIDs, dates and times, intervals and bytes, with the casts
    that make PostgreSQL read them as the column's type (`op.bulk_insert`,
    `op.execute(table.insert().values(...))`)."""
    if _LITERAL_COMPILER:
        return _LITERAL_COMPILER[0]
    from sqlalchemy import exc
    from sqlalchemy.dialects.postgresql.base import PGCompiler

    class LiteralCompiler(PGCompiler):
        def render_literal_value(self, value, type_):
            plain = pg_literal(value, type_, self.dialect, self.render_literal_value)
            if plain is not None:
                return plain
            try:
                return super().render_literal_value(value, type_)
            except (exc.CompileError, NotImplementedError, TypeError, ValueError):
                plain = pg_literal(value, type_, self.dialect, self.render_literal_value,
                                   fallback=True)
                if plain is None:
                    raise
                return plain

    _LITERAL_COMPILER.append(LiteralCompiler)
    return LiteralCompiler


def _quote(text):
    return "'" + text.replace("'", "''") + "'"


def pg_literal(value, type_, dialect, render, fallback=False):
    """`value` of SQLAlchemy type `type_` as a PostgreSQL literal, for the types handled here
    (None: let SQLAlchemy render it). `fallback`: also types SQLAlchemy failed to render."""
    import datetime
    import decimal
    import uuid

    from sqlalchemy import types as sqltypes

    def type_sql(t):
        return dialect.type_compiler_instance.process(t)

    if value is None:
        return "NULL" if isinstance(type_, (sqltypes.JSON, sqltypes.ARRAY)) else None
    if isinstance(type_, sqltypes.JSON):
        if getattr(type_, "none_as_null", False) is False and value is getattr(
                sqltypes.JSON, "NULL", object()):
            return "'null'::%s" % type_sql(type_)
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
        return "%s::%s" % (_quote(text), type_sql(type_))
    if isinstance(type_, sqltypes.ARRAY) and isinstance(value, (list, tuple)):
        items = ", ".join(render(v, type_.item_type) for v in value)
        return "ARRAY[%s]::%s" % (items, type_sql(type_))
    if not fallback and not isinstance(type_, sqltypes.NullType):
        return None
    if isinstance(value, uuid.UUID):
        return "%s::uuid" % _quote(str(value))
    if isinstance(value, datetime.datetime):
        cast = "timestamptz" if value.tzinfo is not None else "timestamp"
        return "%s::%s" % (_quote(value.isoformat(sep=" ")), cast)
    if isinstance(value, datetime.date):
        return "%s::date" % _quote(value.isoformat())
    if isinstance(value, datetime.time):
        return "%s::time" % _quote(value.isoformat())
    if isinstance(value, datetime.timedelta):
        return "%s::interval" % _quote("%d seconds %d microseconds" % (
            value.days * 86400 + value.seconds, value.microseconds))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "'\\x%s'::bytea" % bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
        return "%s::jsonb" % _quote(text)
    if isinstance(value, str) and fallback:
        return _quote(value)
    return None


def _json_default(value):
    import datetime
    import decimal
    import uuid

    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    raise TypeError("%r is not JSON serializable" % (value,))


def _terminate(text):
    """One statement as Alembic renders it, with exactly one `;` that no `--` comment hides."""
    sql = text.rstrip()
    while sql.endswith(";;"):
        sql = sql[:-1].rstrip()
    if not sql.endswith(";"):
        sql += ";"
    body = sql[:-1].rstrip()
    last_line = body.rsplit("\n", 1)[-1]
    if "--" in last_line:
        # `op.execute("... -- note")`: a `;` on the comment's line would be part of the comment
        sql = body + "\n;"
    lines = [ln.rstrip() for ln in sql.split("\n")]
    return "\n".join(lines)


def _render(script, direction, opts):
    """Renders `direction` ("upgrade" / "downgrade") of one Script. Returns a dict with `sql`
    (None when it could not), `autocommit`, `mixed`, `problem` and `warnings`."""
    import logging

    log = logging.getLogger("alembic.runtime.migration")
    level = log.level
    log.setLevel(logging.WARNING)  # not 'Generating static SQL' twice per revision
    try:
        return _render_quietly(script, direction, opts)
    finally:
        log.setLevel(level)


def _render_quietly(script, direction, opts):
    from alembic.operations import Operations

    module = script.module
    fn = getattr(module, direction, None)
    result = {"sql": None, "autocommit": False, "mixed": False, "problem": None,
              "warnings": [], "missing": False}
    if fn is None:
        result["missing"] = True
        return result

    OfflineContext = _make_offline_context_class()
    from sqlalchemy.dialects import postgresql

    ctx_opts = dict(opts["context_opts"])
    ctx_opts.update({
        "as_sql": True,
        "literal_binds": True,
        "transactional_ddl": False,
        "output_buffer": io.StringIO(),
    })
    dialect = postgresql.dialect(paramstyle="named")
    dialect.statement_compiler = _literal_compiler_class()
    env = opts["env"]
    ctx = OfflineContext(dialect, None, ctx_opts, env)
    ctx._retort_setup(script.path)
    ops = Operations(ctx)
    offline_asked = []
    orig_offline = None
    if env is not None:
        orig_offline = env.is_offline_mode

        def is_offline_mode():
            fr = _frame_in(traceback.extract_stack()[:-1], script.path)
            offline_asked.append(fr.lineno if fr else None)
            return True

        env.is_offline_mode = is_offline_mode
        env._migration_context = ctx
        env._install_proxy()
    ops._install_proxy()
    try:
        fn()
    except NotImplementedError as e:
        fr = _frame_in(e.__traceback__, script.path)
        if direction == "downgrade" and not ctx.statements:
            result["missing"] = True
            result["warnings"].append(
                "downgrade() raises NotImplementedError%s: the revision cannot be downgraded"
                % (" (line %d)" % fr.lineno if fr else ""))
            return result
        result["problem"] = _problem(script, direction, e, "raises NotImplementedError")
        return result
    except NeedsDatabase as e:
        result["problem"] = _problem(script, direction, e, str(e))
        return result
    except Exception as e:  # anything that fails offline
        fr = _frame_in(e.__traceback__, script.path)
        reason = "fails in offline mode%s: %s" % (
            " (line %d)" % fr.lineno if fr else "", _describe_exception(e))
        if isinstance(e, AttributeError) and "NoneType" in str(e):
            reason += " (a value that only a live database provides)"
        result["problem"] = _problem(script, direction, e, reason)
        return result
    finally:
        ops._remove_proxy()
        if env is not None:
            env._remove_proxy()
            env._migration_context = None
            env.is_offline_mode = orig_offline

    statements = [(_terminate(s), ac) for s, ac in ctx.statements]
    result["sql"] = "\n\n".join(s for s, _ in statements)
    result["autocommit"] = any(ac for _, ac in statements)
    result["mixed"] = result["autocommit"] and not all(ac for _, ac in statements)
    for line in offline_asked:
        result["warnings"].append(
            "%s() asks context.is_offline_mode()%s: this SQL is its offline branch; check that "
            "it does what the online branch does" % (direction, " on line %d" % line if line else ""))
    if not result["autocommit"] and any(
            re.search(r"\bCONCURRENTLY\b", s, re.I) for s, _ in statements):
        result["warnings"].append(
            "%s() runs a CONCURRENTLY statement outside op.get_context().autocommit_block(): "
            "PostgreSQL refuses it inside a transaction" % direction)
    return result


def _problem(script, direction, exc, reason):
    fr = _frame_in(exc.__traceback__, script.path)
    return {
        "direction": direction,
        "reason": "%s() %s" % (direction, redact(reason)),
        "file": _display_path(script.path),
        "line": fr.lineno if fr else None,
        "code": fr.line if fr else None,
        "exception": _describe_exception(exc),
    }


def _source(module, name):
    fn = getattr(module, name, None)
    if fn is None:
        return None
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


# ---- the history ------------------------------------------------------------------------------


def _create_date(doc):
    m = re.search(r"^\s*Create Date:\s*(.+?)\s*$", doc or "", re.M)
    return m.group(1) if m else None


def _message(script):
    doc = script.doc or ""
    return " ".join(doc.split())


def _revision_entry(script, opts):
    module = script.module
    up = _render(script, "upgrade", opts)
    down = _render(script, "downgrade", opts)
    problems = [p["problem"] for p in (up, down) if p["problem"]]
    warnings = up["warnings"] + down["warnings"]
    for r, direction in ((up, "upgrade"), (down, "downgrade")):
        if r["mixed"]:
            warnings.append(
                "%s() runs statements both inside and outside autocommit_block(): as a "
                "'transactional: false' script all of them run one by one outside a transaction; "
                "consider a revision of their own for the statements outside it" % direction)
    if up["missing"] and not up["problem"]:
        problems.insert(0, {
            "direction": "upgrade", "reason": "the revision file has no upgrade() function",
            "file": _display_path(script.path), "line": None, "code": None, "exception": None,
        })
    entry = {
        "revision": script.revision,
        "down_revision": _as_list(getattr(module, "down_revision", script.down_revision)),
        "branch_labels": sorted(_as_list(getattr(module, "branch_labels", None))),
        "depends_on": _as_list(getattr(module, "depends_on", None)),
        "message": _message(script),
        "create_date": _create_date(module.__doc__),
        "path": _display_path(script.path),
        "upgrade_sql": up["sql"],
        "downgrade_sql": None if down["missing"] else down["sql"],
        "transactional": not (up["autocommit"] or down["autocommit"]),
        "unconverted": bool(problems),
        "reason": problems[0]["reason"] if problems else None,
        "file": problems[0]["file"] if problems else None,
        "line": problems[0]["line"] if problems else None,
        "problems": problems,
        "warnings": warnings,
        "upgrade_source": _source(module, "upgrade") if problems else None,
        "downgrade_source": _source(module, "downgrade") if problems else None,
    }
    return entry


def _import_alembic():
    try:
        import alembic  # noqa: F401
        import alembic.config  # noqa: F401
        import alembic.script  # noqa: F401
    except ImportError as e:
        raise ExportError(
            2, "alembic_missing",
            "Alembic is not importable by %s (Python %s): %s"
            % (sys.executable, sys.version.split()[0], e),
            "install it into the environment that runs your migrations "
            "(%s -m pip install alembic), or run the importer with that environment's python"
            % sys.executable)


def _load_config(path, name):
    from alembic.config import Config

    if not os.path.isfile(path):
        raise ExportError(
            2, "no_config", "no Alembic configuration at %s" % _display_path(path),
            "run from your project's directory (where you run `alembic`), or pass "
            "--config path/to/alembic.ini")
    try:
        cfg = Config(path, ini_section=name)
        sections = cfg.file_config.sections()
    except Exception as e:
        raise ExportError(2, "bad_config", "cannot read %s: %s" % (path, _describe_exception(e)),
                          "check the file's ini syntax", file=_display_path(path))
    if name not in sections:
        raise ExportError(
            2, "no_section", "%s has no [%s] section" % (_display_path(path), name),
            "its sections are: %s; pass --name SECTION (as `alembic --name`)"
            % (", ".join(sections) or "none"), file=_display_path(path))
    if not cfg.get_main_option("script_location"):
        raise ExportError(
            2, "no_script_location",
            "[%s] of %s has no script_location" % (name, _display_path(path)),
            "set script_location (the directory holding env.py and versions/)",
            file=_display_path(path))
    return cfg


def _script_directory(cfg):
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(cfg)
    except Exception as e:
        raise ExportError(
            3, "script_directory",
            "cannot open the script directory %r: %s"
            % (cfg.get_main_option("script_location"), _describe_exception(e)),
            "script_location is relative to the current directory unless it uses %(here)s; "
            "run from the directory you run `alembic` in")
    return script


def _run_env(cfg, script):
    env_py = os.path.join(script.dir, "env.py")
    if not os.path.isfile(env_py):
        raise ExportError(
            3, "no_env_py", "the script directory %s has no env.py" % _display_path(script.dir),
            "Alembic needs env.py to run migrations; restore it, or pass --skip-env to render "
            "without it (naming conventions from target_metadata are then not applied)")
    env = _capture_environment(cfg, script)
    try:
        with env:
            script.run_env()
    except SystemExit as e:
        raise ExportError(3, "env_py_failed", "env.py exited (SystemExit %s)" % e.code,
                          "env.py must not exit when run in offline mode",
                          file=_display_path(env_py))
    except Exception as e:
        fr = _frame_in(e.__traceback__, env_py)
        if isinstance(e, SyntaxError) and e.filename and _same_file(e.filename, env_py):
            line = e.lineno
        else:
            line = fr.lineno if fr else None
        raise ExportError(
            3, "env_py_failed",
            "env.py failed in offline mode: %s" % _describe_exception(e),
            "the exporter runs env.py as `alembic upgrade --sql` does (offline, no database), to "
            "read target_metadata; make it work offline (settings it reads must be set), or pass "
            "--skip-env to render without it",
            file=_display_path(env_py), line=line)
    return env


def _load_revisions(script):
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        with _warnings_as_errors():
            revisions = list(script.walk_revisions("base", "heads"))
            heads = list(script.get_heads())
    except (RevisionError, CommandError, KeyError, _AlembicWarning) as e:
        msg = e.args[0] if isinstance(e, _AlembicWarning) else _describe_exception(e)
        if isinstance(e, KeyError):
            msg = "a revision refers to %s, which is not present" % e
        raise ExportError(
            3, "revision_graph", "Alembic rejects the revision graph: %s" % redact(msg),
            "fix down_revision / depends_on in the revision files under %s"
            % _display_path(script.versions))
    except Exception as e:
        fr = None
        path = None
        if isinstance(e, SyntaxError) and e.filename:
            path, line = e.filename, e.lineno
        else:
            frames = traceback.extract_tb(e.__traceback__)
            for f in reversed(frames):
                if os.path.abspath(f.filename).startswith(os.path.abspath(script.dir)):
                    fr = f
                    break
            path, line = (fr.filename, fr.lineno) if fr else (None, None)
        hint = "fix the revision file so that it imports"
        if isinstance(e, ImportError) and getattr(e, "name", None):
            hint = ("install %s into the environment that runs your migrations (%s -m pip "
                    "install ...), or run the importer with that environment's python"
                    % (e.name.split(".")[0], sys.executable))
        raise ExportError(
            3, "script_load_failed",
            "a revision file does not load: %s" % _describe_exception(e), hint,
            file=_display_path(path) if path else None, line=line)
    return list(reversed(revisions)), heads


class _AlembicWarning(Exception):
    pass


@contextlib.contextmanager
def _warnings_as_errors():
    """Alembic only warns about a down_revision that names no revision, then fails later with a
    KeyError; its warning has the clearer message."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"Revision .* is not present")
        try:
            yield
        except UserWarning as w:
            raise _AlembicWarning(str(w))


def export(config_path, name="alembic", skip_env=False):
    _import_alembic()
    import alembic
    import sqlalchemy

    has_pgvector = lowercase_pgvector_types()
    _register_offline_inspection()
    cfg = _load_config(config_path, name)
    script = _script_directory(cfg)
    env = None
    captured = {}
    if not skip_env:
        env = _run_env(cfg, script)
        captured = env.captured or {}
    warnings = []
    context_opts = {}
    if captured.get("target_metadata") is not None:
        context_opts["target_metadata"] = captured["target_metadata"]
    for key in ("render_as_batch", "version_table", "version_table_schema"):
        if key in captured:
            context_opts[key] = captured[key]
    dialect = captured.get("dialect_name")
    if not dialect and captured.get("url"):
        try:
            dialect = sqlalchemy.engine.make_url(str(captured["url"])).get_backend_name()
        except Exception:
            dialect = None
    if dialect and dialect != "postgresql":
        warnings.append(
            "env.py configures the %s dialect; retort renders every revision for PostgreSQL"
            % dialect)
    if env is not None and captured == {} and not env.ran_migrations:
        warnings.append("env.py never called context.configure() in offline mode: "
                        "target_metadata (naming conventions) is not applied")
    revisions, heads = _load_revisions(script)
    opts = {"context_opts": context_opts, "env": env}
    entries = [_revision_entry(s, opts) for s in revisions]
    return {
        "version": FORMAT_VERSION,
        "ok": True,
        "python": sys.executable,
        "alembic_version": alembic.__version__,
        "sqlalchemy_version": sqlalchemy.__version__,
        "pgvector": has_pgvector,
        "config": _display_path(config_path),
        "section": name,
        "script_location": _display_path(script.dir),
        "env_py": not skip_env,
        "target_metadata": "target_metadata" in context_opts,
        "naming_convention": _naming_convention(context_opts.get("target_metadata")),
        "version_table": captured.get("version_table", "alembic_version"),
        "version_table_schema": captured.get("version_table_schema"),
        "heads": sorted(heads),
        "revisions": entries,
        "warnings": warnings,
    }


def _naming_convention(metadata):
    """target_metadata's naming convention as JSON (string keys and templates only): what a
    program step's MigrationContext needs to name constraints as Alembic did."""
    nc = getattr(metadata, "naming_convention", None) or {}
    out = {}
    for key, value in nc.items():
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value
    return out


# ---- online: one revision at a time -----------------------------------------------------------

URL_VARIABLES = ("DATABASE_URL", "SQLALCHEMY_DATABASE_URL", "SQLALCHEMY_URL", "DB_URL",
                 "POSTGRES_URL", "PGVECTOR_DB_URL")


def _importable(name):
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _env_is_async(script_dir):
    try:
        with open(os.path.join(script_dir, "env.py"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return bool(re.search(r"async_engine_from_config|create_async_engine|AsyncEngine|asyncpg",
                          text))


def choose_driver(url, configured=None, script_dir=None):
    """The driver the project uses: the one `url` names, else the one alembic.ini's
    `sqlalchemy.url` names, else one that imports in this Python — asyncpg for an env.py that
    runs an async engine, else psycopg2, psycopg (3), asyncpg — so that SQLAlchemy never falls
    back to a default driver the project does not have. Returns the driver name (or None)."""
    from sqlalchemy.engine import make_url

    for candidate in (url, configured):
        if not candidate:
            continue
        try:
            name = make_url(candidate).drivername
        except Exception:
            continue
        backend, _, driver = name.partition("+")
        if driver and backend in ("postgresql", "postgres"):
            return driver
    order = ["psycopg2", "psycopg", "asyncpg"]
    if script_dir and _env_is_async(script_dir):
        order = ["asyncpg", "psycopg"] + ["psycopg2"]
    for driver in order:
        if _importable(driver):
            return driver
    return None


def point_at(cfg, url, script_dir=None):
    """Points the project at `url`: `sqlalchemy.url` (with the driver the URL or alembic.ini
    names, else one that imports here: [choose_driver]) and the environment variables env.py
    files read a URL from."""
    from sqlalchemy.engine import make_url

    target = make_url(url)
    driver = choose_driver(url, cfg.get_main_option("sqlalchemy.url"), script_dir)
    if driver:
        target = target.set(drivername="postgresql+%s" % driver)
        if driver == "asyncpg" and "sslmode" in target.query:
            q = dict(target.query)
            q["ssl"] = q.pop("sslmode")
            target = target.set(query=q)
    text = target.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    for var in URL_VARIABLES:
        os.environ[var] = text
    libpq = {"PGHOST": target.host, "PGPORT": target.port, "PGUSER": target.username,
             "PGPASSWORD": target.password, "PGDATABASE": target.database}
    for var, value in libpq.items():
        if value is not None:
            os.environ[var] = str(value)
    return text


def _migration_step(script, direction, rev):
    """Alembic's MigrationStep applying (`up`) or removing (`down`) exactly revision `rev`."""
    from alembic.runtime.migration import MigrationStep

    try:
        sc = script.get_revision(rev)
    except Exception as e:
        raise ExportError(2, "unknown_revision", "no revision %r: %s" % (rev, _describe_exception(e)),
                          "pass a revision id of this project")
    if sc is None:
        raise ExportError(2, "unknown_revision", "no revision %r" % rev,
                          "pass a revision id of this project")
    if direction == "up":
        return sc, MigrationStep.upgrade_from_script(script.revision_map, sc)
    return sc, MigrationStep.downgrade_from_script(script.revision_map, sc)


def _online_failure(script, direction, rev, sc, e):
    env_py = os.path.join(script.dir, "env.py")
    fr = (_frame_in(e.__traceback__, sc.path) if sc is not None else None) or \
        _frame_in(e.__traceback__, env_py)
    return ExportError(
        3, "online_failed",
        "Alembic's %s of %s failed: %s"
        % ("upgrade" if direction == "up" else "downgrade", rev, _describe_exception(e)),
        "the revision (or env.py) fails when Alembic itself runs it online",
        file=_display_path(fr.filename) if fr else None, line=fr.lineno if fr else None)


def _request(line):
    """('up'|'down', REV) from a request line; None for `quit`; ExportError when malformed;
    False for a blank line."""
    words = line.split()
    if not words:
        return False
    if words == ["quit"]:
        return None
    if len(words) != 2 or words[0] not in ("up", "down"):
        raise ExportError(2, "usage", "expected 'up REV' or 'down REV', got %r" % line.strip())
    return words[0], words[1]


def serve_steps(cfg, script, lines, reply):
    """Applies the requests of `lines` (`up REV`, `down REV`, `quit`), answering each through
    `reply(doc)` once its step is committed.

    One run of env.py serves each sequence of steps in one direction, as `alembic upgrade heads`
    or `alembic downgrade base` would: its `run_migrations()` gets the steps one at a
    time, each in a transaction of its own (`transaction_per_migration`, so the caller sees the
    database between two steps), so env.py's engine, its connection and the project's imports
    are set up once, not once per revision. When env.py opened a transaction of its own around
    the migrations (they would commit only at its end), each step gets a run of env.py instead.
    After a step fails, its transaction is rolled back, the error answered, and the next request
    starts a new run of env.py."""
    from alembic.runtime.environment import EnvironmentContext

    def environment(fn):
        env = EnvironmentContext(cfg, script, fn=fn, as_sql=False)
        configure = env.configure

        def configure_per_migration(*args, **kw):
            kw["transaction_per_migration"] = True
            return configure(*args, **kw)

        # `context.configure` of env.py reaches the instance's attribute
        env.configure = configure_per_migration
        return env

    it = iter(lines)
    state = {"current": None, "quit": False}

    def next_request():
        """The next valid request (answering malformed ones), or None at quit or the end."""
        for line in it:
            try:
                req = _request(line)
                if req is False:
                    continue
                if req is None:
                    return None
                sc, step = _migration_step(script, *req)
                return req, sc, step
            except ExportError as e:
                reply(e.document())
        return None

    def ok(req):
        reply({"version": FORMAT_VERSION, "ok": True, "direction": req[0], "revision": req[1]})

    while True:
        current = state["current"] or next_request()
        state["current"] = None
        if current is None:
            return
        runs = {"started": False, "streamed": False}

        def fn(heads, context, first=current):
            if runs["started"]:  # env.py migrating a second database: nothing more to run there
                return
            runs["started"] = True
            streamed = not getattr(context, "_in_external_transaction", True)
            runs["streamed"] = streamed
            req, sc, step = first
            state["running"] = first
            while True:
                yield step
                if not streamed:
                    return
                ok(req)  # its transaction is committed: Alembic asks for the next step
                nxt = next_request()
                if nxt is None:
                    state["quit"] = True
                    return
                if nxt[0][0] != req[0]:
                    # `alembic upgrade` and `alembic downgrade` are two runs: a run remembers the
                    # named types (enums) it created or dropped and touches each once
                    state["current"] = nxt
                    return
                state["running"] = nxt
                req, sc, step = nxt

        state["running"] = current
        try:
            with contextlib.redirect_stdout(sys.stderr):
                with environment(fn):
                    script.run_env()
        except ExportError as e:
            reply(e.document())
            continue
        except Exception as e:
            (direction, rev), sc, _ = state["running"]
            reply(_online_failure(script, direction, rev, sc, e).document())
            continue
        if not runs["started"]:
            (direction, rev), _, _ = current
            reply(ExportError(3, "online_failed",
                              "env.py did not run the migrations (context.run_migrations() was "
                              "not called) for the %s of %s"
                              % ("upgrade" if direction == "up" else "downgrade", rev),
                              "the project's env.py must call context.run_migrations() online"
                              ).document())
            continue
        if not runs["streamed"]:
            ok(state["running"][0])
            continue
        if state["quit"]:
            return


def run_online(args, real_stdout):
    url = args.url or os.environ.get("RETORT_ALEMBIC_URL")
    try:
        if not url:
            raise ExportError(2, "no_url", "no database to run on",
                              "pass --url URL or set RETORT_ALEMBIC_URL")
        _import_alembic()
        lowercase_pgvector_types()
        cfg = _load_config(args.config, args.name)
        script = _script_directory(cfg)
        point_at(cfg, url, script.dir)
    except ExportError as e:
        real_stdout.write(json.dumps(e.document(), sort_keys=True) + "\n")
        real_stdout.flush()
        return e.exit_code
    answers = []

    def reply(doc):
        answers.append(doc)
        real_stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        real_stdout.flush()

    if args.steps:
        requests = sys.stdin
    else:
        requests = ["%s %s" % (("up", args.upgrade) if args.upgrade else ("down", args.downgrade))]
    try:
        serve_steps(cfg, script, requests, reply)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        reply(ExportError(4, "internal", "the helper failed: %s" % _describe_exception(e))
              .document())
        return 4
    if args.steps:
        return 0
    bad = [a for a in answers if not a.get("ok")]
    if bad:
        code = bad[0].get("error", {}).get("code")
        return 2 if code in ("usage", "unknown_revision") else 3
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ExportError(2, "usage", message,
                          "usage: python alembic_export.py --config alembic.ini [--name SECTION] "
                          "[--skip-env] [--upgrade REV | --downgrade REV | --steps] [--url URL]")


def main(argv=None):
    real_stdout = sys.stdout
    parser = _Parser(prog="alembic_export.py", description=__doc__.split("\n")[0])
    parser.add_argument("--config", "-c", default="alembic.ini",
                        help="the Alembic configuration file (default: alembic.ini)")
    parser.add_argument("--name", "-n", default="alembic",
                        help="its section (default: alembic), as `alembic --name`")
    parser.add_argument("--skip-env", action="store_true",
                        help="do not run env.py (no target_metadata: no naming conventions)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--upgrade", metavar="REV",
                      help="apply exactly this revision online, through env.py")
    mode.add_argument("--downgrade", metavar="REV",
                      help="remove exactly this revision online, through env.py")
    mode.add_argument("--steps", action="store_true",
                      help="apply 'up REV' / 'down REV' lines read from stdin, one JSON line each")
    parser.add_argument("--url", help="the database (default: RETORT_ALEMBIC_URL)")
    code = 0
    try:
        args = parser.parse_args(argv)
        if args.upgrade or args.downgrade or args.steps:
            return run_online(args, real_stdout)
        # whatever env.py or a revision prints goes to stderr: stdout is the document's
        with contextlib.redirect_stdout(sys.stderr):
            doc = export(args.config, args.name, args.skip_env)
    except ExportError as e:
        doc, code = e.document(), e.exit_code
    except Exception as e:  # a bug here, not in the project
        doc = ExportError(
            4, "internal", "the exporter failed: %s" % _describe_exception(e),
            "please report it with this traceback: %s"
            % " | ".join(traceback.format_exception_only(type(e), e)).strip()).document()
        traceback.print_exc(file=sys.stderr)
        code = 4
    real_stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    real_stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
