//! The test harness: every scenario gets its own database on the test server (so tests run in
//! parallel) and its own temporary migrations directory, and runs the real binaries.
//!
//! The server comes from TEST_DATABASE_URL, which `make test` sets after starting a throwaway
//! PostgreSQL with pgvector (scripts/pg.sh run). The database is dropped when the scenario ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("TEST_DATABASE_URL is not set: run the tests with `make test` (it starts a PostgreSQL with pgvector), or point TEST_DATABASE_URL at a server")
    })
}

/// Replaces the database name in a postgresql:// URL.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let cut = base.rfind('/').expect("URL has a database part");
    format!("{}/{}{}", &base[..cut], db, query)
}

pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"))
}

/// A database of its own, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = format!(
            "retort_t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = connect(&server_url());
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb {
            url: with_db(&server_url(), &name),
            name,
        }
    }

    pub fn client(&self) -> postgres::Client {
        connect(&self.url)
    }

    /// The first column of every row, as text.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.client()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The version table's rows, sorted ([] when the table does not exist).
    pub fn version_rows(&self) -> Vec<String> {
        self.version_rows_in("alembic_version")
    }

    pub fn version_rows_in(&self, table: &str) -> Vec<String> {
        if !self.table_exists(table) {
            return vec![];
        }
        self.strings(&format!("SELECT version_num::text FROM {table} ORDER BY 1"))
    }

    pub fn table_exists(&self, name: &str) -> bool {
        let r = self
            .client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .unwrap();
        r.get(0)
    }

    /// The application's tables in public, sorted: everything but retort's own
    /// (alembic_version and its _applied / _audit record tables).
    pub fn tables(&self) -> Vec<String> {
        self.strings("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'alembic\\_version%' ORDER BY 1")
    }

    /// The audit log as `action success revisions` lines, oldest first.
    pub fn audit(&self) -> Vec<String> {
        if !self.table_exists("alembic_version_audit") {
            return vec![];
        }
        self.strings("SELECT action || ' ' || success || ' ' || array_to_string(revisions, ',') FROM alembic_version_audit ORDER BY id")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&server_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// What a binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A migrations directory and a database; runs the binaries against both.
pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    /// Extra environment for every run.
    pub env: Vec<(String, String)>,
}

impl Scenario {
    pub fn new() -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        Scenario {
            dir,
            db: TestDb::new(),
            env: Vec::new(),
        }
    }

    /// With the example application's migrations copied in.
    pub fn with_example() -> Scenario {
        let s = Scenario::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), s.migrations().join(e.file_name())).unwrap();
        }
        s
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file under the scenario directory.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Writes `migrations/<rev>_x.sql` with the given header lines, up and down SQL.
    pub fn revision(&self, rev: &str, down: &str, up: &str, down_sql: &str) {
        self.revision_with(rev, down, "", up, down_sql);
    }

    pub fn revision_with(
        &self,
        rev: &str,
        down: &str,
        extra_header: &str,
        up: &str,
        down_sql: &str,
    ) {
        let mut text = format!("-- revision: {rev}\n");
        if !down.is_empty() {
            text.push_str(&format!("-- down_revision: {down}\n"));
        }
        text.push_str(&format!("-- message: rev {rev}\n{extra_header}\n-- migrate:up\n{up}\n\n-- migrate:down\n{down_sql}\n"));
        self.write(&format!("migrations/{rev}_x.sql"), &text);
    }

    /// Runs `bin` with DATABASE_URL pointing at this scenario's database, in the scenario dir.
    pub fn run(&self, bin: &str, args: &[&str]) -> Run {
        self.run_env(bin, args, &[("DATABASE_URL", self.db.url.as_str())])
    }

    /// Runs `bin` with only the given variables set (beyond PATH/HOME), in the scenario dir.
    pub fn run_env(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_with(Command::new(bin_path(bin)), args, env)
    }

    /// Runs `bin` like `run`, as a user without privileges: `nobody` (through runuser) when
    /// the tests run as root, who reads any file whatever its permissions. The scenario
    /// directory is opened up so that user can enter it.
    pub fn run_unprivileged(&self, bin: &str, args: &[&str]) -> Run {
        let cmd = if is_root() {
            use std::os::unix::fs::PermissionsExt;
            for d in [self.dir.path().to_path_buf(), self.migrations()] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(bin_path(bin));
            c
        } else {
            Command::new(bin_path(bin))
        };
        self.run_with(cmd, args, &[("DATABASE_URL", self.db.url.as_str())])
    }

    /// The command `run` would run, to spawn it (signals, a pseudo-terminal).
    pub fn command(&self, bin: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_path(bin));
        self.set_up(&mut cmd, args, &[("DATABASE_URL", self.db.url.as_str())]);
        cmd
    }

    /// Runs `bin args` under a real pseudo-terminal (util-linux `script`) in the scenario
    /// dir, with only PATH, TERM=xterm and `env` set; what the terminal showed (stdout and
    /// stderr, escape codes included) and whether it succeeded.
    pub fn run_on_terminal(&self, bin: &str, args: &str, env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = Command::new("script");
        cmd.args([
            "-q",
            "-e",
            "-c",
            &format!("{} {args}", bin_path(bin).display()),
            "/dev/null",
        ])
        .current_dir(self.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn run_with(&self, mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.set_up(&mut cmd, args, env);
        cmd.stdin(std::process::Stdio::null());
        Run::from(cmd.output().unwrap())
    }

    fn set_up(&self, cmd: &mut Command, args: &[&str], env: &[(&str, &str)]) {
        cmd.args(args).current_dir(self.dir.path()).env_clear();
        for k in ["PATH", "HOME", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        // the header index of migrate-history / migrate-current: the scenario's own
        cmd.env("XDG_CACHE_HOME", self.dir.path().join(".cache"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
    }
}

pub fn bin_path(bin: &str) -> PathBuf {
    let p = match bin {
        "migrate-up" => env!("CARGO_BIN_EXE_migrate-up"),
        "migrate-down" => env!("CARGO_BIN_EXE_migrate-down"),
        "migrate-current" => env!("CARGO_BIN_EXE_migrate-current"),
        "migrate-history" => env!("CARGO_BIN_EXE_migrate-history"),
        "migrate-revision" => env!("CARGO_BIN_EXE_migrate-revision"),
        "migrate-check" => env!("CARGO_BIN_EXE_migrate-check"),
        "migrate-stamp" => env!("CARGO_BIN_EXE_migrate-stamp"),
        "migrate-import" => env!("CARGO_BIN_EXE_migrate-import"),
        other => panic!("no binary {other}"),
    };
    PathBuf::from(p)
}

/// A PostgreSQL server of a test's own (for TLS settings, or one started after the tool),
/// from the binaries in PG_BIN; stopped and deleted when dropped.
pub struct TempServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary as the unprivileged server owner when we are root.
pub fn as_server_owner(bin: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().unwrap()
}

impl TempServer {
    /// initdb only (trust authentication) with the test server's binaries (PG_BIN, PostgreSQL
    /// with pgvector); `start` starts it.
    pub fn init() -> TempServer {
        Self::init_with(PathBuf::from(
            std::env::var("PG_BIN").expect("PG_BIN is set by `make test` (scripts/pg.sh run)"),
        ))
    }

    /// The same with a PostgreSQL built with TLS support (PG_SSL_BIN): the pgserver wheel's
    /// build has none, so TLS scenarios use the distribution's server (scripts/setup.sh
    /// installs it, scripts/pg.sh exports its directory).
    pub fn init_tls() -> TempServer {
        Self::init_with(PathBuf::from(std::env::var("PG_SSL_BIN").expect(
            "PG_SSL_BIN is set by `make test` to a PostgreSQL built with SSL (Debian's postgresql)",
        )))
    }

    fn init_with(bin: PathBuf) -> TempServer {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
        }
        let data = dir.path().join("data");
        let o = as_server_owner(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        TempServer {
            dir,
            port: free_port(),
            bin,
        }
    }

    /// Copies a file into the data directory, readable by the server only.
    pub fn add_file(&self, name: &str, from: &Path) {
        let to = self.dir.path().join("data").join(name);
        std::fs::copy(from, &to).unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(&to)
                .status()
                .unwrap()
                .success());
        }
        assert!(Command::new("chmod")
            .arg("600")
            .arg(&to)
            .status()
            .unwrap()
            .success());
    }

    pub fn start(&self, settings: &[&str]) {
        let data = self.dir.path().join("data");
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=localhost -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        for s in settings {
            opts.push_str(&format!(" -c {s}"));
        }
        let log = self.dir.path().join("server.log");
        let o = as_server_owner(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            o.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgresql://postgres@{host}:{}/postgres{query}", self.port)
    }

    /// The directory of the server's binaries.
    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_server_owner(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// A PgBouncer (Debian's `pgbouncer`) of a test's own in front of the test server, on a free
/// port of 127.0.0.1, in `session` or `transaction` pooling; stopped when dropped. Clients
/// log in without a password (`auth_type = any`); PgBouncer logs in to the server as the test
/// server's user with its password (SCRAM). It runs as the unprivileged `postgres` user when
/// the tests run as root (PgBouncer refuses root).
pub struct PgBouncer {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl PgBouncer {
    pub fn start(mode: &'static str) -> PgBouncer {
        let server: postgres::Config = server_url().parse().expect("TEST_DATABASE_URL parses");
        let host = match &server.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("the test server is reached over TCP, not {other:?}"),
        };
        let password = String::from_utf8(server.get_password().unwrap_or_default().to_vec())
            .expect("a UTF-8 password");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={sport} user={user} password={password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             default_pool_size = 10\n\
             max_client_conn = 200\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {d}/pgbouncer.log\n\
             pidfile = {d}/pgbouncer.pid\n",
            sport = server.get_ports()[0],
            user = server.get_user().expect("the test server URL names a user"),
            d = dir.path().display(),
        );
        let conf = dir.path().join("pgbouncer.ini");
        std::fs::write(&conf, ini).unwrap();
        let mut cmd = if is_root() {
            assert!(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pgbouncer_bin());
            c
        } else {
            Command::new(pgbouncer_bin())
        };
        let o = cmd
            .args(["-d", "-q"])
            .arg(&conf)
            .output()
            .expect("pgbouncer is installed (scripts/setup.sh installs Debian's package)");
        let b = PgBouncer { dir, port };
        assert!(
            o.status.success(),
            "pgbouncer did not start: {}{}",
            String::from_utf8_lossy(&o.stderr),
            b.log()
        );
        // up when a query goes through it to the server
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let up = postgres::Client::connect(&b.url("postgres"), postgres::NoTls)
                .and_then(|mut c| c.simple_query("SELECT 1"));
            match up {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("pgbouncer does not answer: {e}\n{}", b.log())
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        b
    }

    /// A URL for `db` through the pooler (no password: PgBouncer logs in for the client).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.pid"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
    }
}

/// `pgbouncer` on PATH, else Debian's /usr/sbin/pgbouncer (not on an ordinary user's PATH).
fn pgbouncer_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("pgbouncer"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/pgbouncer"))
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        // SIGTERM is an immediate shutdown; gone (or a zombie nobody reaps) soon after
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if alive() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// The seven commands (migrate-import, the Alembic importer, aside): their `--help`s are
/// checked against the docs and the grammar.
pub const COMMANDS: [&str; 7] = [
    "migrate-up",
    "migrate-down",
    "migrate-current",
    "migrate-history",
    "migrate-revision",
    "migrate-check",
    "migrate-stamp",
];

/// A spawned binary whose stderr is collected as it comes.
pub struct Running {
    pub child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Scenario {
    /// `bin args` started in the background, its stderr collected as it comes.
    pub fn spawn(&self, bin: &str, args: &[&str]) -> Running {
        Running::start(self.command(bin, args))
    }
}

impl Running {
    /// `cmd` started in the background, its stderr collected as it comes.
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok)
            {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running {
            child,
            stderr,
            reader,
        }
    }
}

impl Running {
    /// Waits until stderr shows `text` (fails the scenario after `limit`).
    pub fn wait_for(&self, text: &str, limit: std::time::Duration) {
        let t0 = std::time::Instant::now();
        while !self.stderr.lock().unwrap().contains(text) {
            assert!(
                t0.elapsed() < limit,
                "no '{text}' after {limit:?}:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    /// Waits until stderr contains `text`, at most `limit`: whether it came (the process may
    /// have ended first).
    pub fn try_wait_for(&self, text: &str, limit: std::time::Duration) -> bool {
        let t0 = std::time::Instant::now();
        while !self.stderr.lock().unwrap().contains(text) {
            if t0.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }
    /// `kill -SIG` to the process.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }
    /// Waits for the exit: code, stderr, how long the wait took.
    pub fn finish(mut self) -> (i32, String, std::time::Duration) {
        let t0 = std::time::Instant::now();
        let status = self.child.wait().unwrap();
        let waited = t0.elapsed();
        self.reader.join().unwrap();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), err, waited)
    }
}
