"""retort's pytest plugin, run by pytest itself (pytester) in projects written into temporary
directories, against the real test server: the fixtures (a migrated copy per test, a database
at any revision) and the ready-made checks, passing and failing."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from conftest import PYTHON_SRC, REPO, _server_url, query

pytest_plugins = ["pytester"]

MIGRATIONS = REPO / "migrations"


@pytest.fixture
def project(pytester, release_bins, monkeypatch):
    """A pytester directory with the example migrations, the plugin loaded as the wheel's entry
    point loads it, and the test server in RETORT_TEST_DATABASE_URL."""
    shutil.copytree(MIGRATIONS, pytester.path / "migrations")
    # the example's 001 keeps the vector extension on downgrade (other schemas may use it),
    # which the round trip reports; here the project owns the database, so 001 drops it
    baseline = pytester.path / "migrations" / "001_baseline.sql"
    baseline.write_text(baseline.read_text() + "DROP EXTENSION vector;\n")
    monkeypatch.setenv("RETORT_BIN_DIR", str(release_bins))
    monkeypatch.setenv("RETORT_TEST_DATABASE_URL", _server_url())
    monkeypatch.setenv("PYTHONPATH", str(PYTHON_SRC))
    for var in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR", "MIGRATE_SCHEMA_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "retort_migrate.pytest_plugin", "-p",
                                         "no:cacheprovider", *args)


def leftover_databases():
    return query(_server_url(), "SELECT datname FROM pg_database WHERE datname LIKE "
                                "'retort_test_%'")


def test_each_test_gets_its_own_copy_of_the_migrated_database(project):
    project.makepyfile(test_app=textwrap.dedent("""
        import psycopg2

        def rows(url, sql):
            conn = psycopg2.connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else None

        def test_writes(retort_db):
            assert retort_db.heads == ["004"]
            assert retort_db.current() == ["004"]
            rows(retort_db.url, "INSERT INTO server_settings VALUES ('a', '1')")
            assert rows(retort_db.url, "SELECT count(*) FROM server_settings") == [(1,)]

        def test_sees_none_of_the_other_tests_rows(retort_db):
            assert rows(retort_db.url, "SELECT count(*) FROM server_settings") == [(0,)]
            assert rows(retort_db.url, "SELECT version_num FROM alembic_version") == [("004",)]

        def test_a_data_migration(retort_db_at):
            db = retort_db_at("002")
            assert db.current() == ["002"]
            rows(db.url, "INSERT INTO server_settings VALUES ('k', '2')")
            report = db.upgrade("003")
            assert [s.revision for s in report.steps] == ["003"]
            assert rows(db.url, "SELECT value FROM server_settings") == [(2,)]
            assert retort_db_at("base").current() == []
    """))
    result = run(project, "-v")
    result.assert_outcomes(passed=3)
    # the template and every copy were dropped
    assert leftover_databases() == []


def test_no_server_configured_is_a_usage_error_that_says_what_to_set(project, monkeypatch):
    monkeypatch.delenv("RETORT_TEST_DATABASE_URL")
    project.makepyfile(test_app="def test_x(retort_db):\n    pass\n")
    result = run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*retort: no database server for the test databases: set "
                                 "RETORT_TEST_DATABASE_URL*"])
    assert "Traceback" not in result.stdout.str() and "def retort_server" not in result.stdout.str()


def test_a_failing_migration_fails_the_test_with_retorts_message(project):
    (project.path / "migrations" / "005_broken.sql").write_text(
        "-- revision: 005\n-- down_revision: 004\n-- message: broken\n\n-- migrate:up\n"
        "ALTER TABLE no_such_table ADD COLUMN x int;\n\n-- migrate:down\nSELECT 1;\n")
    project.makepyfile(test_app="def test_x(retort_db):\n    pass\n")
    result = run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*retort: migrating the test database failed:*",
                                 "*005_broken.sql*"])
    assert "Traceback" not in result.stdout.str()


CHECKS = "from retort_migrate.checks import *  # noqa: F401,F403\n"


def test_the_checks_pass_on_sound_migrations_in_one_line(project):
    project.makepyfile(test_migrations=CHECKS)
    result = run(project, "-rs")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(["*no schema command: set the retort_schema_command ini option*"])


def test_the_models_check_compares_the_schema_commands_output(project):
    # the "models": a command printing the schema (here a file; in an application,
    # python -m retort_migrate.schema app.models:Base)
    shutil.copy(REPO / "schema.sql", project.path / "models.sql")
    project.makeini("[pytest]\nretort_schema_command = cat models.sql\n")
    project.makepyfile(test_migrations=CHECKS)
    result = run(project, "-k", "models")
    result.assert_outcomes(passed=1, deselected=4)
    # a model the migrations do not have
    with open(project.path / "models.sql", "a") as f:
        f.write("\nCREATE TABLE feedback (id bigint PRIMARY KEY, note text);\n")
    result = run(project, "-k", "models")
    result.assert_outcomes(failed=1, deselected=4)
    out = result.stdout.str()
    assert "the models and the migrations differ (migrate-check --schema-command cat " \
        "models.sql" in out
    assert "problem [schema_drift]: the output of `cat models.sql` and the migrations " \
        "disagree (1 difference): create table public.feedback" in out


def test_failing_checks_read_like_retorts_own_messages_with_file_and_line(project):
    # a revision whose down leaves its column behind, and whose up is a lint error
    (project.path / "migrations" / "005_language.sql").write_text(
        "-- revision: 005\n-- down_revision: 004\n-- message: language\n\n-- migrate:up\n"
        "ALTER TABLE chunks ADD COLUMN language text NOT NULL;\n"
        "CREATE INDEX chunks_language ON chunks (language);\n\n"
        "-- migrate:down\nDROP INDEX chunks_language;\n")
    project.makepyfile(test_migrations=CHECKS)
    result = run(project, "-k", "round_trip or lint")
    result.assert_outcomes(failed=2, deselected=3)
    out = result.stdout.str()
    assert "the round trip (upgrade, downgrade, upgrade again) found problems" in out
    assert "problem [round_trip]: round trip of revision 005" in out
    assert "005_language.sql" in out
    assert "the migration scripts have lint errors" in out
    assert "005_language.sql:6:" in out and "adding-required-field" in out
    assert "Traceback" not in out and "def test_" not in out

    # two heads
    (project.path / "migrations" / "005_language.sql").unlink()
    for rev in ("005", "006"):
        (project.path / "migrations" / f"{rev}_x.sql").write_text(
            f"-- revision: {rev}\n-- down_revision: 004\n-- message: x\n\n-- migrate:up\n"
            "SELECT 1;\n\n-- migrate:down\nSELECT 1;\n")
    result = run(project, "-k", "single_head")
    result.assert_outcomes(failed=1, deselected=4)
    assert "problem [multiple_heads]: the scripts have 2 heads (005, 006)" in result.stdout.str()
