"""`make wheel`, installed with pip into a fresh virtualenv: the binaries run from its bin/ against a
real PostgreSQL, and `import retort_migrate` there finds them without any setting."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

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
    for module in ("__init__.py", "_binaries.py", "alembic_export.py", "schema.py", "_wait.py",
                   "pytest_plugin.py", "checks.py", "program.py", "backfill.py"):
        assert f"retort_migrate/{module}" in names
    # the pytest plugin is registered by the wheel itself
    entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert len(entry_points) == 1, names
    parser = configparser.ConfigParser()
    parser.read_string(zipfile.ZipFile(wheel).read(entry_points[0]).decode())
    assert dict(parser["pytest11"]) == {"retort": "retort_migrate.pytest_plugin"}
    assert not [n for n in names if "tests/" in n or "__pycache__" in n]
    assert wheel.name == "retort_migrate-0.1.0-py3-none-manylinux_2_34_x86_64.whl"


def test_the_binaries_need_only_the_c_library(installed):
    # manylinux: OpenSSL is built in, so the wheel runs where libssl3 is not installed
    for b in MIGRATE_BINS:
        out = subprocess.run(["ldd", str(installed / "bin" / b)], capture_output=True,
                             text=True, check=True)
        needed = sorted(line.split()[0] for line in out.stdout.splitlines() if "=>" in line)
        assert not [n for n in needed if "ssl" in n or "crypto" in n], (b, needed)
        assert "libc.so.6" in needed, (b, needed)


def _run_as_server_owner(args, **kw):
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def tls_server():
    """Debian's PostgreSQL (PG_SSL_BIN: the wheels' servers have no TLS) with a self-signed
    certificate for localhost; (port, the certificate)."""
    pg_ssl_bin = os.environ.get("PG_SSL_BIN")
    if not pg_ssl_bin:
        pytest.fail("PG_SSL_BIN is not set: run with `make test-python` (scripts/pg.sh run)",
                    pytrace=False)
    # not under pytest's own tmp directory, which the server's user cannot enter
    top = Path(tempfile.mkdtemp(prefix="retort-tls-"))
    certs = top / "certs"
    certs.mkdir()
    cert = certs / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(certs / "server.key"), "-out", str(cert),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    data = top / "data"
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres", str(top)], check=True)
    out = _run_as_server_owner([f"{pg_ssl_bin}/initdb", "-D", str(data), "-U", "postgres",
                                "--auth=trust", "-E", "UTF8", "--locale=C"])
    assert out.returncode == 0, out.stderr
    for name in ("server.crt", "server.key"):
        shutil.copy(certs / name, data / name)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", str(data / name)], check=True)
        os.chmod(data / name, 0o600)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = (f"-p {port} -k {top} -c listen_addresses=localhost -c fsync=off -c ssl=on "
            "-c ssl_cert_file=server.crt -c ssl_key_file=server.key")
    out = _run_as_server_owner([f"{pg_ssl_bin}/pg_ctl", "-D", str(data), "-o", opts, "-w",
                                "-l", str(top / "log"), "start"])
    assert out.returncode == 0, out.stderr + out.stdout
    yield port, cert
    _run_as_server_owner([f"{pg_ssl_bin}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"])
    shutil.rmtree(top, ignore_errors=True)


def test_the_built_in_openssl_connects_with_tls_and_verifies_the_server(installed, tls_server):
    port, cert = tls_server
    current = str(installed / "bin" / "migrate-current")

    def run(query, **env):
        url = f"postgresql://postgres@localhost:{port}/postgres{query}"
        return subprocess.run([current, "--dir", str(MIGRATIONS)],
                              env=clean_env(DATABASE_URL=url, **env), capture_output=True,
                              text=True)

    r = run("?sslmode=require")
    assert r.returncode == 0, r.stderr
    r = run(f"?sslmode=verify-full&sslrootcert={cert}")
    assert r.returncode == 0, r.stderr
    # verification is real: without the certificate to trust, the server is refused
    r = run("?sslmode=verify-full", HOME="/nonexistent")
    assert r.returncode == 3 and "TLS failed" in r.stderr, r.stderr


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
