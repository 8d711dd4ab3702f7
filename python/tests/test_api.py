"""retort_migrate.upgrade() / current() running this checkout's migrate-up / migrate-current
against a real PostgreSQL with pgvector, with the repository's example migrations/."""

from __future__ import annotations

import logging
import re
import shutil
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

import retort_migrate
from conftest import REPO, _server_url, query

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


# ---- the application's .env -------------------------------------------------------------------

APP_DOTENV = (
    "# the app's settings, as python-dotenv and Docker Compose read them\n"
    "APP_TITLE=My RAG App\n"
    "export OPENAI_MODEL=\"text-embedding-3-small\"\n"
    "WORKERS=4  # one per core\n"
    "GREETING='hello, world'\n"
    "SENTRY_DSN=\n"
    "LEGACY_FLAG\n"
)


def test_the_applications_dotenv_does_not_stop_upgrade(database, tmp_path):
    (tmp_path / ".env").write_text(APP_DOTENV)
    report = retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    assert [s.revision for s in report.steps] == ["001", "002", "003", "004"]
    # and the URL may be in it too, in any form python-dotenv reads
    (tmp_path / ".env").write_text(APP_DOTENV + f"export DATABASE_URL='{database}'  # ours\n")
    assert retort_migrate.current(migrations_dir=MIGRATIONS) == ["004"]


# ---- what the binary says, as it says it ------------------------------------------------------

class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records():
    handler = Collect()
    logger = logging.getLogger("retort_migrate")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old)


def slow_history(tmp_path):
    d = tmp_path / "slow"
    d.mkdir()
    for rev, down, up in [("001", "", "CREATE TABLE a (id int);"),
                          ("002", "001", "SELECT pg_sleep(4);"),
                          ("003", "002", "CREATE TABLE b (id int);")]:
        (d / f"{rev}_x.sql").write_text(
            f"-- revision: {rev}\n-- down_revision: {down}\n-- message: step {rev}\n\n"
            f"-- migrate:up\n{up}\n\n-- migrate:down\nSELECT 1;\n")
    return d


def test_each_line_is_logged_as_it_comes_at_its_level_and_events_are_records(
        database, tmp_path, records):
    events = []
    report = retort_migrate.upgrade(url=database, migrations_dir=slow_history(tmp_path),
                                    on_event=lambda e: events.append((time.time(), e)))
    returned = time.time()
    assert [s.revision for s in report.steps] == ["001", "002", "003"]

    def started(rev):
        [r] = [r for r in records if getattr(r, "retort_event", {}).get("event") == "step_started"
               and r.retort_event["revision"] == rev]
        return r

    # 001's start was logged while 002 slept, seconds before the process exited
    assert returned - started("001").created >= 3.0
    assert started("003").created - started("002").created >= 3.5
    assert started("002").levelno == logging.INFO and "002" in started("002").getMessage()
    # heartbeats of the long statement: records with the event, the first at INFO, then DEBUG
    beats = [r for r in records if getattr(r, "retort_event", {}).get("event") == "heartbeat"]
    assert len(beats) >= 2
    assert beats[0].levelno == logging.INFO and beats[1].levelno == logging.DEBUG
    assert "pg_sleep" in beats[0].getMessage() or "002" in beats[0].getMessage()
    assert beats[0].retort_event["elapsed_ms"] >= 1000
    # no raw JSON and no second level prefix in any message
    for r in records:
        assert not r.getMessage().startswith("{"), r.getMessage()
        assert not re.match(r"(ERROR|WARN|INFO|DEBUG)\b", r.getMessage()), r.getMessage()
    # the callback saw every event, in order, as it came
    kinds = [e["event"] for _, e in events]
    assert kinds[0] == "step_started" and kinds[-1] == "run_finished"
    assert "heartbeat" in kinds
    assert returned - events[0][0] >= 3.0


def test_the_duration_is_the_runs_as_the_audit_log_has_it(database):
    t0 = time.perf_counter()
    first = retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    wall_ms = (time.perf_counter() - t0) * 1000
    assert first.steps != []
    [(audited,)] = query(database, "SELECT duration_ms FROM alembic_version_audit "
                                   "ORDER BY id DESC LIMIT 1")
    # the report's milliseconds are the audit row's (which keeps whole milliseconds)
    assert int(first.duration_ms) == audited, (first.duration_ms, audited)
    assert 0.1 < first.duration_ms < wall_ms
    # with nothing pending the run reads without the lock and writes nothing, not even an
    # audit row; its duration is still measured
    again = retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    assert again.steps == []
    [(rows,)] = query(database, "SELECT count(*) FROM alembic_version_audit")
    assert rows == 1
    assert again.duration_ms > 0.1


# ---- the lint gate's refusal, with the password `retort` --------------------------------------

@pytest.fixture
def role_with_password_retort():
    """A superuser whose password is `retort` (the demo password, also a word in retort's own
    texts); dropped after the test's database."""
    import psycopg2

    name = "app_" + uuid.uuid4().hex[:8]
    conn = psycopg2.connect(_server_url())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD 'retort'")
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {name}")
    conn.close()


def test_a_refusal_of_the_lint_gate_carries_its_findings_and_masks_only_the_password(
        role_with_password_retort, database, tmp_path, records):
    parts = urlsplit(database)
    url = urlunsplit(parts._replace(
        netloc=f"{role_with_password_retort}:retort@{parts.hostname}:{parts.port}"))
    d = tmp_path / "gate"
    d.mkdir()
    (d / "001_items.sql").write_text(
        "-- revision: 001\n-- down_revision:\n-- message: items\n\n-- migrate:up\n"
        "CREATE TABLE items (id int PRIMARY KEY, body text);\n"
        "INSERT INTO items SELECT g, 'x' FROM generate_series(1, 5000) g;\n\n"
        "-- migrate:down\nDROP TABLE items;\n")
    retort_migrate.upgrade(url=url, migrations_dir=d)
    (d / "002_bigint.sql").write_text(
        "-- revision: 002\n-- down_revision: 001\n-- message: bigint ids\n\n-- migrate:up\n"
        "ALTER TABLE items ALTER COLUMN id TYPE bigint;\n\n"
        "-- migrate:down\nALTER TABLE items ALTER COLUMN id TYPE int;\n")
    records.clear()
    with pytest.raises(retort_migrate.MigrationError) as caught:
        retort_migrate.upgrade(url=url, migrations_dir=d)
    e = caught.value
    assert e.exit_code == 7 and e.error["kind"] == "state"
    errors = [f for f in e.findings if f["level"] == "error"]
    assert errors, (e.message, e.stderr)
    assert all(f["path"].endswith("002_bigint.sql") and f["line"] == 6 for f in errors)
    assert e.error["findings"] == e.findings == e.document["error"]["findings"]
    assert e.state is None  # refused before anything ran
    assert retort_migrate.current(url=url, migrations_dir=d) == ["001"]
    # the word `retort` is not the password everywhere it appears
    assert "-- retort:allow" in e.hint and "***" not in e.hint
    assert "-- retort:allow" in e.stderr
    # the findings are logged at their level, not as loose INFO lines
    for f in e.findings:
        assert not [r for r in records if f["rule"] in r.getMessage()
                    and r.levelno < logging.WARNING]
    assert any(f["rule"] in r.getMessage() for r in records if r.levelno == logging.ERROR
               for f in errors)


def test_redact_masks_the_password_where_a_url_or_parameter_holds_it_and_nowhere_else():
    assert retort_migrate.redact("postgresql://app:retort@db:5432/rag") == \
        "postgresql://app:***@db:5432/rag"
    assert retort_migrate.redact("postgresql+asyncpg://app:p@ss/w0rd@db/rag x") == \
        "postgresql+asyncpg://app:***@db/rag x"
    assert retort_migrate.redact("host=db password='re tort' user=app") == \
        "host=db password=*** user=app"
    assert retort_migrate.redact("postgresql://db/rag?user=app&password=retort&x=1") == \
        "postgresql://db/rag?user=app&password=***&x=1"
    untouched = "INFO  [retort] silence it with -- retort:allow rule reason (http://db:8080/x)"
    assert retort_migrate.redact(untouched) == untouched
