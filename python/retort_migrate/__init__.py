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
What the binary logs goes to the `retort_migrate` logger as it comes, each line at its level
(its JSON events as records carrying the event); passwords in URLs are masked.

The schema provider is `python -m retort_migrate.schema app.models`; the Alembic exporter is
`retort_migrate/alembic_export.py`; a program step (`-- run: python 005_x.py`) is written with
`retort_migrate.program.run(fn)`, a backfill's worker (`-- run:` under `-- backfill:`) with
`retort_migrate.backfill.worker(fn)` (docs/python.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union
from urllib.parse import unquote

from ._binaries import BinaryNotFoundError, find_binary

__all__ = ["upgrade", "current", "wait_for_heads", "RunReport", "Step", "MigrationError",
           "SchemaNotReady", "BinaryNotFoundError", "find_binary", "redact"]

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

    `findings`: the lint's findings on the revisions to apply (dicts with `path`, `line`, `col`,
    `level`, `rule`, `message`), which say why the lint gate refused a run (exit 7); also in
    `error["findings"]` and the document's.

    `exit_code` is the binary's (docs/exit-codes.md). `document` is its JSON failure document
    when it printed one: the run report with `"ok": false` for a run that started (`state`,
    `error`, the `steps` committed before the failure), or an error document; None when it
    printed none (then `message` and `hint` come from its error output)."""

    def __init__(self, message: str, exit_code: int, document: Optional[Dict[str, Any]] = None,
                 hint: Optional[str] = None, stderr: str = "",
                 findings: Optional[List[Dict[str, Any]]] = None):
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.document = document
        self.stderr = stderr
        # the lint's findings (printed before the run, or listed in the gate's refusal): as data
        self.findings: List[Dict[str, Any]] = list(findings or _findings(message))
        if document and isinstance(document.get("error"), dict) \
                and "findings" not in document["error"]:
            document["error"]["findings"] = self.findings

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
                "message": self.message, "hint": self.hint, "sqlstate": None,
                "findings": self.findings}

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
            transaction_per_migration: bool = False, batch: Optional[int] = None,
            on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
            progress_interval: float = 10.0) -> RunReport:
    """Upgrade the database to `target` (default: every head), as `migrate-up TARGET`.

    url: the database (default: DATABASE_URL, then PGVECTOR_DB_URL, from the environment or
    .env); backup_dir: pg_dump into it first when something is pending; migrations_dir: default
    MIGRATIONS_DIR, else ./migrations; transaction_per_migration: commit after each revision
    instead of once for the whole run; batch: commit every `batch` revisions (`--batch N`, for
    a long history that does not fit the server's lock table in one transaction).

    While it runs, each line the binary writes is logged as it comes (the `retort_migrate`
    logger): its log lines at their level, its events (step started and finished, heartbeats
    of a long statement, server notices, lock retries) as records whose `retort_event` attribute
    is the event's dict (docs/json.md), heartbeats at INFO once per `progress_interval` seconds
    and DEBUG between. `on_event` is called with each event's dict as it comes."""
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
    doc = _run("migrate-up", args + ["--", target], url, on_event, progress_interval)
    return RunReport.from_document(doc)


def current(url: Optional[str] = None, migrations_dir: Optional[PathLike] = None) -> List[str]:
    """The revisions in the database's version table, sorted (`[]` for an empty database)."""
    args = ["--format", "json"]
    if migrations_dir is not None:
        args += ["--dir", os.fspath(migrations_dir)]
    return list(_run("migrate-current", args, url)["current"])


# ---- keeping passwords out of what is shown -------------------------------------------------

def redact(text: Optional[str]) -> Optional[str]:
    """Masks passwords in `text` as the binaries do: the password of anything shaped like a URL
    (`scheme://user:***@host`; a password may hold unencoded `/ ? # : @`, so the user info runs
    to the last `@` before whitespace) and the value of any `password=` parameter. Only there:
    the password's characters elsewhere (`-- retort:allow`, `[retort]`) are left alone."""
    if text is None:
        return None
    return _mask_password_params(_mask_url_userinfo(str(text)))


def _mask_url_userinfo(text: str) -> str:
    out, rest = [], text
    while True:
        i = rest.find("://")
        if i < 0:
            break
        out.append(rest[:i + 3])
        tail = rest[i + 3:]
        ws = re.search(r"\s", tail)
        token = tail[:ws.start()] if ws else tail
        cut = re.search(r"[/?#]", token)
        authority = token[:cut.start()] if cut else token
        masked, skip = "", 0
        at = token.rfind("@")
        info, end = (token[:at], at) if at >= 0 else (authority, len(authority))
        colon = info.find(":")
        if colon >= 0 and (at >= 0 or (not authority.startswith("[") and not all(
                c in "0123456789" for c in authority[colon + 1:]))):
            masked, skip = info[:colon] + ":***", end
        out.append(masked)
        rest = tail[skip:]
    out.append(rest)
    return "".join(out)


_PARAM_START = re.compile(r"[\s?&;,\"'(\[{]")


def _mask_password_params(text: str) -> str:
    out, copied, start = [], 0, 0
    while True:
        eq = text.find("=", start)
        if eq < 0:
            break
        key_start, in_query = 0, False
        for k in range(eq - 1, -1, -1):
            if _PARAM_START.match(text[k]):
                key_start, in_query = k + 1, text[k] in "?&"
                break
        key = unquote(text[key_start:eq]).lower()
        value = eq + 1
        if not (key.endswith("password") or key.endswith("passwd")):
            start = value
            continue
        if value < len(text) and not in_query and text[value] in "'\"":
            close = text.find(text[value], value + 1)
            end = len(text) if close < 0 else close + 1
        else:
            m = re.search(r"[&\s]", text[value:])
            end = value + m.start() if m else len(text)
        out.append(text[copied:value])
        out.append("***")
        copied = start = end
    out.append(text[copied:])
    return "".join(out)


# ---- running a binary -------------------------------------------------------------------------

# `INFO  [retort] message` (the binaries' log lines): the level and the message
_LOG_LINE = re.compile(r"^(ERROR|WARN|INFO|DEBUG|TRACE)\s+\[[^\]]*\] ?(.*)$")
_LEVELS = {"ERROR": logging.ERROR, "WARN": logging.WARNING, "INFO": logging.INFO,
           "DEBUG": logging.DEBUG, "TRACE": logging.DEBUG}
_NOTICE_LEVELS = {"WARNING": logging.WARNING, "NOTICE": logging.INFO, "INFO": logging.INFO}
# `path:line:col  level  rule  message`: a lint finding the binary prints before the run
_FINDING_LINE = re.compile(r"^(?P<path>\S+):(?P<line>\d+):(?P<col>\d+)\s+"
                           r"(?P<level>error|warning|info|hint)\s+(?P<rule>\S+)\s+(?P<message>.*)$")
_FINDING_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING}
# `  path:line:col  rule  message`: a lint finding listed in an error message
_FINDING = re.compile(r"^\s+(?P<path>\S+):(?P<line>\d+):(?P<col>\d+)\s+(?P<rule>\S+)\s+"
                      r"(?P<message>.*)$")


def _event_record(event: Dict[str, Any], last_heartbeat: List[float],
                  progress_interval: float):
    """(level, message) for one event of the binary's JSON event stream (docs/json.md)."""
    kind = event.get("event")
    if kind == "step_started":
        return logging.INFO, event.get("title") or f"applying {event.get('revision')}"
    if kind == "step_finished":
        return logging.INFO, f"  done {event.get('revision')} in {event.get('duration_ms')} ms"
    if kind == "heartbeat":
        # one at INFO every progress_interval (as the binaries log them), the rest at DEBUG
        now = time.monotonic()
        if now - last_heartbeat[0] >= progress_interval:
            last_heartbeat[0] = now
            return logging.INFO, f"  {event.get('text')}"
        return logging.DEBUG, f"  {event.get('text')}"
    if kind == "notice":
        level = _NOTICE_LEVELS.get(str(event.get("severity")).upper(), logging.DEBUG)
        return level, f"server {event.get('severity')}: {event.get('message')}"
    if kind == "retry":
        return logging.WARNING, str(event.get("text"))
    if kind == "batch_committed":
        return logging.INFO, (f"committed batch {event.get('batch')} of {event.get('of')}: the "
                              f"database is at {', '.join(event.get('to_heads') or []) or 'base'}")
    if kind == "run_finished":
        return logging.INFO, (f"{event.get('steps')} step(s) in {event.get('duration_ms')} ms; "
                              f"database now at {', '.join(event.get('to_heads') or []) or 'base'}")
    return logging.DEBUG, json.dumps(event, sort_keys=True)


class _StderrReader:
    """Logs the binary's stderr line by line as it comes: log lines at their level without their
    prefix, JSON events as records carrying the event (`record.retort_event`) and handed to
    `on_event`; the final `error: ...` block is kept for the exception and logged once."""

    def __init__(self, redact_fn, on_event, progress_interval: float):
        self.redact = redact_fn
        self.on_event = on_event
        self.progress_interval = progress_interval
        self.level = logging.INFO
        self.error_block: List[str] = []
        self.lines: List[str] = []
        self.findings: List[Dict[str, Any]] = []
        self.last_heartbeat = [-float("inf")]

    def feed(self, raw: str) -> None:
        line = self.redact(raw.rstrip("\r\n")) or ""
        self.lines.append(line)
        if self.error_block:
            self.error_block.append(line)
            return
        if not line.strip():
            return
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict) and "event" in event:
                level, message = _event_record(event, self.last_heartbeat,
                                               self.progress_interval)
                log.log(level, "%s", message, extra={"retort_event": event})
                if self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:  # the run goes on: the binary is not stopped mid-step
                        log.exception("retort_migrate: the on_event callback raised")
                return
        if line.startswith("error: "):
            self.error_block.append(line)
            return
        m = _LOG_LINE.match(line)
        f = None if m else _FINDING_LINE.match(line)
        if m:
            self.level = _LEVELS[m.group(1)]
            log.log(self.level, "%s", m.group(2))
        elif f:
            # the lint's findings: at their level, and kept for the exception
            self.findings.append({"path": f["path"], "line": int(f["line"]),
                                  "col": int(f["col"]), "level": f["level"], "rule": f["rule"],
                                  "message": f["message"]})
            self.level = _FINDING_LEVELS.get(f["level"], logging.INFO)
            log.log(self.level, "%s", line)
        elif line.startswith("lint: "):  # the lint's summary line
            self.level = logging.INFO
            log.info("%s", line)
        else:
            # a continuation of the record above (an indented finding, a note): at its level
            log.log(self.level, "%s", line)

    def finish(self) -> None:
        if self.error_block:
            log.error("%s", "\n".join(self.error_block).rstrip())

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def _text_error(stderr: str):
    """`error: ...` and `  hint: ...` from the binary's error output."""
    message, hint = None, None
    for line in stderr.splitlines():
        if line.startswith("error: ") and message is None:
            message = line[len("error: "):]
        elif line.strip().startswith("hint: ") and message is not None and hint is None:
            hint = line.strip()[len("hint: "):]
    return message, hint


def _findings(message: Optional[str]) -> List[Dict[str, Any]]:
    out = []
    for line in (message or "").splitlines():
        m = _FINDING.match(line)
        if m:
            out.append({"path": m["path"], "line": int(m["line"]), "col": int(m["col"]),
                        "rule": m["rule"], "message": m["message"]})
    return out


def _run(binary: str, args: Sequence[str], url: Optional[str],
         on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
         progress_interval: float = 10.0) -> Dict[str, Any]:
    exe = find_binary(binary)
    env = dict(os.environ)
    if url is not None:
        env["DATABASE_URL"] = url  # through the environment: never on a command line
    proc = subprocess.Popen([exe, *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace")
    out: List[str] = []
    reader_of_stdout = threading.Thread(target=lambda: out.append(proc.stdout.read()),
                                        name=f"{binary} stdout", daemon=True)
    reader_of_stdout.start()
    reader = _StderrReader(redact, on_event, progress_interval)
    try:
        for raw in proc.stderr:
            reader.feed(raw)
    finally:
        proc.stderr.close()
        reader_of_stdout.join()
        proc.stdout.close()
        returncode = proc.wait()
        reader.finish()
    stdout = out[0] if out else ""
    stderr = reader.stderr
    doc = None
    if stdout.strip():
        try:
            doc = json.loads(redact(stdout) or "")
        except json.JSONDecodeError:
            doc = None
    if returncode == 0:
        if doc is None:
            raise MigrationError(f"{binary} succeeded but printed no JSON document",
                                 returncode, None, "is the binary older than this package?",
                                 stderr)
        return doc
    message, hint = _text_error(stderr)
    if doc is not None and doc.get("error"):
        message = doc["error"].get("message") or message
        hint = doc["error"].get("hint") or hint
    if message is None:
        message = f"{binary} failed with exit code {returncode}"
    raise MigrationError(redact(message) or "", returncode, doc, redact(hint), stderr,
                         reader.findings)


from ._wait import SchemaNotReady, wait_for_heads  # noqa: E402  (it builds on the above)
