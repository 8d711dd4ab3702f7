//! The Makefile's container targets (docker-migrate-*, dev, dev-local, prod, docker-migrate),
//! run with a stub `docker` first on PATH that records its arguments, one line per call (each
//! argument followed by a tab). No Docker engine and no database are needed. Also: the help
//! listing, and the compose files as `docker-compose config` resolves them.

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
        &["docker-migrate-history", "args=--detail -i -r base:head"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-history",
            "--detail",
            "-i",
            "-r",
            "base:head",
        ],
    );
    assert_call(
        &stub,
        &["docker-migrate-current", "args=--detail --check-heads"],
        &[
            "compose",
            "exec",
            "backend",
            "migrate-current",
            "--detail",
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
    // autogenerate: the flags pass through; the service has schema.sql (the image and the
    // compose mount, checked below)
    assert_call(
        &stub,
        &[
            "docker-migrate-revision",
            "m=add embeddings",
            "args=--autogenerate --exclude langchain_*",
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
            "add embeddings",
            "--autogenerate",
            "--exclude",
            "langchain_*",
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

/// `docker-compose config` (v1, which resolves a compose file without a Docker engine): the
/// configuration Compose would run, as JSON, with only `env` in the environment (and an empty
/// env file, so a developer's .env does not change the result); Err(stderr) when Compose
/// refuses the file. docker-compose must be installed: scripts/install-linters.sh installs it,
/// and CI runs that before `make test`.
fn compose_config(file: &str, env: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let compose = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("docker-compose"))
        .find(|p| p.is_file())
        .expect("docker-compose is not installed: run scripts/install-linters.sh (CI does, before make test)");
    let empty_env = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(&compose);
    cmd.current_dir(root())
        .args(["-f", file, "--env-file"])
        .arg(empty_env.path())
        .arg("config")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    // docker-compose v1 prints YAML; the Python that runs docker-compose has its YAML parser
    let shebang = std::fs::read_to_string(&compose).unwrap();
    let python = shebang
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(str::trim)
        .expect("docker-compose is a Python script");
    let mut to_json = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    to_json
        .stdin
        .take()
        .unwrap()
        .write_all(&out.stdout)
        .unwrap();
    let json = to_json.wait_with_output().unwrap();
    assert!(json.status.success(), "YAML from docker-compose config");
    Ok(serde_json::from_slice(&json.stdout).unwrap())
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut n: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    n.sort();
    n
}

#[test]
fn the_dev_stack_starts_db_then_migrate_then_backend_with_one_password() {
    let c = compose_config(
        "docker-compose.yml",
        &[("POSTGRES_PASSWORD", "s3cret"), ("DB_PORT", "6543")],
    )
    .unwrap();
    let svc = &c["services"];
    assert_eq!(names(svc), ["backend", "db", "migrate"]);
    // migrate is one-shot, after the database is healthy; the backend after migrate succeeded
    assert_eq!(
        svc["migrate"]["command"],
        serde_json::json!(["migrate-up", "--wait", "60s"])
    );
    assert_eq!(svc["migrate"]["restart"], "no");
    assert_eq!(
        svc["migrate"]["depends_on"]["db"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        svc["backend"]["depends_on"]["migrate"]["condition"],
        "service_completed_successfully"
    );
    assert!(svc["db"]["healthcheck"]["test"]
        .to_string()
        .contains("pg_isready"));
    // the database's password reaches the binaries as PGPASSWORD, never inside the URL
    assert_eq!(svc["db"]["environment"]["POSTGRES_PASSWORD"], "s3cret");
    for s in ["migrate", "backend"] {
        let env = &svc[s]["environment"];
        assert_eq!(
            env["DATABASE_URL"], "postgresql://retort@db:5432/retort",
            "{s}"
        );
        assert_eq!(env["PGPASSWORD"], "s3cret", "{s}");
    }
    // DB_PORT chooses the host port; the local migrations are mounted, read-only for migrate
    assert_eq!(
        svc["db"]["ports"],
        serde_json::json!([{"published": 6543, "target": 5432}])
    );
    let mount = format!("{}/migrations:/app/migrations", root().display());
    assert_eq!(
        svc["migrate"]["volumes"],
        serde_json::json!([format!("{mount}:ro")])
    );
    // ... and the backend has the working tree's schema.sql, for --autogenerate and drift
    assert_eq!(
        svc["backend"]["volumes"],
        serde_json::json!([
            format!("{mount}:rw"),
            format!("{}/schema.sql:/app/schema.sql:ro", root().display())
        ])
    );
    // without settings: the port of `make db-up` and a development password, the same everywhere
    let c = compose_config("docker-compose.yml", &[]).unwrap();
    let svc = &c["services"];
    assert_eq!(svc["db"]["ports"][0]["published"], 5433);
    let password = &svc["db"]["environment"]["POSTGRES_PASSWORD"];
    assert!(password.is_string());
    assert_eq!(&svc["migrate"]["environment"]["PGPASSWORD"], password);
    assert_eq!(&svc["backend"]["environment"]["PGPASSWORD"], password);
}

#[test]
fn the_prod_stack_needs_a_password_publishes_no_port_and_mounts_no_source() {
    let err = compose_config("docker-compose.prod.yml", &[]).unwrap_err();
    assert!(err.contains("set POSTGRES_PASSWORD"), "{err}");
    let c = compose_config(
        "docker-compose.prod.yml",
        &[("POSTGRES_PASSWORD", "s3cret"), ("RETORT_TAG", "1.4.0")],
    )
    .unwrap();
    let svc = &c["services"];
    assert_eq!(names(svc), ["backend", "db", "migrate"]);
    for s in ["db", "migrate", "backend"] {
        assert!(svc[s].get("ports").is_none(), "{s} publishes a port");
        let source = root().display().to_string();
        for v in svc[s]["volumes"].as_array().into_iter().flatten() {
            let v = v.as_str().unwrap();
            assert!(
                !v.starts_with(&source),
                "{s} mounts {v} from the source tree"
            );
        }
    }
    assert_eq!(svc["migrate"]["image"], "retort:1.4.0");
    assert_eq!(svc["backend"]["image"], "retort:1.4.0");
    assert_eq!(svc["db"]["restart"], "unless-stopped");
    assert_eq!(svc["backend"]["restart"], "unless-stopped");
    assert_eq!(svc["migrate"]["restart"], "no");
    assert_eq!(
        svc["backend"]["depends_on"]["migrate"]["condition"],
        "service_completed_successfully"
    );
    for s in ["migrate", "backend"] {
        let env = &svc[s]["environment"];
        assert_eq!(env["PGPASSWORD"], "s3cret", "{s}");
        assert!(
            !env["DATABASE_URL"].as_str().unwrap().contains("s3cret"),
            "{s}"
        );
    }
}

#[test]
fn the_image_carries_schema_sql_where_autogenerate_and_check_look_for_it() {
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains("COPY --chown=retort:retort schema.sql /app/schema.sql"),
        "{dockerfile}"
    );
    // the build context lets it in (.dockerignore allows by name)
    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "!schema.sql"),
        "{ignore}"
    );
    // the image's environment makes the binaries find it there
    let env_line = |k: &str| {
        dockerfile
            .lines()
            .find_map(|l| {
                l.trim()
                    .trim_start_matches("ENV ")
                    .trim_end_matches(" \\")
                    .strip_prefix(&format!("{k}="))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {k} in the Dockerfile's ENV"))
    };
    let env = retort::config::Env::from_pairs(
        &[
            ("MIGRATIONS_DIR", &env_line("MIGRATIONS_DIR")),
            ("MIGRATE_SCHEMA_FILE", &env_line("MIGRATE_SCHEMA_FILE")),
        ],
        &[],
    );
    let settings =
        retort::config::Settings::resolve(&retort::config::Overrides::default(), &env).unwrap();
    assert_eq!(
        settings.schema_file,
        std::path::PathBuf::from("/app/schema.sql")
    );
    assert_eq!(
        settings.migrations_dir,
        std::path::PathBuf::from("/app/migrations")
    );
}
