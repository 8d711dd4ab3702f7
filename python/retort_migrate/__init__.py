"""retort from Python: run the bundled migrate-* binaries and get their JSON reports as objects.

    import retort_migrate

    report = retort_migrate.upgrade()            # migrate-up to the heads; DATABASE_URL etc.
    print(report.to_heads, [s.revision for s in report.steps])
    retort_migrate.current()                     # ['004']
    retort_migrate.wait_for_heads(timeout=300)   # replicas: wait for another process's migration

A failure raises MigrationError, with the binary's failure document: what was committed, where
the database is now (`state`) and the error (`kind`, `exit_code`, `message`, `hint`,
`sqlstate`). The binaries read the same configuration as on the command line (flags here, then
the environment, then `.env` in the current directory); `url` is handed to them through the
environment (`DATABASE_URL`), never on a command line, where other users could read it.
What the binary logs goes to the `retort_migrate` logger.

The schema provider is `python -m retort_migrate.schema app.models`; the Alembic exporter is
`retort_migrate/alembic_export.py` (docs/python.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from ._binaries import BinaryNotFoundError, find_binary

__all__ = ["upgrade", "current", "wait_for_heads", "RunReport", "Step", "MigrationError",
           "SchemaNotReady", "BinaryNotFoundError", "find_binary"]

log = logging.getLogger("retort_migrate")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Step:
    """One revision applied (or reverted) by a run."""
    revision: str
    direction: str
    duration_ms: float


@dataclass(frozen=True)
class RunReport:
    """`migrate-up --format json` of a successful run. `steps` is empty when the database was
    already at the target."""
    steps: List[Step]
    from_heads: List[str]
    to_heads: List[str]
    duration_ms: float
    document: Dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_document(cls, doc: Dict[str, Any]) -> "RunReport":
        return cls(
            steps=[Step(s["revision"], s["direction"], float(s["duration_ms"]))
                   for s in doc.get("steps", [])],
            from_heads=list(doc.get("from_heads", [])),
            to_heads=list(doc.get("to_heads", [])),
            duration_ms=float(doc.get("duration_ms", 0.0)),
            document=doc,
        )


class MigrationError(Exception):
    """A migrate-* run that failed.

    `exit_code` is the binary's (docs/exit-codes.md). `document` is its JSON failure document
    when it printed one: the run report with `"ok": false` for a run that started (`state`,
    `error`, the `steps` committed before the failure), or an error document; None when it
    printed none (then `message` and `hint` come from its error output)."""

    def __init__(self, message: str, exit_code: int, document: Optional[Dict[str, Any]] = None,
                 hint: Optional[str] = None, stderr: str = ""):
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.document = document
        self.stderr = stderr

    @property
    def state(self) -> Optional[Dict[str, Any]]:
        """`failed_step`, `rolled_back`, `nothing_applied`, `description`; None when nothing ran."""
        return (self.document or {}).get("state")

    @property
    def error(self) -> Dict[str, Any]:
        """`kind`, `exit_code`, `message`, `hint`, `sqlstate` (None when not an SQL error).
        Binaries that print no JSON for an error before the run get `kind` from the exit code."""
        if self.document and self.document.get("error"):
            return self.document["error"]
        return {"kind": _KINDS.get(self.exit_code), "exit_code": self.exit_code,
                "message": self.message, "hint": self.hint, "sqlstate": None}

    @property
    def report(self) -> Optional[RunReport]:
        """What the run did before it failed (steps committed, heads), when it had started."""
        if self.document and "steps" in self.document:
            return RunReport.from_document(self.document)
        return None


# docs/exit-codes.md: the error kind each exit code stands for (10 is io or database)
_KINDS = {2: "usage", 3: "connect", 4: "migration", 5: "lock_timeout", 6: "script", 7: "state"}


def upgrade(target: str = "heads", url: Optional[str] = None,
            backup_dir: Optional[PathLike] = None, migrations_dir: Optional[PathLike] = None,
            transaction_per_migration: bool = False, batch: Optional[int] = None) -> RunReport:
    """Upgrade the database to `target` (default: every head), as `migrate-up TARGET`.

    url: the database (default: DATABASE_URL, then PGVECTOR_DB_URL, from the environment or
    .env); backup_dir: pg_dump into it first when something is pending; migrations_dir: default
    MIGRATIONS_DIR, else ./migrations; transaction_per_migration: commit after each revision
    instead of once for the whole run; batch: commit every `batch` revisions (`--batch N`, for
    a long history that does not fit the server's lock table in one transaction)."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a whole number of revisions, 1 or more (got {batch!r})")
    if batch is not None and transaction_per_migration:
        raise ValueError("batch and transaction_per_migration contradict each other: pick one")
    args = ["--format", "json"]
    if batch is not None:
        args += ["--batch", str(batch)]
    if migrations_dir is not None:
        args += ["--dir", os.fspath(migrations_dir)]
    if backup_dir is not None:
        args += ["--backup-dir", os.fspath(backup_dir)]
    if transaction_per_migration:
        args.append("--transaction-per-migration")
    doc = _run("migrate-up", args + ["--", target], url)
    return RunReport.from_document(doc)


def current(url: Optional[str] = None, migrations_dir: Optional[PathLike] = None) -> List[str]:
    """The revisions in the database's version table, sorted (`[]` for an empty database)."""
    args = ["--format", "json"]
    if migrations_dir is not None:
        args += ["--dir", os.fspath(migrations_dir)]
    return list(_run("migrate-current", args, url)["current"])


# ---- running a binary -------------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]*@")
_LEVEL = re.compile(r"^(ERROR|WARN|INFO|DEBUG|TRACE)\b")


def _redactor(url: Optional[str]):
    secret = None
    if url:
        m = re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:([^@\s]+)@", url)
        secret = m.group(1) if m else None

    def redact(text: Optional[str]) -> Optional[str]:
        if text is None:
            return None
        text = _URL_PASSWORD.sub(r"\1***@", text)
        return text.replace(secret, "***") if secret else text
    return redact


def _log_stderr(stderr: str, redact) -> None:
    levels = {"ERROR": logging.ERROR, "WARN": logging.WARNING, "INFO": logging.INFO,
              "DEBUG": logging.DEBUG, "TRACE": logging.DEBUG}
    for line in stderr.splitlines():
        if not line.strip():
            continue
        m = _LEVEL.match(line)
        level = levels[m.group(1)] if m else (logging.ERROR if line.startswith("error:")
                                              else logging.INFO)
        log.log(level, "%s", redact(line))


def _text_error(stderr: str):
    """`error: ...` and `  hint: ...` from the binary's error output."""
    message, hint = None, None
    for line in stderr.splitlines():
        if line.startswith("error: ") and message is None:
            message = line[len("error: "):]
        elif line.strip().startswith("hint: ") and message is not None and hint is None:
            hint = line.strip()[len("hint: "):]
    return message, hint


def _run(binary: str, args: Sequence[str], url: Optional[str]) -> Dict[str, Any]:
    exe = find_binary(binary)
    env = dict(os.environ)
    if url is not None:
        env["DATABASE_URL"] = url  # through the environment: never on a command line
    redact = _redactor(url)
    proc = subprocess.run([exe, *args], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _log_stderr(proc.stderr, redact)
    doc = None
    if proc.stdout.strip():
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError:
            doc = None
    if proc.returncode == 0:
        if doc is None:
            raise MigrationError(f"{binary} succeeded but printed no JSON document",
                                 proc.returncode, None, "is the binary older than this package?",
                                 redact(proc.stderr) or "")
        return doc
    message, hint = _text_error(proc.stderr)
    if doc is not None and doc.get("error"):
        message = doc["error"].get("message") or message
        hint = doc["error"].get("hint") or hint
    if message is None:
        message = f"{binary} failed with exit code {proc.returncode}"
    raise MigrationError(redact(message) or "", proc.returncode, doc, redact(hint),
                         redact(proc.stderr) or "")


from ._wait import SchemaNotReady, wait_for_heads  # noqa: E402  (it builds on the above)
