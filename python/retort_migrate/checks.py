"""retort's standard migration checks as pytest tests; a project turns them on with one line in
a test module (say tests/test_migrations.py):

    from retort_migrate.checks import *  # noqa: F401,F403

- `test_single_head`: the scripts parse, have no cycle and one head (`migrate-check --offline`);
- `test_upgrade_from_base_to_heads`: every revision applies to an empty database, in order;
- `test_models_match_migrations`: the models' schema (`retort_schema_command` ini option or
  MIGRATE_SCHEMA_COMMAND, e.g. `python -m retort_migrate.schema app.models:Base`) equals what
  the migrations build (`migrate-check --schema-command`); skipped, saying so, when no command
  is configured;
- `test_round_trip`: every down section undoes its up section (`migrate-check --round-trip`);
- `test_lint_clean`: no error-level lint finding in any script (`migrate-check --offline
  --lint-all`).

A failure is retort's own report — the problem, the file and line, what to do — not a Python
traceback. The databases are the plugin's (`retort_migrate.pytest_plugin`): on the server of
RETORT_TEST_DATABASE_URL, else DATABASE_URL.
"""

from __future__ import annotations

import pytest

from .pytest_plugin import run_binary, schema_command

__all__ = ["test_single_head", "test_upgrade_from_base_to_heads", "test_models_match_migrations",
           "test_round_trip", "test_lint_clean"]


def _check(args, url, migrations_dir, what):
    out = run_binary("migrate-check", [*args, "--dir", str(migrations_dir)], url)
    if out.returncode == 0:
        return out
    report = "\n".join(part for part in (out.stdout.strip(), out.stderr.strip()) if part)
    pytest.fail(f"{what} (migrate-check {' '.join(args)}, exit {out.returncode}):\n{report}",
                pytrace=False)


def test_single_head(retort_server):
    """The scripts parse, have no cycle, and have one head."""
    _check(["--offline", "-q"], None, retort_server.migrations_dir,
           "the migration scripts are not sound")


def test_upgrade_from_base_to_heads(retort_db_at):
    """Every revision applies, in order, to an empty database."""
    db = retort_db_at("base")
    out = run_binary("migrate-up", ["--dir", str(db.migrations_dir), "-q"], db.url)
    if out.returncode != 0:
        pytest.fail(f"upgrading from base to the heads failed (migrate-up, exit "
                    f"{out.returncode}):\n{out.stderr.strip()}", pytrace=False)


def test_models_match_migrations(request, retort_db):
    """The models' schema equals the one the migrations build."""
    command = schema_command(request.config)
    if not command:
        pytest.skip("no schema command: set the retort_schema_command ini option (or "
                    "MIGRATE_SCHEMA_COMMAND), e.g. python -m retort_migrate.schema app.models:Base")
    _check(["--schema-command", command, "-q"], retort_db.url, retort_db.migrations_dir,
           "the models and the migrations differ")


def test_round_trip(retort_db):
    """Every down section restores the schema from before its up section."""
    _check(["--round-trip", "-q"], retort_db.url, retort_db.migrations_dir,
           "the round trip (upgrade, downgrade, upgrade again) found problems")


def test_lint_clean(retort_server):
    """No error-level lint finding in any script."""
    _check(["--offline", "--lint-all", "-q"], None, retort_server.migrations_dir,
           "the migration scripts have lint errors")
