"""The hooks of .pre-commit-hooks.yaml, run by pre-commit itself on a sample repository in a
temporary directory: the offline check, and the lint of the changed scripts only (with
--since), using the binaries on PATH as `language: system` hooks do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

MIGRATIONS = REPO / "migrations"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def git(cwd, *args):
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                         env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                  GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com"))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def script(rev, down, up):
    return (f"-- revision: {rev}\n-- down_revision: {down}\n-- message: rev {rev}\n\n"
            f"-- migrate:up\n{up}\n\n-- migrate:down\nSELECT 1;\n")


REQUIRED_COLUMN = "ALTER TABLE chunks ADD COLUMN language text NOT NULL;"


@pytest.fixture
def app(tmp_path, release_bins):
    """A hook repository holding this checkout's .pre-commit-hooks.yaml (committed: pre-commit
    clones a rev), and an application repository with the example migrations, a revision 005
    with an error-level lint finding already committed, and a pre-commit config using both
    hooks. Returns a function running `pre-commit run HOOK` there."""
    if not PRE_COMMIT.exists():
        pytest.fail(f"no {PRE_COMMIT}: scripts/setup.sh installs pre-commit", pytrace=False)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(REPO / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    git(hooks, "init", "-q")
    git(hooks, "add", ".")
    git(hooks, "commit", "-q", "-m", "hooks")
    rev = git(hooks, "rev-parse", "HEAD")

    repo = tmp_path / "app"
    shutil.copytree(MIGRATIONS, repo / "migrations")
    (repo / "migrations" / "005_language.sql").write_text(script("005", "004", REQUIRED_COLUMN))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the application so far")
    env = dict(os.environ, PATH=f"{release_bins}:{os.environ['PATH']}",
               PRE_COMMIT_HOME=str(tmp_path / "cache"))

    def run(hook, since=None):
        args = f"\n        args: [--since, '{since}']" if since else ""
        (repo / ".pre-commit-config.yaml").write_text(
            f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n"
            f"      - id: retort-check\n      - id: {'retort-lint'}{args}\n")
        return subprocess.run([str(PRE_COMMIT), "run", hook], cwd=repo, env=env,
                              capture_output=True, text=True)
    run.repo = repo
    return run


def test_the_lint_hook_lints_only_the_changed_scripts(app):
    repo = app.repo
    # a new, clean script: passes, though the committed 005 has an error-level finding
    (repo / "migrations" / "006_note.sql").write_text(
        script("006", "005", "CREATE TABLE notes (id bigint PRIMARY KEY);"))
    git(repo, "add", "migrations/006_note.sql")
    r = app("retort-lint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Passed" in r.stdout

    # touching 005 puts it in the commit: its finding fails the hook, with file and line
    with open(repo / "migrations" / "005_language.sql", "a") as f:
        f.write("-- reviewed\n")
    git(repo, "add", "migrations/005_language.sql")
    r = app("retort-lint")
    assert r.returncode == 1, r.stdout
    assert "005_language.sql:6:" in r.stdout and "adding-required-field" in r.stdout, r.stdout

    # --since 005 (production is at 005): 005 is deployed, so it is not linted
    r = app("retort-lint", since="005")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_hook_catches_two_heads(app):
    repo = app.repo
    assert app("retort-check").returncode == 0
    (repo / "migrations" / "006_a.sql").write_text(script("006", "005", "SELECT 1;"))
    (repo / "migrations" / "007_b.sql").write_text(script("007", "005", "SELECT 1;"))
    git(repo, "add", "migrations")
    r = app("retort-check")
    assert r.returncode == 1, r.stdout
    assert "problem [multiple_heads]: the scripts have 2 heads (006, 007)" in r.stdout, r.stdout


def _run_lines(workflow):
    import yaml

    doc = yaml.safe_load(workflow.read_text())
    lines = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            lines += [ln.strip() for ln in step.get("run", "").splitlines()]
    return doc, lines


def test_the_wheel_workflow_runs_commands_the_binaries_take(release_bins, database, tmp_path):
    """docs/ci/github-actions-wheel.yml: every migrate-* command it runs (directly or through
    uvx) is run here by bash, as the workflow's step would, with this checkout's binaries."""
    doc, lines = _run_lines(REPO / "docs" / "ci" / "github-actions-wheel.yml")
    assert any(ln.startswith("uv tool install retort-migrate") for ln in lines)
    commands = [ln.replace("uvx --from retort-migrate ", "") for ln in lines
                if ln.startswith(("migrate-", "uvx --from retort-migrate migrate-"))]
    assert [c.split()[0] for c in commands] == ["migrate-check", "migrate-up", "migrate-check"]
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    shutil.copy(REPO / "schema.sql", tmp_path / "schema.sql")
    # the example's 001 keeps the vector extension on downgrade, which --round-trip reports;
    # this sample project owns its database and drops it
    baseline = tmp_path / "migrations" / "001_baseline.sql"
    baseline.write_text(baseline.read_text() + "DROP EXTENSION vector;\n")
    for prod in ("", "003"):  # the repository variable unset, and set
        env = dict(os.environ, DATABASE_URL=database, PROD_REVISION=prod,
                   PATH=f"{release_bins}:{os.environ['PATH']}")
        for line in commands:
            out = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env,
                                 capture_output=True, text=True)
            assert out.returncode == 0, (line, prod, out.stdout, out.stderr)
    assert doc["jobs"]["database"]["env"]["RETORT_TEST_DATABASE_URL"].startswith("postgresql://")
