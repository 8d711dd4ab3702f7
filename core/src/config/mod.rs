//! Configuration: flags > environment > `.env` file.
//!
//! [`Settings::resolve`] is the one place that decides where each setting comes from: a flag
//! ([`Overrides`]), else the process environment, else the `.env` file (both in [`Env`]). The
//! database URL comes from `--database-url`, else `DATABASE_URL`, else `PGVECTOR_DB_URL` (the
//! name pgvector applications often use); its errors say which of these it was.
//!
//! The parts with rules of their own live in submodules, re-exported here so that
//! `crate::config::DbUrl` and friends stay the paths to use: `url` (what a database URL may
//! look like, and keeping its password out of everything printed), `duration` (`30s`,
//! `1h30m`) and `dotenv` (the `.env` file, read as python-dotenv and Docker Compose read it: the
//! application's `.env` is retort's too, so a line retort does not read never stops it).

pub mod dotenv;
mod duration;
pub mod project_file;
pub mod pyproject;
mod url;

pub use self::duration::parse_duration;
pub use self::url::{redact_url_text, DbUrl, SslMode};

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Variables from the process environment, then from a `.env` file (which never overrides the
/// process environment). Empty values count as unset. `Debug` shows the names, not the values.
#[derive(Clone, Default)]
pub struct Env {
    process: HashMap<String, String>,
    file: HashMap<String, String>,
    file_path: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment and `env_file` (or `./.env` when it exists). An explicit
    /// `env_file` that is missing or malformed is an error; so is a malformed `./.env`.
    pub fn load(env_file: Option<&Path>) -> Result<Env> {
        let process: HashMap<String, String> = std::env::vars().collect();
        let (path, required) = match env_file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(".env"), false),
        };
        let mut env = Env {
            process,
            file: HashMap::new(),
            file_path: None,
        };
        if path.exists() {
            env.file = read_env_file(&path, &env.process)?;
            env.file_path = Some(path);
        } else if required {
            return Err(
                Error::usage(format!("env file {} does not exist", path.display()))
                    .with_hint("check the --env-file path"),
            );
        }
        Ok(env)
    }

    /// An environment made of the given pairs only (for tests and library users).
    pub fn from_pairs(process: &[(&str, &str)], file: &[(&str, &str)]) -> Env {
        let conv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Env {
            process: conv(process),
            file: conv(file),
            file_path: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.process
            .get(key)
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.get(key).filter(|v| !v.is_empty()))
            .cloned()
    }

    /// The first of `keys` set in the process environment, else the first set in the `.env`
    /// file: the environment as a whole beats the file (an exported PGVECTOR_DB_URL wins over a
    /// DATABASE_URL left in .env), and within each, the order of `keys` decides.
    pub fn get_first(&self, keys: &[&str]) -> Option<(String, &'static str)> {
        self.lookup_first(keys).map(|(v, _, in_file)| {
            let source = if in_file { ".env file" } else { "environment" };
            (v, source)
        })
    }

    /// [`Env::get_first`]'s value, the index of its key, and whether it came from the file.
    fn lookup_first(&self, keys: &[&str]) -> Option<(String, usize, bool)> {
        let pick = |m: &HashMap<String, String>| {
            keys.iter()
                .enumerate()
                .find_map(|(i, k)| m.get(*k).filter(|v| !v.is_empty()).map(|v| (v.clone(), i)))
        };
        pick(&self.process)
            .map(|(v, i)| (v, i, false))
            .or_else(|| pick(&self.file).map(|(v, i)| (v, i, true)))
    }

    /// DATABASE_URL, else PGVECTOR_DB_URL (by [`Env::get_first`]'s rules), with where it was
    /// found ("DATABASE_URL in the environment"), for messages.
    fn url_variable(&self) -> Option<(String, String)> {
        const KEYS: [&str; 2] = ["DATABASE_URL", "PGVECTOR_DB_URL"];
        let (v, i, in_file) = self.lookup_first(&KEYS)?;
        let place = match (&self.file_path, in_file) {
            (_, false) => "the environment".to_string(),
            (Some(p), true) => p.display().to_string(),
            (None, true) => "the .env file".to_string(),
        };
        Some((v, format!("{} in {place}", KEYS[i])))
    }
}

/// Names only: the values include passwords (PGPASSWORD, DATABASE_URL).
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut process: Vec<&String> = self.process.keys().collect();
        let mut file: Vec<&String> = self.file.keys().collect();
        process.sort();
        file.sort();
        f.debug_struct("Env")
            .field("process", &process)
            .field("file", &file)
            .field("file_path", &self.file_path)
            .finish()
    }
}

/// Every variable retort reads from the environment or the `.env` file (docs/configuration.md
/// and `.env.example` describe each). A `.env` line that cannot be read stops a command only
/// when it sets one of these (or any `MIGRATE_*`).
pub const READ_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "PGVECTOR_DB_URL",
    "MIGRATIONS_DIR",
    "MIGRATE_VERSION_TABLE",
    "MIGRATE_VERSION_SCHEMA",
    "MIGRATE_SCHEMA_FILE",
    "MIGRATE_SCHEMA_COMMAND",
    "MIGRATE_INCLUDE",
    "MIGRATE_EXCLUDE",
    "MIGRATE_SHADOW_URL",
    "MIGRATE_SHADOW_TEMPLATE",
    "MIGRATE_DIRECT_URL",
    "MIGRATE_CACHE_DIR",
    "MIGRATE_LOCK_MODE",
    "MIGRATE_DDL_LOCK_TIMEOUT",
    "MIGRATE_STATEMENT_TIMEOUT",
    "MIGRATE_PROGRAM_TIMEOUT",
    "MIGRATE_MAX_MAINTENANCE_WORK_MEM",
    "PGUSER",
    "PGPASSWORD",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
    "XDG_CACHE_HOME",
    "HOME",
];

fn read_env_file(
    path: &Path,
    process: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!("env file {}: {e}", path.display()))
            .with_hint("check the file (UTF-8 text), or point --env-file at another")
    })?;
    let parsed = dotenv::parse(&text);
    for s in &parsed.skipped {
        let name = s.name.as_deref().unwrap_or("");
        let needed = READ_VARIABLES.contains(&name) || name.starts_with("MIGRATE_");
        if needed {
            // the line itself may hold a password: say where and what, not the text
            return Err(Error::usage(format!(
                "env file {}, line {}: {name}: {}",
                path.display(),
                s.line,
                s.reason
            ))
            .with_hint(format!(
                "write it as {name}=value (quote a value with \"...\" or '...'; a value cannot continue after its closing quote)"
            )));
        }
        log::debug!(
            "{}, line {}: skipped a statement retort does not read ({})",
            path.display(),
            s.line,
            s.reason
        );
    }
    Ok(dotenv::expand(&parsed, process))
}

/// Where the version table lives. Alembic's layout and name by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTableName {
    pub schema: Option<String>,
    pub name: String,
}

impl Default for VersionTableName {
    fn default() -> Self {
        VersionTableName {
            schema: None,
            name: "alembic_version".into(),
        }
    }
}

/// Settings shared by every command, resolved from flags, environment and `.env`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` when no URL was configured; commands that need a database then fail with a
    /// message naming the three ways to set it.
    pub database_url: Option<DbUrl>,
    pub migrations_dir: PathBuf,
    pub version_table: VersionTableName,
    /// The declarative schema for `--autogenerate` (default: `schema.sql` beside the migrations).
    pub schema_file: PathBuf,
    /// `--wait`: keep retrying the connection this long while the server is not up yet.
    pub wait: Option<Duration>,
    /// Tables and views autogenerate and the drift checks leave out (`MIGRATE_EXCLUDE`,
    /// `MIGRATE_INCLUDE`; the binaries add `--exclude` / `--include`).
    pub filter: crate::schema::filter::ObjectFilter,
    /// Where shadow databases are created (`MIGRATE_SHADOW_URL`; `--shadow-url` wins).
    pub shadow_url: Option<DbUrl>,
    /// The template shadow databases are created from (`MIGRATE_SHADOW_TEMPLATE`, default
    /// template0): one where an administrator created the extensions lets a role with
    /// CREATEDB only build shadows.
    pub shadow_template: Option<String>,
    /// `MIGRATE_DIRECT_URL`: a direct connection to the server, for the runs that cannot go
    /// through transaction pooling (session `SET`s, multi-statement non-transactional steps).
    pub direct_url: Option<DbUrl>,
    /// Where the header index of the graph-only commands lives (`MIGRATE_CACHE_DIR`, default
    /// `$XDG_CACHE_HOME/retort`, else `~/.cache/retort`; `off`: none). See
    /// [`crate::script::index`].
    pub cache_dir: Option<PathBuf>,
    /// `MIGRATE_LOCK_MODE` (`--lock-mode` wins).
    pub lock_mode: Option<LockMode>,
    /// `MIGRATE_DDL_LOCK_TIMEOUT` (`--ddl-lock-timeout` wins).
    pub ddl_lock_timeout: Option<Duration>,
    /// `MIGRATE_STATEMENT_TIMEOUT` (`--statement-timeout` wins).
    pub statement_timeout: Option<Duration>,
    /// `MIGRATE_PROGRAM_TIMEOUT` (`--program-timeout` wins): how long a program step may run.
    pub program_timeout: Option<Duration>,
    /// `MIGRATE_MAX_MAINTENANCE_WORK_MEM` in bytes (`2GB`, `512MB`): the most memory retort
    /// gives a vector index build on its own.
    pub max_maintenance_work_mem: Option<u64>,
}

/// `e` about the value of the variable `key`.
fn named(key: &str, mut e: Error) -> Error {
    e.message = format!("{key}: {}", e.message);
    let fix = format!("fix or unset {key} (in the environment or the .env file)");
    e.hint = Some(match e.hint.take() {
        Some(h) => format!("{h}; {fix}"),
        None => fix,
    });
    e
}

/// A memory size as PostgreSQL writes it: `512MB`, `2GB`, `64kB` (a bare number: megabytes).
pub fn parse_memory(v: &str) -> Result<u64> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "mb" => 1 << 20,
        "kb" => 1 << 10,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => 0,
    };
    match n.parse::<u64>() {
        Ok(n) if scale > 0 && n > 0 => Ok(n.saturating_mul(scale)),
        _ => Err(Error::usage(format!("'{v}' is not a memory size"))
            .with_hint("write it as PostgreSQL does: 512MB, 2GB")),
    }
}

/// A duration from the variable `key` (environment, else `.env`).
fn env_duration(env: &Env, key: &str) -> Result<Option<Duration>> {
    env.get(key)
        .map(|v| duration::parse_duration(&v).map_err(|e| named(key, e)))
        .transpose()
}

/// `MIGRATE_CACHE_DIR` (`off`: no cache), else `$XDG_CACHE_HOME/retort`, else
/// `$HOME/.cache/retort`, else none.
fn cache_dir(env: &Env) -> Option<PathBuf> {
    match env.get("MIGRATE_CACHE_DIR") {
        Some(v) if v.eq_ignore_ascii_case("off") => None,
        Some(v) => Some(PathBuf::from(v)),
        None => env
            .get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env.get("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|d| d.join("retort")),
    }
}

/// Values given on the command line; `None` means "not given". `Debug` redacts the URL.
#[derive(Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub dir: Option<PathBuf>,
    pub version_table: Option<String>,
    pub version_schema: Option<String>,
    pub schema_file: Option<PathBuf>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "(given, not shown)"),
            )
            .field("dir", &self.dir)
            .field("version_table", &self.version_table)
            .field("version_schema", &self.version_schema)
            .field("schema_file", &self.schema_file)
            .finish()
    }
}

impl Settings {
    /// Each setting from its flag, else the environment, else `.env`, else its default.
    pub fn resolve(flags: &Overrides, env: &Env) -> Result<Settings> {
        let database_url = resolve_database_url(flags, env)?;
        let migrations_dir = flags
            .dir
            .clone()
            .or_else(|| env.get("MIGRATIONS_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("migrations"));
        let version_table = resolve_version_table(flags, env)?;
        let schema_file = flags
            .schema_file
            .clone()
            .or_else(|| env.get("MIGRATE_SCHEMA_FILE").map(PathBuf::from))
            .unwrap_or_else(|| {
                migrations_dir
                    .parent()
                    .map(|p| p.join("schema.sql"))
                    .unwrap_or_else(|| PathBuf::from("schema.sql"))
            });
        let list = |k: &str| {
            env.get(k)
                .map(|v| crate::schema::filter::ObjectFilter::split_list(&v))
                .unwrap_or_default()
        };
        // the project file's [filters] first, then the environment adds to them
        let (mut include, mut exclude, source) = project_file::filters(&migrations_dir)?;
        include.extend(list("MIGRATE_INCLUDE"));
        exclude.extend(list("MIGRATE_EXCLUDE"));
        let filter =
            crate::schema::filter::ObjectFilter::new(include, exclude).map_err(|mut e| {
                e.message = format!(
                    "{source} / MIGRATE_INCLUDE / MIGRATE_EXCLUDE: {}",
                    e.message
                );
                e
            })?;
        let shadow_url = env
            .get("MIGRATE_SHADOW_URL")
            .filter(|u| !u.is_empty())
            .map(|u| {
                DbUrl::parse(&u, env).map_err(|mut e| {
                    e.message = format!("MIGRATE_SHADOW_URL: {}", e.message);
                    e
                })
            })
            .transpose()?;
        let direct_url = env
            .get("MIGRATE_DIRECT_URL")
            .map(|u| {
                DbUrl::parse(&u, env).map_err(|mut e| {
                    e.message = format!("MIGRATE_DIRECT_URL: {}", e.message);
                    e
                })
            })
            .transpose()?;
        Ok(Settings {
            database_url,
            migrations_dir,
            version_table,
            schema_file,
            wait: None,
            filter,
            shadow_url,
            shadow_template: env.get("MIGRATE_SHADOW_TEMPLATE").filter(|t| !t.is_empty()),
            direct_url,
            cache_dir: cache_dir(env),
            lock_mode: env
                .get("MIGRATE_LOCK_MODE")
                .map(|m| LockMode::parse(&m).map_err(|e| named("MIGRATE_LOCK_MODE", e)))
                .transpose()?,
            ddl_lock_timeout: env_duration(env, "MIGRATE_DDL_LOCK_TIMEOUT")?,
            statement_timeout: env_duration(env, "MIGRATE_STATEMENT_TIMEOUT")?,
            program_timeout: env_duration(env, "MIGRATE_PROGRAM_TIMEOUT")?,
            max_maintenance_work_mem: env
                .get("MIGRATE_MAX_MAINTENANCE_WORK_MEM")
                .map(|v| parse_memory(&v).map_err(|e| named("MIGRATE_MAX_MAINTENANCE_WORK_MEM", e)))
                .transpose()?,
        })
    }

    /// The URL, or the error that says how to configure one.
    pub fn require_url(&self) -> Result<&DbUrl> {
        self.database_url.as_ref().ok_or_else(|| {
            Error::usage("no database URL configured")
                .with_hint("pass --database-url, or set DATABASE_URL (or PGVECTOR_DB_URL) in the environment or in .env")
        })
    }
}

/// `--database-url`, else DATABASE_URL, else PGVECTOR_DB_URL, parsed; an error starts with
/// where the URL came from ("DATABASE_URL in the environment: ...").
fn resolve_database_url(flags: &Overrides, env: &Env) -> Result<Option<DbUrl>> {
    let raw = match flags.database_url.clone().filter(|s| !s.is_empty()) {
        Some(u) => Some((u, "--database-url".to_string())),
        None => env.url_variable(),
    };
    raw.map(|(u, origin)| {
        log::debug!("database URL from {origin}");
        DbUrl::parse(&u, env).map_err(|mut e| {
            e.message = format!("{origin}: {}", e.message);
            e
        })
    })
    .transpose()
}

/// The version table's name and schema, which must be usable as quoted identifiers.
fn resolve_version_table(flags: &Overrides, env: &Env) -> Result<VersionTableName> {
    let name = flags
        .version_table
        .clone()
        .or_else(|| env.get("MIGRATE_VERSION_TABLE"))
        .unwrap_or_else(|| "alembic_version".into());
    let schema = flags
        .version_schema
        .clone()
        .or_else(|| env.get("MIGRATE_VERSION_SCHEMA"));
    for ident in std::iter::once(&name).chain(schema.iter()) {
        if ident.is_empty() || ident.len() > 63 || ident.contains('"') || ident.contains('\0') {
            return Err(Error::usage(format!(
                "'{ident}' is not a usable version table or schema name"
            ))
            .with_hint("use a plain identifier of at most 63 bytes"));
        }
    }
    Ok(VersionTableName { schema, name })
}

/// `--lock-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// The advisory lock on a direct connection, the lease through a pooler.
    #[default]
    Auto,
    /// The session advisory lock (refused through transaction pooling).
    Session,
    /// The lease row, whatever the connection.
    Lease,
}

impl LockMode {
    pub fn parse(s: &str) -> Result<LockMode> {
        match s {
            "auto" => Ok(LockMode::Auto),
            "session" | "advisory" => Ok(LockMode::Session),
            "lease" => Ok(LockMode::Lease),
            other => Err(Error::usage(format!(
                "'{other}' is not a lock mode: expected auto, session or lease"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_overrides_debug_show_no_values() {
        let e = Env::from_pairs(
            &[("PGPASSWORD", "Hunter2")],
            &[("DATABASE_URL", "x://u:Sekr1t@h")],
        );
        let o = Overrides {
            database_url: Some("postgresql://u:Sekr1t@h/d".into()),
            ..Default::default()
        };
        for shown in [format!("{e:?}"), format!("{o:?}")] {
            assert!(
                !shown.contains("Hunter2") && !shown.contains("Sekr1t"),
                "{shown}"
            );
        }
    }

    #[test]
    fn url_errors_say_where_the_url_came_from() {
        let e = Env::from_pairs(&[], &[("PGVECTOR_DB_URL", "postgresql://u@h:x/d")]);
        let err = Settings::resolve(&Overrides::default(), &e).unwrap_err();
        assert!(
            err.message
                .starts_with("PGVECTOR_DB_URL in the .env file: "),
            "{err}"
        );
        let flags = Overrides {
            database_url: Some("postgresql://u@h:x/d".into()),
            ..Default::default()
        };
        let err = Settings::resolve(&flags, &e).unwrap_err();
        assert!(err.message.starts_with("--database-url: "), "{err}");
    }

    #[test]
    fn flags_beat_environment_beat_dotenv() {
        let e = Env::from_pairs(
            &[("DATABASE_URL", "postgresql://env@h/d")],
            &[
                ("DATABASE_URL", "postgresql://file@h/d"),
                ("MIGRATIONS_DIR", "db/m"),
            ],
        );
        let s = Settings::resolve(&Overrides::default(), &e).unwrap();
        assert_eq!(s.database_url.unwrap().user, "env");
        assert_eq!(s.migrations_dir, PathBuf::from("db/m"));
        assert_eq!(s.schema_file, PathBuf::from("db/schema.sql"));
        let flags = Overrides {
            database_url: Some("postgresql://flag@h/d".into()),
            ..Default::default()
        };
        assert_eq!(
            Settings::resolve(&flags, &e)
                .unwrap()
                .database_url
                .unwrap()
                .user,
            "flag"
        );
        let file_only = Env::from_pairs(&[], &[("PGVECTOR_DB_URL", "postgresql://vec@h/d")]);
        assert_eq!(
            Settings::resolve(&Overrides::default(), &file_only)
                .unwrap()
                .database_url
                .unwrap()
                .user,
            "vec"
        );
    }

    #[test]
    fn the_environment_as_a_whole_beats_the_dotenv_file() {
        let e = Env::from_pairs(
            &[("PGVECTOR_DB_URL", "postgresql://exported@h/d")],
            &[("DATABASE_URL", "postgresql://file@h/d")],
        );
        assert_eq!(
            Settings::resolve(&Overrides::default(), &e)
                .unwrap()
                .database_url
                .unwrap()
                .user,
            "exported"
        );
    }

    /// Every variable the code reads (found in the sources: `env.get("X")`, `env::var`,
    /// `var_os`, `os.environ.get` in the Python package, any `"MIGRATE_*"`) is in
    /// [`READ_VARIABLES`] or read from the process only, and each is described in
    /// docs/configuration.md and `.env.example`.
    #[test]
    fn every_variable_read_is_documented_in_configuration_md_and_env_example() {
        use std::collections::BTreeSet;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        // read by the binaries from the process environment only (not from .env)
        const PROCESS_ONLY: &[&str] = &["RUST_LOG", "PG_DUMP", "PG_BIN", "RETORT_BIN_DIR"];
        // the system's own, described where they matter (HOME for ~/.cache, PATH and
        // VIRTUAL_ENV to find python and pg_dump, HOSTNAME in the lease's holder)
        // RETORT_ALEMBIC_URL: how migrate-import hands the exporter it runs the database URL;
        // RETORT_REVISION, RETORT_DIRECTION: what a program step gets (set by retort, read by
        // retort_migrate.program; docs/script-format.md#program-steps);
        // RETORT_BACKFILL_KEY_TYPE: what a backfill's worker gets (read by
        // retort_migrate.backfill; docs/script-format.md#backfill-workers)
        const SYSTEM: &[&str] = &[
            "HOME",
            "PATH",
            "VIRTUAL_ENV",
            "HOSTNAME",
            "RETORT_ALEMBIC_URL",
            "RETORT_REVISION",
            "RETORT_DIRECTION",
            "RETORT_BACKFILL_KEY_TYPE",
        ];
        fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    sources(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs" || x == "py") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        for d in ["core/src", "bins/src", "python/retort_migrate"] {
            sources(&root.join(d), &mut files);
        }
        let markers = [
            "env.get(\"",
            ".get(\"",
            "env::var(\"",
            "var_os(\"",
            "environ.get(\"",
            "env_duration(env, \"",
            "list(\"",
        ];
        let mut found = BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for line in text.lines() {
                for m in markers {
                    for (at, _) in line.match_indices(m) {
                        let rest = &line[at + m.len()..];
                        let name: String = rest
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'
                            })
                            .collect();
                        if name.len() > 2 && rest[name.len()..].starts_with('"') {
                            found.insert(name);
                        }
                    }
                }
                for (at, _) in line.match_indices("\"MIGRATE_") {
                    let name: String = line[at + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if name.len() > "MIGRATE_".len() {
                        found.insert(name);
                    }
                }
            }
        }
        let known: BTreeSet<String> = READ_VARIABLES
            .iter()
            .chain(PROCESS_ONLY)
            .chain(SYSTEM)
            .map(|s| s.to_string())
            .collect();
        let unknown: Vec<&String> = found.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "read but not listed in READ_VARIABLES: {unknown:?}"
        );
        assert!(found.contains("MIGRATE_SCHEMA_COMMAND") && found.contains("PGPASSWORD"));
        let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
        for name in READ_VARIABLES.iter().chain(PROCESS_ONLY) {
            if SYSTEM.contains(name) {
                continue;
            }
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/configuration.md: {name}"
            );
            assert!(
                example.contains(&format!("{name}=")),
                ".env.example: {name}"
            );
        }
    }
}
