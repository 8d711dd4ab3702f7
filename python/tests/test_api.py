"""retort_migrate.upgrade() / current() running this checkout's migrate-up / migrate-current
against a real PostgreSQL with pgvector, with the repository's example migrations/."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit, urlunsplit

import pytest

import retort_migrate
from conftest import REPO, query

MIGRATIONS = REPO / "migrations"


@pytest.fixture(autouse=True)
def use_release_bins(release_bins, monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_BIN_DIR", str(release_bins))
    # no .env of the checkout, no DATABASE_URL of the caller: only what each test passes
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PGVECTOR_DB_URL", raising=False)
    monkeypatch.delenv("MIGRATIONS_DIR", raising=False)


def test_upgrade_applies_the_example_migrations_and_reports_each_step(database):
    report = retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    assert [s.revision for s in report.steps] == ["001", "002", "003", "004"]
    assert {s.direction for s in report.steps} == {"up"}
    assert all(s.duration_ms > 0 for s in report.steps)
    assert report.from_heads == [] and report.to_heads == ["004"]
    assert report.duration_ms >= sum(s.duration_ms for s in report.steps) * 0.5
    assert retort_migrate.current(url=database, migrations_dir=MIGRATIONS) == ["004"]
    assert query(database, "SELECT version_num FROM alembic_version") == [("004",)]
    # up to date: a second upgrade does nothing
    again = retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    assert again.steps == [] and again.from_heads == ["004"] and again.to_heads == ["004"]


def test_a_target_and_the_environment_are_honoured(database, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("MIGRATIONS_DIR", str(MIGRATIONS))
    assert retort_migrate.current() == []
    report = retort_migrate.upgrade("002")
    assert [s.revision for s in report.steps] == ["001", "002"]
    assert retort_migrate.current() == ["002"]


def test_a_backup_is_taken_first_when_something_is_pending(database, tmp_path):
    backups = tmp_path / "backups"
    retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS, backup_dir=backups)
    dumps = list(backups.iterdir())
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0


def failing_history(tmp_path, upto="004"):
    """The example migrations up to `upto`, then a revision whose second statement fails."""
    d = tmp_path / "migrations"
    d.mkdir()
    for f in sorted(MIGRATIONS.glob("*.sql")):
        if f.name[:3] <= upto:
            shutil.copy(f, d / f.name)
    (d / "005_chunk_language.sql").write_text(
        f"-- revision: 005\n-- down_revision: {upto}\n-- message: chunk language\n\n"
        "-- migrate:up\n"
        "ALTER TABLE chunks ADD COLUMN language text NOT NULL DEFAULT 'en';\n"
        "UPDATE chunk_languages SET language = 'en';\n\n"
        "-- migrate:down\nALTER TABLE chunks DROP COLUMN language;\n")
    return d


def test_a_failing_migration_raises_with_what_was_committed(database, tmp_path):
    migrations = failing_history(tmp_path)
    with pytest.raises(retort_migrate.MigrationError) as caught:
        retort_migrate.upgrade(url=database, migrations_dir=migrations,
                               transaction_per_migration=True)
    e = caught.value
    assert e.exit_code == 4
    assert e.error["kind"] == "migration" and e.error["exit_code"] == 4
    assert e.error["sqlstate"] == "42P01"
    assert 'relation "chunk_languages" does not exist' in e.error["message"]
    assert "005_chunk_language.sql" in e.error["message"]
    assert e.state["failed_step"] == "005"
    assert e.state["rolled_back"] is True and e.state["nothing_applied"] is False
    assert "004" in e.state["description"]
    assert [s.revision for s in e.report.steps] == ["001", "002", "003", "004"]
    assert e.report.to_heads == ["004"]
    assert 'relation "chunk_languages" does not exist' in str(e)
    # committed up to 004; 005's ALTER was rolled back
    assert retort_migrate.current(url=database, migrations_dir=migrations) == ["004"]
    assert query(database, "SELECT count(*) FROM information_schema.columns "
                           "WHERE table_name = 'chunks' AND column_name = 'language'") == [(0,)]


def test_in_batches_a_failure_keeps_the_batches_committed_before_it(database, tmp_path):
    # 001..004 and the failing 005 in batches of two: 001-002 and 003 commit, 004 (built
    # concurrently, outside a transaction) stands alone, 005 fails in the fourth
    migrations = failing_history(tmp_path)
    with pytest.raises(retort_migrate.MigrationError) as caught:
        retort_migrate.upgrade(url=database, migrations_dir=migrations, batch=2)
    e = caught.value
    assert e.state["failed_step"] == "005"
    assert e.state["batch"] == {"number": 4, "of": 4}
    assert e.report.to_heads == ["004"]
    assert retort_migrate.current(url=database, migrations_dir=migrations) == ["004"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch must be"):
            retort_migrate.upgrade(url=database, migrations_dir=migrations, batch=bad)
    with pytest.raises(ValueError, match="contradict"):
        retort_migrate.upgrade(url=database, migrations_dir=migrations, batch=2,
                               transaction_per_migration=True)


def test_by_default_a_failure_keeps_nothing(database, tmp_path):
    # 001..003 and the failing 005, all transactional: the whole run is one transaction
    migrations = failing_history(tmp_path, upto="003")
    with pytest.raises(retort_migrate.MigrationError) as caught:
        retort_migrate.upgrade(url=database, migrations_dir=migrations)
    e = caught.value
    assert e.state["failed_step"] == "005"
    assert e.state["rolled_back"] is True and e.state["nothing_applied"] is True
    assert e.report.steps == [] and e.report.to_heads == []
    assert retort_migrate.current(url=database, migrations_dir=migrations) == []
    assert query(database, "SELECT to_regclass('documents')") == [(None,)]


def test_a_wrong_password_is_a_connect_error_that_never_shows_the_password(database):
    parts = urlsplit(database)
    wrong = urlunsplit(parts._replace(
        netloc=f"{parts.username}:Wr0ng-Pa55word@{parts.hostname}:{parts.port}"))
    with pytest.raises(retort_migrate.MigrationError) as caught:
        retort_migrate.upgrade(url=wrong, migrations_dir=MIGRATIONS)
    e = caught.value
    assert e.exit_code == 3 and e.error["kind"] == "connect"
    assert e.state is None and e.report is None  # nothing ran
    assert "password authentication failed" in e.message
    assert e.hint
    for text in (str(e), e.stderr, repr(e.error)):
        assert "Wr0ng-Pa55word" not in text


def test_a_wrong_bin_dir_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_BIN_DIR", str(tmp_path))
    with pytest.raises(retort_migrate.BinaryNotFoundError) as caught:
        retort_migrate.current()
    assert f"RETORT_BIN_DIR={tmp_path} has no executable migrate-current" in str(caught.value)
