"""Writing a program step in Python: a revision whose work is a function, not SQL.

A script section `-- run: python 005_backfill.py` runs that file in the migrations directory,
with the database's URL in `DATABASE_URL` and the revision and direction in `RETORT_REVISION`
and `RETORT_DIRECTION` (docs/script-format.md, "Program steps"). This module turns such a file
into a few lines:

    # migrations/005_backfill.py
    from retort_migrate.program import run

    def migrate(conn, revision, direction):
        with conn.cursor() as cur:
            if direction == "up":
                cur.execute("UPDATE documents SET title = initcap(title) WHERE title IS NOT NULL")
            else:
                cur.execute("UPDATE documents SET title = lower(title)")

    run(migrate)

`run(fn)` opens one connection from `DATABASE_URL` (psycopg2, else psycopg 3: whichever the
project has), calls `fn(connection, revision, direction)` inside one transaction, commits when
it returns and rolls back when it raises; the process then exits 0 (retort records the
revision) or 1 with the traceback on stderr (retort stops, the revision unrecorded). All of the
function's work is in that one transaction, so a failed or interrupted program leaves nothing
behind and running it again is safe. A function that commits on its own (batches of a long
backfill) must itself be safe to run again.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable, Optional

__all__ = ["run", "connect"]


def connect(url: Optional[str] = None) -> Any:
    """A new connection to `url` (default: `DATABASE_URL`), not in autocommit: with psycopg2
    when it imports, else with psycopg 3."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set: retort sets it when it runs a program step "
                           "('-- run:'); set it yourself to run the program by hand")
    try:
        import psycopg2  # type: ignore
    except ImportError:
        try:
            import psycopg  # type: ignore
        except ImportError:
            raise RuntimeError("neither psycopg2 nor psycopg (3) can be imported: install one of "
                               "them in the environment that runs the migrations") from None
        return psycopg.connect(url)
    return psycopg2.connect(url)


def run(fn: Callable[[Any, str, str], Any], url: Optional[str] = None,
        exit: bool = True) -> Any:
    """Calls `fn(connection, revision, direction)` in one transaction on a connection to
    `DATABASE_URL` (or `url`): committed when `fn` returns, rolled back when it raises.

    With `exit` (the default), the process then exits: 0 after the commit, 1 after a failure
    (its traceback on stderr), so that retort records the revision only when the work is
    committed. With `exit=False`, `fn`'s result is returned and its exception raised."""
    revision = os.environ.get("RETORT_REVISION", "")
    direction = os.environ.get("RETORT_DIRECTION", "up")
    if direction not in ("up", "down"):
        raise ValueError(f"RETORT_DIRECTION must be 'up' or 'down', not {direction!r}")
    try:
        conn = connect(url)
        try:
            result = fn(conn, revision, direction)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            finally:
                conn.close()
            raise
        conn.close()
    except Exception:
        if not exit:
            raise
        traceback.print_exc(file=sys.stderr)
        print(f"revision {revision or '?'} ({direction}): the program failed; its transaction "
              "was rolled back", file=sys.stderr)
        sys.exit(1)
    if exit:
        sys.stdout.flush()
        sys.exit(0)
    return result
