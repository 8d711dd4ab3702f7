//! The Makefile's container targets (docker-migrate-*, dev, dev-local, prod, docker-migrate),
//! run with a stub `docker` first on PATH that records its arguments, one line per call (each
//! argument followed by a tab). No Docker engine and no database are needed. Also: the help
//! listing, and plain-text checks of the Dockerfile, the compose files and .dockerignore.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Variables that would change what the Makefile runs if the caller's environment had them.
const CLEARED: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "COMPOSE",
    "SERVICE",
    "args",
    "m",
    "rev",
    "REVISION_USER",
    "PROD_COMPOSE_FILE",
    "COMPOSE_FILE",
];

struct Make {
    code: i32,
    stdout: String,
    stderr: String,
    /// One entry per `docker` call: its arguments.
    calls: Vec<Vec<String>>,
}

struct Stub {
    dir: tempfile::TempDir,
}

impl Stub {
    fn new() -> Stub {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\n\
             for a in \"$@\"; do printf '%s\\t' \"$a\"; done >> \"$DOCKER_STUB_LOG\"\n\
             printf '\\n' >> \"$DOCKER_STUB_LOG\"\n\
             exit \"${DOCKER_STUB_EXIT:-0}\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        Stub { dir }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("calls.log")
    }

    /// `make -C <root> ARGS...` with the stub first on PATH.
    fn make(&self, args: &[&str]) -> Make {
        self.make_env(args, &[])
    }

    fn make_env(&self, args: &[&str], env: &[(&str, &str)]) -> Make {
        let _ = std::fs::remove_file(self.log());
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(root())
            .arg("--no-print-directory")
            .args(args);
        for k in CLEARED {
            cmd.env_remove(k);
        }
        cmd.env("PATH", path)
            .env("DOCKER_STUB_LOG", self.log())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("make runs");
        let calls = std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split('\t')
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        Make {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            calls,
        }
    }
}

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs one target and asserts it made exactly this one docker call.
#[track_caller]
fn assert_call(stub: &Stub, make_args: &[&str], expected: &[&str]) {
    let r = stub.make(make_args);
    assert_eq!(
        r.code, 0,
        "make {make_args:?} failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(
        r.calls,
        vec![v(expected)],
        "make {make_args:?}\nstdout:\n{}",
        r.stdout
    );
}

#[test]
fn each_docker_migrate_target_execs_its_binary_in_the_backend_service() {
    let stub = Stub::new();
    for bin in ["up", "down", "history", "current", "check"] {
        let target = format!("docker-migrate-{bin}");
        let binary = format!("migrate-{bin}");
        assert_call(&stub, &[&target], &["compose", "exec", "backend", &binary]);
    }
}

#[test]
fn args_pass_through() {
    let stub = Stub::new();
    assert_call(
        &stub,
        &["docker-migrate-down", "args=-2"],
        &["compose", "exec", "backend", "migrate-down", "-2"],
    );
    assert_call(
        &stub,
        &["docker-migrate-down", "args=base --yes"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-down",
            "base",
            "--yes",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate-up", "args=003 --dry-run"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-up",
            "003",
            "--dry-run",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate-history", "args=-v -i -r base:head"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-history",
            "-v",
            "-i",
            "-r",
            "base:head",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate-current", "args=-v --check-heads"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-current",
            "-v",
            "--check-heads",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate-check", "args=--offline"],
        &["compose", "exec", "backend", "migrate-check", "--offline"],
    );
}

#[test]
fn revision_takes_the_message_and_runs_as_the_callers_user() {
    let stub = Stub::new();
    assert_call(
        &stub,
        &[
            "docker-migrate-revision",
            "m=add user preferences",
            "REVISION_USER=1000:1000",
        ],
        &[
            "compose",
            "exec",
            "--user",
            "1000:1000",
            "backend",
            "migrate-revision",
            "-m",
            "add user preferences",
        ],
    );
    assert_call(
        &stub,
        &[
            "docker-migrate-revision",
            "m=merge",
            "args=--merge heads",
            "REVISION_USER=1000:1000",
        ],
        &[
            "compose",
            "exec",
            "--user",
            "1000:1000",
            "backend",
            "migrate-revision",
            "-m",
            "merge",
            "--merge",
            "heads",
        ],
    );
    // without m= the binary prompts (no -m); the default user is the caller's uid:gid
    let id = |flag: &str| {
        String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let user = format!("{}:{}", id("-u"), id("-g"));
    assert_call(
        &stub,
        &["docker-migrate-revision"],
        &[
            "compose",
            "exec",
            "--user",
            &user,
            "backend",
            "migrate-revision",
        ],
    );
}

#[test]
fn stamp_needs_rev_and_passes_it_with_args() {
    let stub = Stub::new();
    assert_call(
        &stub,
        &["docker-migrate-stamp", "rev=003"],
        &["compose", "exec", "backend", "migrate-stamp", "003"],
    );
    assert_call(
        &stub,
        &["docker-migrate-stamp", "rev=head", "args=--purge"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-stamp",
            "head",
            "--purge",
        ],
    );
    let r = stub.make(&["docker-migrate-stamp"]);
    assert_ne!(r.code, 0, "stamp without rev must fail");
    assert!(
        r.stderr
            .contains("usage: make docker-migrate-stamp rev=REV"),
        "{}",
        r.stderr
    );
    assert!(
        r.calls.is_empty(),
        "no docker call without rev: {:?}",
        r.calls
    );
}

#[test]
fn service_and_compose_variables_are_honoured() {
    let stub = Stub::new();
    assert_call(
        &stub,
        &["docker-migrate-current", "SERVICE=api"],
        &["compose", "exec", "api", "migrate-current"],
    );
    assert_call(
        &stub,
        &["docker-migrate-stamp", "SERVICE=worker", "rev=002"],
        &["compose", "exec", "worker", "migrate-stamp", "002"],
    );
    assert_call(
        &stub,
        &[
            "docker-migrate-up",
            "COMPOSE=docker compose -f docker-compose.prod.yml",
        ],
        &[
            "compose",
            "-f",
            "docker-compose.prod.yml",
            "exec",
            "backend",
            "migrate-up",
        ],
    );
    // from the environment too
    let r = stub.make_env(&["docker-migrate-history"], &[("SERVICE", "app")]);
    assert_eq!(
        r.calls,
        vec![v(&["compose", "exec", "app", "migrate-history"])]
    );
}

#[test]
fn stack_targets() {
    let stub = Stub::new();
    assert_call(&stub, &["dev"], &["compose", "up", "--build"]);
    assert_call(
        &stub,
        &["dev", "args=-d"],
        &["compose", "up", "--build", "-d"],
    );
    assert_call(&stub, &["dev-local"], &["compose", "up", "-d", "db"]);
    assert_call(
        &stub,
        &["prod"],
        &[
            "compose",
            "-f",
            "docker-compose.prod.yml",
            "up",
            "-d",
            "--build",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate"],
        &["compose", "run", "--rm", "migrate"],
    );
}

#[test]
fn a_failing_docker_call_fails_the_target() {
    let stub = Stub::new();
    let r = stub.make_env(&["docker-migrate-check"], &[("DOCKER_STUB_EXIT", "1")]);
    assert_ne!(r.code, 0);
    assert_eq!(
        r.calls,
        vec![v(&["compose", "exec", "backend", "migrate-check"])]
    );
}

#[test]
fn help_lists_every_target_once_on_one_line() {
    let stub = Stub::new();
    let r = stub.make(&["help"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let makefile = read("Makefile");
    let mut targets: Vec<&str> = makefile
        .lines()
        .filter(|l| !l.starts_with('\t') && !l.starts_with('.') && !l.starts_with('$'))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            (plain && !rest.starts_with('=')).then_some(name)
        })
        .collect();
    targets.dedup();
    for t in [
        "dev",
        "dev-local",
        "prod",
        "docker-migrate",
        "docker-migrate-up",
        "docker-migrate-down",
        "docker-migrate-revision",
        "docker-migrate-history",
        "docker-migrate-current",
        "docker-migrate-check",
        "docker-migrate-stamp",
        "lint-containers",
    ] {
        assert!(targets.contains(&t), "{t} is not a Makefile target");
    }
    for t in &targets {
        assert_eq!(
            listed.iter().filter(|l| *l == t).count(),
            1,
            "`make help` must list {t} once:\n{}",
            r.stdout
        );
    }
    for line in r.stdout.lines() {
        let mut parts = line.split_whitespace();
        let (name, text) = (parts.next().unwrap_or(""), parts.next());
        assert!(text.is_some(), "help line without a description: {line:?}");
        assert!(
            targets.contains(&name),
            "help lists {name}, which is not a target"
        );
    }
    assert!(r.calls.is_empty());
}

#[test]
fn dockerfile_builds_the_binaries_and_runs_them_as_a_non_root_user() {
    let d = read("Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    for arg in ["ARG RUST_IMAGE=rust:", "ARG RUNTIME_IMAGE=debian:"] {
        let line = d
            .lines()
            .find(|l| l.starts_with(arg))
            .unwrap_or_else(|| panic!("{arg} missing"));
        let tag = line.rsplit(':').next().unwrap();
        assert!(
            tag.chars().any(|c| c.is_ascii_digit()) && tag != "latest",
            "base image tag not pinned: {line}"
        );
    }
    for bin in [
        "migrate-up",
        "migrate-down",
        "migrate-current",
        "migrate-history",
        "migrate-revision",
        "migrate-check",
        "migrate-stamp",
    ] {
        assert!(d.contains(&format!("--bin {bin}")), "{bin} is not built");
        assert!(
            d.contains(&format!("target/release/{bin}")),
            "{bin} is not copied out"
        );
    }
    assert!(d.contains("postgresql-client"), "pg_dump/psql");
    assert!(d.contains("ENV MIGRATIONS_DIR=/app/migrations"));
    assert!(d.contains("COPY --chown=retort:retort migrations/ /app/migrations/"));
    let user = d
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(
        !user.contains("root") && !user.contains(" 0"),
        "runs as root: {user}"
    );
    for secret in ["PASSWORD", "DATABASE_URL=", "PGPASSWORD"] {
        assert!(
            !d.lines()
                .any(|l| (l.starts_with("ENV") || l.starts_with("ARG")) && l.contains(secret)),
            "{secret} baked in"
        );
    }
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    assert_eq!(
        lines.iter().find(|l| !l.is_empty() && !l.starts_with('#')),
        Some(&"*"),
        "allow-list: everything is ignored first"
    );
    for l in ["**/.env", "**/target"] {
        assert!(lines.contains(&l), ".dockerignore misses {l}");
    }
    assert!(!lines
        .iter()
        .any(|l| l.starts_with("!.env") || *l == "!target/" || *l == "!.venv/"));
}

/// The builder stage copies every workspace member, and .dockerignore lets each one through.
#[test]
fn the_image_build_sees_every_workspace_member() {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let members: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(
        members.contains(&"core") && members.contains(&"bins"),
        "{members:?}"
    );
    let d = read("Dockerfile");
    let ignore = read(".dockerignore");
    for m in members {
        assert!(
            d.contains(&format!("COPY {m} ./{m}")),
            "the Dockerfile does not copy the workspace member {m}"
        );
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{m}/")),
            ".dockerignore keeps {m} out of the build"
        );
    }
}

#[test]
fn compose_files_wire_db_migrate_and_backend() {
    let dev = read("docker-compose.yml");
    for needle in [
        "image: ${PGVECTOR_IMAGE:-pgvector/pgvector:pg16}",
        "pg_isready",
        "pgdata:/var/lib/postgresql/data",
        "command: [\"migrate-up\", \"--wait\", \"60s\"]",
        "restart: \"no\"",
        "condition: service_completed_successfully",
        "condition: service_healthy",
        "@db:5432/",
        "${POSTGRES_PASSWORD:-",
        "- ./migrations:/app/migrations\n",
        "\"${DB_PORT:-5433}:5432\"",
    ] {
        assert!(dev.contains(needle), "docker-compose.yml lacks {needle}");
    }
    let prod = read("docker-compose.prod.yml");
    for needle in [
        "restart: unless-stopped",
        "restart: \"no\"",
        "condition: service_completed_successfully",
        "${RETORT_TAG:-",
        "${POSTGRES_PASSWORD:?",
    ] {
        assert!(
            prod.contains(needle),
            "docker-compose.prod.yml lacks {needle}"
        );
    }
    assert!(
        !prod.contains("./migrations"),
        "no source mounts in production"
    );
    assert!(
        !prod.contains("ports:"),
        "the production database port is not published"
    );
    let example = read(".env.example");
    assert!(
        example.contains("localhost:5433"),
        ".env.example points at the local server"
    );
}

/// With Debian's docker-compose (v1) installed (scripts/install-linters.sh), the resolved
/// configuration is checked too; skipped without it (`make lint-containers` requires it).
#[test]
fn compose_config_resolves_when_docker_compose_is_installed() {
    let Ok(out) = Command::new("docker-compose").arg("version").output() else {
        eprintln!("docker-compose not installed: skipped (scripts/install-linters.sh installs it)");
        return;
    };
    assert!(out.status.success());
    let config = |file: &str| {
        let out = Command::new("docker-compose")
            .current_dir(root())
            .args(["-f", file, "config"])
            .env("POSTGRES_PASSWORD", "s3cret-for-test")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dev = config("docker-compose.yml");
    assert!(
        dev.contains("DATABASE_URL: postgresql://retort@db:5432/retort"),
        "{dev}"
    );
    assert!(dev.contains("PGPASSWORD: s3cret-for-test"), "{dev}");
    let prod = config("docker-compose.prod.yml");
    assert!(prod.contains("PGPASSWORD: s3cret-for-test"), "{prod}");
    assert!(
        !prod.contains("s3cret-for-test@"),
        "the password is not in the URL"
    );
}
