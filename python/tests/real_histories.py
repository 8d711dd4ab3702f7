"""Real Alembic histories, as public projects publish them inside their packages on PyPI.

Nothing of theirs is in this repository: each history is installed at test time, at a pinned
version, into a virtualenv of its own under `.histories/` (git ignores it;
`RETORT_HISTORIES_DIR` moves it), with the dependencies PyPI had a few days after that release
(pip's `--uploaded-prior-to`: the project's Python as its users had it, Alembic and SQLAlchemy
included, and no later release of a dependency breaking it), and its `versions/` folder,
env.py and alembic.ini are copied from that install into a temporary project for each test. A
second run finds the virtualenv ready and installs nothing.

    python python/tests/real_histories.py [NAME...]   # install them ahead (make histories)

| name | package | where the history is in it | what it holds |
| --- | --- | --- | --- |
| optuna | optuna 4.5.0 (and its dependencies as of 2025-08-25) | optuna/storages/_rdb/alembic/ (+ ../alembic.ini) | 10 revisions: `batch_alter_table` everywhere (render_as_batch), ORM-session data migrations (`orm.Session(bind=op.get_bind())` with models declared in the revision), `sa.inspect(bind)` to stay idempotent, an enum; one downgrade Alembic itself cannot run |
| phoenix | arize-phoenix 10.0.0 (and its dependencies as of 2025-06-15) | phoenix/db/migrations/ (+ ../alembic.ini) | an asyncpg application: env.py wraps its engine in `AsyncEngine` and runs the migrations through `run_sync`; data migrations through `op.get_bind()`, JSON columns, a `sa.Enum`, revisions importing the application's modules; installs ~740 MB (pandas, scikit-learn, ...), so `make test-histories` runs it, not every `make test-python` |
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("RETORT_HISTORIES_DIR") or REPO / ".histories")

# the pip that knows --uploaded-prior-to
PIP = "pip==26.3"


@dataclass(frozen=True)
class History:
    name: str
    # what pip installs into the history's virtualenv (with the drivers env.py and the test use)
    pins: tuple
    # the newest upload pip considers: a few days after the release
    uploaded_prior_to: str
    # in site-packages: the Alembic script directory and the alembic.ini beside it
    script_dir: str
    ini: str
    # the sub-folder of versions/ that holds the PostgreSQL history (None: versions/ itself)
    versions: str | None = None
    # the project reads its database URL from these variables, not from alembic.ini
    url_variables: tuple = ()
    # the driver env.py runs on
    driver: str = "psycopg2"
    # a history too long for every `make test-python`: `make test-histories` runs it
    slow: bool = False
    # environment the application needs to start (no telemetry, no home directory writes)
    env: dict = field(default_factory=dict)


HISTORIES = {
    h.name: h
    for h in (
        History(
            name="optuna",
            pins=("optuna==4.5.0", "psycopg2-binary"),
            uploaded_prior_to="2025-08-25T00:00:00Z",
            script_dir="optuna/storages/_rdb/alembic",
            ini="optuna/storages/_rdb/alembic.ini",
        ),
        History(
            name="phoenix",
            pins=("arize-phoenix==10.0.0", "asyncpg", "psycopg2-binary"),
            uploaded_prior_to="2025-06-15T00:00:00Z",
            script_dir="phoenix/db/migrations",
            ini="phoenix/db/alembic.ini",
            driver="asyncpg",
            slow=True,
            env={"PHOENIX_WORKING_DIR": "{tmp}/phoenix-home"},
        ),
    )
}


def venv(h: History) -> Path:
    """The history's virtualenv, created (and its pins installed) when missing; its python."""
    root = CACHE / h.name
    py = root / "bin" / "python"
    stamp = root / "retort-pins.txt"
    wanted = "\n".join([*h.pins, "--uploaded-prior-to " + h.uploaded_prior_to]) + "\n"
    if py.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return py
    if not py.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    print(f"real_histories: installing {' '.join(h.pins)} (as of {h.uploaded_prior_to}) into "
          f"{root}", file=sys.stderr)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, PIP], check=True)
    subprocess.run([*pip, "--uploaded-prior-to", h.uploaded_prior_to, *h.pins], check=True)
    stamp.write_text(wanted)
    return py


def site_packages(py: Path) -> Path:
    out = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def project(h: History, py: Path, root: Path) -> Path:
    """A project directory holding the history as its application ships it: alembic.ini
    (script_location = migrations) and migrations/ (env.py, script.py.mako, versions/ with
    the PostgreSQL revisions only). Returns `root`."""
    sp = site_packages(py)
    src = sp / h.script_dir
    dest = root / "migrations"
    root.mkdir(parents=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    versions = src / "versions" / (h.versions or "")
    shutil.copytree(versions, dest / "versions", ignore=shutil.ignore_patterns("__pycache__"))
    text = (sp / h.ini).read_text()
    text = re.sub(r"(?m)^script_location\s*=.*$", "script_location = migrations", text)
    text = re.sub(r"(?m)^version_locations\s*=.*\n", "", text)
    text = re.sub(r"(?m)^sqlalchemy\.url\s*=.*\n", "", text)
    text = text.replace("[alembic]\n",
                        "[alembic]\nsqlalchemy.url = postgresql+%s://app@localhost/app\n"
                        % h.driver, 1)
    (root / "alembic.ini").write_text(text)
    return root


def environment(h: History, tmp: Path) -> dict:
    return {k: v.replace("{tmp}", str(tmp)) for k, v in h.env.items()}


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(HISTORIES):
        print(venv(HISTORIES[name]))
