"""Writing a backfill's worker in Python: a program that does each key range's writes.

A backfill revision whose up section is a program step runs the program once and hands it
the key ranges one by one (docs/script-format.md, "Backfill workers"):

    -- revision: 0044
    -- down_revision: 0043
    -- backfill: chunks.id batch=500

    -- migrate:up
    -- run: python 0044_embed.py

    -- migrate:down
    UPDATE chunks SET embedding_v2 = NULL;

and this module turns the program into a function of one range:

    # migrations/0044_embed.py
    from retort_migrate.backfill import worker

    model = load_model()            # once, not per range

    def embed(conn, start, end):
        with conn.cursor() as cur:
            cur.execute("SELECT id, body FROM chunks WHERE id >= %s AND id < %s", (start, end))
            rows = cur.fetchall()
            for id_, body in rows:
                cur.execute("UPDATE chunks SET embedding_v2 = %s WHERE id = %s",
                            (model.encode(body), id_))
            return len(rows)

    worker(embed)

`worker(fn)` opens one connection from `DATABASE_URL` (psycopg2, else psycopg 3) and, for each
range retort sends, runs in ONE transaction: retort's checkpoint statement (first: it locks
the checkpoint row and fails when another run moved the checkpoint), then `fn(conn, start,
end)`, then COMMIT; only then does it answer `done`. So a range's writes and the checkpoint
that marks it done commit together or not at all: each range applies exactly once, across a
kill -9 of retort or of the worker. `start` and `end` (inclusive, exclusive) are ints for an
integer key and `datetime`s for a timestamp key (aware, UTC, for `timestamptz`). `fn` returns
the rows it changed (reported to retort for the progress) or None.

When `fn` raises, the range's transaction is rolled back, the traceback goes to stderr, retort
is told `error <message>` and the process exits 1: retort stops with that message, the
checkpoint where the last committed range left it, and the next `migrate-up` starts the worker
again from there. When retort goes away (its stdin ends), the worker exits 0 after the range
it is in.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Callable, Optional, TextIO, Union

from .program import connect

__all__ = ["worker", "parse_key"]

Key = Union[int, datetime]


def parse_key(text: str, key_type: str) -> Key:
    """A key as retort writes it in a `range` line: `42`, `2026-12-07T20:01:02.5`, or
    `2026-12-07T20:01:02+00:00` (`key_type`: `integer`, `timestamp`, `timestamptz`, as
    `RETORT_BACKFILL_KEY_TYPE` says)."""
    if key_type == "integer":
        return int(text)
    if key_type not in ("timestamp", "timestamptz"):
        raise ValueError(f"unknown key type {key_type!r} (integer, timestamp or timestamptz)")
    # fromisoformat before Python 3.11 wants 0, 3 or 6 fraction digits
    head, plus, zone = text.partition("+")
    if "." in head:
        whole, frac = head.split(".", 1)
        head = f"{whole}.{frac.ljust(6, '0')[:6]}"
    value = datetime.fromisoformat(head + plus + zone)
    if key_type == "timestamptz" and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _say(out: TextIO, line: str) -> bool:
    """Writes one protocol line; False when retort no longer reads (it went away)."""
    try:
        out.write(line + "\n")
        out.flush()
        return True
    except (BrokenPipeError, OSError):
        return False


def worker(fn: Callable[[Any, Key, Key], Optional[int]], url: Optional[str] = None,
           stdin: Optional[TextIO] = None, stdout: Optional[TextIO] = None,
           exit: bool = True) -> int:
    """Serves retort's ranges until its stdin ends: each range's `fn(conn, start, end)` and
    retort's checkpoint statement in one transaction, committed, then `done`.

    With `exit` (the default) the process exits when the ranges end: 0, or 1 after a failure.
    With `exit=False` the code is returned instead (and `stdin` / `stdout` may be given, for
    tests)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    key_type = os.environ.get("RETORT_BACKFILL_KEY_TYPE", "integer")
    code = _serve(fn, url, key_type, stdin, stdout)
    if exit:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            pass
        sys.exit(code)
    return code


def _serve(fn: Callable[[Any, Key, Key], Optional[int]], url: Optional[str], key_type: str,
           stdin: TextIO, stdout: TextIO) -> int:
    def fail(message: str) -> int:
        _say(stdout, "error " + " ".join(message.split()))
        return 1

    try:
        conn = connect(url)
    except Exception as e:  # noqa: BLE001 - any failure to connect is the worker's error
        traceback.print_exc(file=sys.stderr)
        return fail(f"cannot connect: {e}")
    try:
        while True:
            line = stdin.readline()
            if not line:
                return 0  # no more ranges (or retort went away)
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(" ", 3)
            if len(parts) != 4 or parts[0] != "range":
                return fail(f"not a range line: {line[:80]!r}")
            _, a, b, checkpoint = parts
            try:
                start, end = parse_key(a, key_type), parse_key(b, key_type)
            except ValueError as e:
                return fail(f"bad key in {line[:80]!r}: {e}")
            began = time.monotonic()
            try:
                with conn.cursor() as cur:
                    cur.execute(checkpoint)
                rows = fn(conn, start, end)
                conn.commit()
            except Exception as e:  # noqa: BLE001 - reported to retort, then the exit
                try:
                    conn.rollback()
                except Exception:  # noqa: BLE001 - the connection may be gone
                    pass
                traceback.print_exc(file=sys.stderr)
                return fail(f"{type(e).__name__}: {e}")
            took = time.monotonic() - began
            counted = str(int(rows)) if isinstance(rows, int) and rows >= 0 else "-"
            if not _say(stdout, f"done {a} {b} {counted} {took:.6f}"):
                return 0  # committed; retort is gone and the next run reads the checkpoint
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
