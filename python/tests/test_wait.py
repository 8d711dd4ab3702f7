"""retort_migrate.wait_for_heads(): the replicas' wait for the schema, against a real
PostgreSQL, with another process (or thread) migrating; and the deployment examples in
docs/deploy/, whose commands are run as they are written."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import threading
import time

import pytest
import yaml

import retort_migrate
from conftest import REPO, psql, query

MIGRATIONS = REPO / "migrations"
DEPLOY = REPO / "docs" / "deploy"


@pytest.fixture(autouse=True)
def use_release_bins(release_bins, monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_BIN_DIR", str(release_bins))
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGVECTOR_DB_URL", "MIGRATIONS_DIR"):
        monkeypatch.delenv(var, raising=False)


def test_the_wait_returns_once_another_process_has_migrated(database):
    result = {}

    def replica():
        t0 = time.monotonic()
        result["current"] = retort_migrate.wait_for_heads(60, url=database,
                                                          migrations_dir=MIGRATIONS)
        result["returned"] = time.monotonic()
        result["waited"] = result["returned"] - t0

    waiting = threading.Thread(target=replica)
    waiting.start()
    time.sleep(1.0)
    assert "current" not in result, "returned before anything was migrated"
    # the deploy's job, in another process
    up = subprocess.run([retort_migrate.find_binary("migrate-up"), "--dir", str(MIGRATIONS)],
                        env={"DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
                        capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    migrated = time.monotonic()
    waiting.join(30)
    assert not waiting.is_alive()
    assert result["current"] == ["004"]
    assert result["waited"] >= 1.0
    assert result["returned"] - migrated < 5.0, "it polls every half second"


def test_a_fastapi_style_lifespan_waits_without_blocking_the_event_loop(database):
    retort_migrate.upgrade("002", url=database, migrations_dir=MIGRATIONS)
    ticks = []

    async def lifespan():
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.05)

        t = asyncio.create_task(ticker())
        try:
            with pytest.raises(retort_migrate.SchemaNotReady) as caught:
                await asyncio.to_thread(retort_migrate.wait_for_heads, 1.0, database,
                                        MIGRATIONS)
        finally:
            t.cancel()
        return caught.value

    e = asyncio.run(lifespan())
    # the loop kept running during the wait
    assert len(ticks) >= 10, ticks
    assert e.exit_code == 1
    assert e.current == ["002"] and e.heads == ["004"] and e.pending == ["003", "004"]
    assert e.problems[0]["code"] == "pending"
    assert "still not at the heads after waiting" in str(e)
    assert "2 revisions pending (003, 004)" in str(e)


def test_a_database_ahead_of_the_image_raises_at_once(database):
    retort_migrate.upgrade(url=database, migrations_dir=MIGRATIONS)
    psql(database, "UPDATE alembic_version SET version_num = '005'").check_returncode()
    assert query(database, "SELECT version_num FROM alembic_version") == [("005",)]
    t0 = time.monotonic()
    with pytest.raises(retort_migrate.SchemaNotReady) as caught:
        retort_migrate.wait_for_heads("5m", url=database, migrations_dir=MIGRATIONS)
    assert time.monotonic() - t0 < 30
    assert caught.value.problems[0]["code"] == "unknown_revision"
    assert "'005'" in caught.value.message


def test_a_timeout_that_is_no_duration_is_refused_before_anything_runs():
    for bad in (0, -1, True, None):
        with pytest.raises(ValueError):
            retort_migrate.wait_for_heads(bad)


def _documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _run_example(command, database, release_bins):
    """Runs an example's command with this checkout's binaries (the image's are the same)."""
    binary, *args = command
    return subprocess.run([str(release_bins / binary), *args, "--dir", str(MIGRATIONS)],
                          env={"DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)


def test_the_kubernetes_example_migrates_in_its_job_and_waits_in_its_init_container(
        database, release_bins):
    docs = {d["kind"]: d for d in _documents(DEPLOY / "kubernetes.yaml")}
    job = docs["Job"]
    assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
    migrate = job["spec"]["template"]["spec"]["containers"][0]["command"]
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    # the init container waits for the heads of the app's own image
    assert init["image"] == pod["containers"][0]["image"] == \
        job["spec"]["template"]["spec"]["containers"][0]["image"]
    wait = list(init["command"])
    assert wait[:2] == ["migrate-check", "--wait-for-heads"]

    # before the Job: the init container would not let the pod start (shortened wait)
    early = _run_example(wait[:2] + ["1s"], database, release_bins)
    assert early.returncode == 1 and "problem [pending]" in early.stdout, early.stdout
    done = _run_example(migrate, database, release_bins)
    assert done.returncode == 0, done.stderr
    after = _run_example(wait, database, release_bins)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("OK: 1 head (004)"), after.stdout


def test_the_compose_example_runs_the_wait_before_the_app(database, release_bins):
    services = yaml.safe_load((DEPLOY / "compose-replicas.yml").read_text())["services"]
    assert services["app"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    script = services["app"]["command"][2]
    wait, _, app = script.partition(" && ")
    assert app.startswith("exec uvicorn")
    migrate = services["migrate"]["command"]
    done = _run_example(migrate, database, release_bins)
    assert done.returncode == 0, done.stderr
    after = _run_example(shlex.split(wait), database, release_bins)
    assert after.returncode == 0, after.stderr
