"""`make wheel`, installed with pip into a fresh virtualenv: the binaries run from its bin/ against a
real PostgreSQL, and `import retort_migrate` there finds them without any setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import MIGRATE_BINS, REPO, query

MIGRATIONS = REPO / "migrations"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A new virtualenv with only the wheel installed (no index: it needs nothing else)."""
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the venv has no pip of its own; this Python's pip installs into it
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-index", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True)
    if "no such option: --python" in out.stderr:  # pip older than 22.3
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        out = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", "--quiet",
                              str(wheel)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return venv


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR", "RETORT_BIN_DIR",
                        "PYTHONPATH")}
    env.update(extra)
    return env


def test_the_wheel_carries_every_binary_and_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    scripts = sorted(n.rsplit("/", 1)[1] for n in names if ".data/scripts/" in n)
    assert scripts == sorted(MIGRATE_BINS)
    for module in ("__init__.py", "_binaries.py", "alembic_export.py", "schema.py"):
        assert f"retort_migrate/{module}" in names
    assert not [n for n in names if "tests/" in n or "__pycache__" in n]
    assert wheel.name.startswith("retort_migrate-0.1.0-")


def test_migrate_up_and_current_run_from_the_venv_bin(installed, database, tmp_path):
    bin_dir = installed / "bin"
    for b in MIGRATE_BINS:
        assert os.access(bin_dir / b, os.X_OK), b
    env = clean_env(DATABASE_URL=database)
    up = subprocess.run([str(bin_dir / "migrate-up"), "--dir", str(MIGRATIONS)], cwd=tmp_path,
                        env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert "database now at 004" in up.stderr
    cur = subprocess.run([str(bin_dir / "migrate-current"), "--dir", str(MIGRATIONS),
                          "--format", "json"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert cur.returncode == 0, cur.stderr
    doc = json.loads(cur.stdout)
    assert doc["current"] == ["004"] and doc["at_heads"] is True
    assert query(database, "SELECT version_num FROM alembic_version") == [("004",)]


def test_import_retort_migrate_finds_its_binaries_in_the_venv(installed, database, tmp_path):
    code = (
        "import retort_migrate, json, sys\n"
        "r = retort_migrate.upgrade('002', url=sys.argv[1], migrations_dir=sys.argv[2])\n"
        "print(json.dumps({'steps': [s.revision for s in r.steps],\n"
        "                  'current': retort_migrate.current(url=sys.argv[1], migrations_dir=sys.argv[2]),\n"
        "                  'binary': retort_migrate.find_binary('migrate-up'),\n"
        "                  'module': retort_migrate.__file__}))\n"
    )
    # PATH without the venv: the binaries must be found next to the venv's own Python
    env = clean_env(PATH="/usr/bin:/bin")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code, database,
                          str(MIGRATIONS)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["steps"] == ["001", "002"] and doc["current"] == ["002"]
    assert doc["binary"] == str(installed / "bin" / "migrate-up")
    assert doc["module"].startswith(str(installed))
