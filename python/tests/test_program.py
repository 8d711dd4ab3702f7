"""retort_migrate.program: a program step written in Python, against the real server.

`run(fn)` opens a connection from DATABASE_URL, calls fn(connection, revision, direction) in
one transaction, commits and exits 0, or rolls back and exits 1; and migrate-up runs such a
file as a program step between two SQL steps, recording it only when it succeeded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHON_SRC, REPO, psql, query


def run_program(tmp_path: Path, url: str, body: str, direction: str = "up"):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(body))
    env = {**os.environ, "DATABASE_URL": url, "RETORT_REVISION": "002",
           "RETORT_DIRECTION": direction, "PYTHONPATH": str(PYTHON_SRC)}
    return subprocess.run([sys.executable, str(prog)], env=env, capture_output=True, text=True,
                          timeout=60)


def test_run_commits_the_functions_work_and_exits_0(database, tmp_path):
    assert psql(database, "CREATE TABLE seen (revision text, direction text);").returncode == 0
    out = run_program(tmp_path, database, """
        from retort_migrate.program import run

        def migrate(conn, revision, direction):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO seen VALUES (%s, %s)", (revision, direction))

        run(migrate)
    """, direction="down")
    assert out.returncode == 0, out.stderr
    assert query(database, "SELECT revision, direction FROM seen") == [("002", "down")]


def test_a_failing_function_rolls_back_and_exits_1(database, tmp_path):
    assert psql(database, "CREATE TABLE seen (n int);").returncode == 0
    out = run_program(tmp_path, database, """
        from retort_migrate.program import run

        def migrate(conn, revision, direction):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO seen VALUES (1)")
                cur.execute("SELECT 1 / 0")

        run(migrate)
    """)
    assert out.returncode == 1
    assert "division by zero" in out.stderr
    assert "rolled back" in out.stderr
    assert query(database, "SELECT count(*) FROM seen") == [(0,)]


def test_without_database_url_it_says_what_is_missing(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("from retort_migrate.program import run\nrun(lambda c, r, d: None)\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(PYTHON_SRC)
    out = subprocess.run([sys.executable, str(prog)], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert "DATABASE_URL is not set" in out.stderr


def test_migrate_up_runs_a_python_program_step_between_sql_steps(database, tmp_path):
    migrate_up = REPO / "target" / "debug" / "migrate-up"
    if not migrate_up.is_file():
        pytest.skip("cargo build first: no target/debug/migrate-up")
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_a.sql").write_text(
        "-- revision: 001\n-- migrate:up\nCREATE TABLE docs (id int PRIMARY KEY, title text);\n"
        "INSERT INTO docs SELECT g, 'doc ' || g FROM generate_series(1, 2000) g;\n"
        "-- migrate:down\nDROP TABLE docs;\n")
    (mig / "002_titles.py").write_text(textwrap.dedent("""
        from retort_migrate.program import run

        def migrate(conn, revision, direction):
            with conn.cursor() as cur:
                fn = "upper" if direction == "up" else "lower"
                cur.execute(f"UPDATE docs SET title = {fn}(title)")
                print(f"{revision} {direction}: {cur.rowcount} titles", flush=True)

        run(migrate)
    """))
    (mig / "002_b.sql").write_text(
        "-- revision: 002\n-- down_revision: 001\n-- migrate:up\n-- run: python3 002_titles.py\n"
        "-- migrate:down\n-- run: python3 002_titles.py\n")
    (mig / "003_c.sql").write_text(
        "-- revision: 003\n-- down_revision: 002\n-- migrate:up\n"
        "ALTER TABLE docs ADD COLUMN note text;\n-- migrate:down\nALTER TABLE docs DROP COLUMN note;\n")
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "HOME": os.environ.get("HOME", "/tmp"), "DATABASE_URL": database,
           "PYTHONPATH": str(PYTHON_SRC), "MIGRATE_CACHE_DIR": "off"}
    out = subprocess.run([str(migrate_up), "--dir", str(mig)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "[002] 002 up: 2000 titles" in out.stderr
    assert query(database, "SELECT count(*) FROM docs WHERE title = upper(title)") == [(2000,)]
    assert query(database, "SELECT version_num FROM alembic_version") == [("003",)]
