"""Waiting for the schema: the replicas of an application that did not run the migration
themselves wait until the database is at the heads their own migration scripts expect
(`migrate-check --wait-for-heads`): no lock taken, one cheap query every half second.

    import retort_migrate

    retort_migrate.wait_for_heads(timeout=300)     # ['004'] once the deploy's job migrated

A database still behind when the time runs out, or holding a revision the scripts do not have
(an older image against a newer database), raises `SchemaNotReady`.
"""

from __future__ import annotations

import os
from typing import List, Optional, Union

from . import MigrationError, PathLike, _run

__all__ = ["wait_for_heads", "SchemaNotReady"]


class SchemaNotReady(MigrationError):
    """The database did not reach the scripts' heads in time (`pending` lists what is still to
    be applied), or it holds a revision no script has (`problems[0]["code"] ==
    "unknown_revision"`, raised at once: waiting cannot change it). `current` is the version
    table's rows at the last look, `heads` the scripts'."""

    @property
    def heads(self) -> List[str]:
        return list((self.document or {}).get("script_heads") or [])

    @property
    def current(self) -> List[str]:
        return list((self.document or {}).get("current") or [])

    @property
    def pending(self) -> List[str]:
        return list((self.document or {}).get("pending") or [])

    @property
    def problems(self) -> List[dict]:
        return list((self.document or {}).get("problems") or [])


def _duration(timeout: Union[float, int, str]) -> str:
    if isinstance(timeout, str):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds above 0, or a duration such as "
                         f"'5m' (got {timeout!r})")
    return f"{max(1, round(timeout * 1000))}ms"


def wait_for_heads(timeout: Union[float, int, str] = 60.0, url: Optional[str] = None,
                   migrations_dir: Optional[PathLike] = None) -> List[str]:
    """Wait until the database is at the heads of the migration scripts, for at most `timeout`
    (seconds, or a duration string: "90s", "5m"); return the version table's rows then.

    Raises SchemaNotReady when the time runs out (or at once when the database holds a revision
    the scripts do not have), MigrationError for anything that stops the wait itself (exit 3:
    the server stayed unreachable; 2: no URL, bad configuration; 6: invalid scripts are reported
    by migrate-check as a problem)."""
    args = ["--wait-for-heads", _duration(timeout), "--format", "json"]
    if migrations_dir is not None:
        args += ["--dir", os.fspath(migrations_dir)]
    try:
        doc = _run("migrate-check", args, url)
    except MigrationError as e:
        problems = (e.document or {}).get("problems") or []
        if e.exit_code == 1 and problems:
            raise SchemaNotReady("; ".join(p["message"] for p in problems), e.exit_code,
                                 e.document, None, e.stderr) from None
        raise
    return list(doc.get("current") or [])
