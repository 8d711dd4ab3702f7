"""The SQLAlchemy schema provider: your models' DDL for PostgreSQL, as plain SQL on stdout.

    python -m retort_migrate.schema app.models            # the only MetaData in the module
    python -m retort_migrate.schema app.models:Base       # a declarative base's .metadata
    python -m retort_migrate.schema app.models:metadata   # a MetaData object

It imports the module the way your application does (the current directory first on
sys.path), so it must run in the application's environment, where SQLAlchemy, pgvector and
the application's own packages import. This is the command for retort's `--schema-command`,
which then reads the models instead of `schema.sql`.

The statements, each ending in `;`: `CREATE EXTENSION IF NOT EXISTS vector` when a pgvector type
appears, schemas, `CREATE TYPE ... AS ENUM` and sequences, the tables in dependency order, the
foreign keys that had to wait for a cycle, then the indexes (with `postgresql_using`,
`postgresql_with`, `postgresql_ops` and `postgresql_where`) and comments.

Errors go to stderr with a hint: exit 2 for a spec that names nothing usable (no such module
or attribute, no MetaData, several), 3 when importing the module raised.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

try:  # run as `python -m retort_migrate.schema`
    from retort_migrate.alembic_export import lowercase_pgvector_types, redact
except ImportError:  # this file run on its own, next to alembic_export.py
    from alembic_export import lowercase_pgvector_types, redact  # type: ignore

USAGE = "python -m retort_migrate.schema MODULE[:ATTRIBUTE]   (e.g. app.models or app.models:Base)"


class SchemaError(Exception):
    def __init__(self, exit_code, message, hint=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.hint = hint


def _metadata_of(obj):
    """The MetaData that `obj` is or carries (a declarative base, a model), else None."""
    from sqlalchemy import MetaData

    if isinstance(obj, MetaData):
        return obj
    md = getattr(obj, "metadata", None) if isinstance(obj, type) else None
    return md if isinstance(md, MetaData) else None


def _import(module_name):
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise SchemaError(
                2, "no module %r importable from %s (Python %s)" % (module_name, cwd, sys.executable),
                "run from your project's directory with your application's environment "
                "(e.g. `uv run python -m retort_migrate.schema %s`)" % module_name)
        raise _import_failed(module_name, e)
    except Exception as e:
        raise _import_failed(module_name, e)


def _import_failed(module_name, e):
    # the innermost frame in the application's own files (not the standard library's)
    cwd = os.path.abspath(os.getcwd()) + os.sep
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith("<") and os.path.abspath(f.filename).startswith(cwd)
              and "site-packages" not in f.filename]
    where = ""
    if isinstance(e, SyntaxError) and e.filename:
        where = " (%s:%s)" % (_short(e.filename), e.lineno)
    elif frames:
        where = " (%s:%d)" % (_short(frames[-1].filename), frames[-1].lineno)
    hint = "fix the error above, or import the module in a Python shell to see the whole traceback"
    if isinstance(e, ModuleNotFoundError) and e.name:
        hint = ("%s is missing from %s: install it into your application's environment, or run "
                "this with that environment's python" % (e.name.split(".")[0], sys.executable))
    return SchemaError(3, "importing %s failed%s: %s: %s"
                       % (module_name, where, type(e).__name__, redact(e)), hint)


def _short(path):
    try:
        rel = os.path.relpath(path)
        return path if rel.startswith("..") else rel
    except ValueError:
        return path


def find_metadata(spec):
    """The MetaData that `spec` (`module` or `module:attribute`) names."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise SchemaError(2, "no module given in %r" % spec, "usage: " + USAGE)
    module = _import(module_name)
    if attr:
        obj = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise SchemaError(2, "%s has no attribute %r" % (module_name, attr),
                                  "name the declarative base (app.models:Base) or a MetaData "
                                  "(app.models:metadata)")
            obj = getattr(obj, part)
        md = _metadata_of(obj)
        if md is None:
            raise SchemaError(
                2, "%s is a %s, not a MetaData or a declarative base with .metadata"
                % (spec, type(obj).__name__),
                "name the declarative base (app.models:Base) or a MetaData (app.models:metadata)")
        return md
    found = {}  # id(metadata) -> (metadata, [names])
    for name, value in sorted(vars(module).items()):
        md = _metadata_of(value)
        if md is not None:
            found.setdefault(id(md), (md, []))[1].append((name, value))
    if not found:
        raise SchemaError(
            2, "no MetaData in %s (no declarative base, no MetaData object)" % module_name,
            "name the module that defines or imports your models' base, or give it as "
            "%s:ATTRIBUTE" % module_name)
    if len(found) > 1:
        candidates = ["%s:%s" % (module_name, _best_name(md, names)) for md, names in found.values()]
        raise SchemaError(
            2, "%s has %d different MetaData: %s" % (module_name, len(found), ", ".join(candidates)),
            "name the one to use, e.g. python -m retort_migrate.schema %s" % candidates[0])
    return next(iter(found.values()))[0]


def _best_name(md, named):
    """The name to show for a MetaData: a MetaData object, else the declarative base that
    defines it (not one of its models)."""
    for name, value in named:
        if value is md:
            return name
    for name, value in named:
        if "metadata" in vars(value):
            return name
    return named[0][0]


def _uses_pgvector(metadata):
    for table in metadata.tables.values():
        for column in table.columns:
            if type(column.type).__module__.startswith("pgvector."):
                return True
    return False


def ddl_statements(metadata):
    """Every statement of the schema for PostgreSQL, in the order described in the module."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import (AddConstraint, CreateIndex, CreateSchema, CreateSequence,
                                   CreateTable, SetColumnComment, SetTableComment)

    lowercase_pgvector_types()
    dialect = postgresql.dialect()
    collected = []

    def executor(sql, *multiparams, **params):
        collected.append(sql)

    engine = sa.create_mock_engine("postgresql://", executor)
    metadata.create_all(engine, checkfirst=False)

    def rank(element):
        if isinstance(element, CreateSchema):
            return 0
        if isinstance(element, CreateSequence) or type(element).__name__ in (
                "CreateEnumType", "CreateDomainType"):
            return 1
        if isinstance(element, CreateTable):
            return 2
        if isinstance(element, AddConstraint):
            return 3
        if isinstance(element, CreateIndex):
            return 4
        if isinstance(element, (SetTableComment, SetColumnComment)):
            return 5
        return 6

    ordered = sorted(enumerate(collected), key=lambda ie: (rank(ie[1]), ie[0]))
    out = []
    if _uses_pgvector(metadata):
        out.append("CREATE EXTENSION IF NOT EXISTS vector;")
    for _, element in ordered:
        text = str(element.compile(dialect=dialect)).replace("\t", "    ").strip()
        lines = [ln.rstrip() for ln in text.split("\n")]
        out.append("\n".join(lines).rstrip(";") + ";")
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        stream = sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr
        print("usage: " + USAGE, file=stream)
        return 0 if stream is sys.stdout else 2
    real_stdout = sys.stdout
    try:
        sys.stdout = sys.stderr  # what the models print on import is not DDL
        try:
            statements = ddl_statements(find_metadata(argv[0]))
        finally:
            sys.stdout = real_stdout
    except SchemaError as e:
        print("error: %s" % redact(e.message), file=sys.stderr)
        if e.hint:
            print("  hint: %s" % redact(e.hint), file=sys.stderr)
        return e.exit_code
    real_stdout.write("\n\n".join(statements) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
