"""retort_migrate.backfill.worker: a backfill's worker written in Python, against the real server.

The helper reads `range <start> <end> <checkpoint statement>` lines, runs the checkpoint
statement and fn(conn, start, end) in one transaction, commits, and answers `done <start> <end>
<rows> <seconds>`; a failure rolls the range back (the checkpoint too), answers `error
<message>` and ends with 1; a checkpoint another run moved rolls the range's writes back. The
checkpoint statements here are written as retort writes them (docs/script-format.md, "Backfill
workers"); the scenarios in bins/tests/scenarios/backfill_workers.rs run it under migrate-up."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest

from conftest import psql, query
from retort_migrate.backfill import parse_key, worker

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO t (id) SELECT g FROM generate_series(1, 100) g;
CREATE TABLE alembic_version_backfill (
    revision text PRIMARY KEY, target text NOT NULL, key_type text NOT NULL,
    first_key bigint NOT NULL, next_key bigint NOT NULL, end_key bigint NOT NULL,
    rows bigint NOT NULL DEFAULT 0, ranges bigint NOT NULL DEFAULT 0,
    busy_seconds double precision NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO alembic_version_backfill (revision, target, key_type, first_key, next_key, end_key)
VALUES ('002', 't.id', 'integer', 1, 1, 101);
"""


def checkpoint(start: int, stop: int) -> str:
    return ("DO $retort$BEGIN UPDATE \"alembic_version_backfill\" SET next_key = {stop}, "
            "ranges = ranges + 1, updated_at = now() WHERE revision = '002' AND next_key = {start}; "
            "IF NOT FOUND THEN RAISE EXCEPTION 'retort: the checkpoint of backfill 002 is not at "
            "{start} (another run moved it): roll this range back'; END IF; END$retort$"
            ).format(start=start, stop=stop)


def ranges(*pairs: tuple) -> io.StringIO:
    return io.StringIO("".join(f"range {a} {b} {checkpoint(a, b)}\n" for a, b in pairs))


def increment(conn, start, end):
    with conn.cursor() as cur:
        cur.execute("UPDATE t SET n = n + 1 WHERE id >= %s AND id < %s", (start, end))
        return cur.rowcount


def serve(url: str, stdin: io.StringIO, fn=increment):
    out = io.StringIO()
    code = worker(fn, url=url, stdin=stdin, stdout=out, exit=False)
    return code, out.getvalue().splitlines()


@pytest.fixture
def table(database) -> str:
    done = psql(database, SETUP)
    assert done.returncode == 0, done.stderr
    return database


def test_each_range_commits_with_its_checkpoint_and_is_answered_done(table):
    code, lines = serve(table, ranges((1, 51), (51, 101)))
    assert code == 0
    assert [line.split()[:4] for line in lines] == [["done", "1", "51", "50"],
                                                    ["done", "51", "101", "50"]]
    assert all(float(line.split()[4]) >= 0 for line in lines)
    assert query(table, "SELECT n, count(*) FROM t GROUP BY n") == [(1, 100)]
    assert query(table, "SELECT next_key, ranges FROM alembic_version_backfill") == [(101, 2)]


def test_a_failing_range_is_rolled_back_with_its_checkpoint_and_answered_error(table):
    def fails_in_the_second(conn, start, end):
        increment(conn, start, end)
        if start == 51:
            raise ValueError("the model is gone")
        return None

    code, lines = serve(table, ranges((1, 51), (51, 101)), fails_in_the_second)
    assert code == 1
    assert lines == [lines[0], "error ValueError: the model is gone"]
    assert lines[0].startswith("done 1 51 - ")
    assert query(table, "SELECT n, count(*) FROM t GROUP BY n ORDER BY n") == [(0, 50), (1, 50)]
    assert query(table, "SELECT next_key, ranges FROM alembic_version_backfill") == [(51, 1)]


def test_a_range_whose_checkpoint_another_run_moved_is_rolled_back(table):
    # another run did [1, 51) already: the checkpoint is at 51, and this range's writes go
    assert psql(table, "UPDATE alembic_version_backfill SET next_key = 51").returncode == 0
    code, lines = serve(table, ranges((1, 51)))
    assert code == 1
    assert lines[0].startswith("error ")
    assert "checkpoint of backfill 002 is not at 1" in lines[0]
    assert query(table, "SELECT count(*) FROM t WHERE n <> 0") == [(0,)]


def test_the_end_of_stdin_ends_the_worker_and_a_bad_line_is_an_error(table):
    assert serve(table, io.StringIO("")) == (0, [])
    code, lines = serve(table, io.StringIO("hello\n"))
    assert code == 1
    assert lines == ["error not a range line: 'hello'"]


def test_keys_are_ints_or_utc_datetimes():
    assert parse_key("-42", "integer") == -42
    assert parse_key("2026-12-07T20:01:02.5", "timestamp") == datetime(2026, 12, 7, 20, 1, 2, 500000)
    assert parse_key("1970-01-01T00:00:00+00:00", "timestamptz") == \
        datetime(1970, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_key("x", "uuid")
