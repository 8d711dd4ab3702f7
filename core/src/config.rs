//! Configuration: flags > environment > `.env` file.
//!
//! The database URL comes from `--database-url`, else `DATABASE_URL`, else `PGVECTOR_DB_URL`
//! (seed 003's name). The URL forms that Python applications already keep in their `.env` are
//! accepted as they are: `postgres://`, `postgresql://` and SQLAlchemy's
//! `postgresql+asyncpg://`, `+psycopg2://`, `+psycopg://` (the driver suffix is dropped and
//! asyncpg's `ssl=` becomes `sslmode=`). A [`DbUrl`] never prints its password: `Display` and
//! [`DbUrl::redacted`] show `***` in its place.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every environment variable retort reads (also listed in `.env.example`).
pub const ENV_VARS: &[&str] = &[
    "DATABASE_URL",
    "PGVECTOR_DB_URL",
    "MIGRATIONS_DIR",
    "MIGRATE_VERSION_TABLE",
    "MIGRATE_VERSION_SCHEMA",
    "MIGRATE_SCHEMA_FILE",
    "PGUSER",
    "PGPASSWORD",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
];

/// Variables from the process environment, then from a `.env` file (which never overrides the
/// process environment). Empty values count as unset.
#[derive(Debug, Clone, Default)]
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
            env.file = read_env_file(&path)?;
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
        let pick = |m: &HashMap<String, String>| {
            keys.iter()
                .find_map(|k| m.get(*k).filter(|v| !v.is_empty()).cloned())
        };
        pick(&self.process)
            .map(|v| (v, "environment"))
            .or_else(|| pick(&self.file).map(|v| (v, ".env file")))
    }
}

fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let iter = dotenvy::from_path_iter(path).map_err(|e| env_file_error(path, e))?;
    let mut map = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| env_file_error(path, e))?;
        map.insert(k, v);
    }
    Ok(map)
}

fn env_file_error(path: &Path, e: dotenvy::Error) -> Error {
    // dotenvy's messages quote the offending line, which may hold a password: say only where.
    let detail = match e {
        dotenvy::Error::LineParse(_, idx) => format!("cannot parse it at character {idx}"),
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "cannot parse it".to_string(),
    };
    Error::usage(format!("env file {}: {detail}", path.display()))
        .with_hint("lines must look like KEY=value; quote values with spaces")
}

/// How to use TLS; libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" | "false" => SslMode::Disable,
            // libpq's allow tries without TLS first; prefer connects in both cases
            "allow" => SslMode::Prefer,
            "prefer" => SslMode::Prefer,
            "require" | "true" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::usage(format!("unknown sslmode '{other}'"))
                    .with_hint("use disable, prefer, require, verify-ca or verify-full"))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed, normalized database URL. Holds the password, but never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    pub options: Option<String>,
    /// Query parameters retort passes through unchanged in `to_url` (e.g. `target_session_attrs`).
    pub extra: Vec<(String, String)>,
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

const SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
    "postgresql+pg8000",
    "postgres+asyncpg",
    "postgres+psycopg2",
    "postgres+psycopg",
];

impl DbUrl {
    /// Parses any accepted URL form. `env` supplies PGPASSWORD, PGSSLMODE, PGSSLROOTCERT and
    /// PGCONNECT_TIMEOUT when the URL does not say. Errors never quote the password.
    pub fn parse(raw: &str, env: &Env) -> Result<DbUrl> {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
            Error::usage("the database URL has no scheme (it must start with postgresql://)")
                .with_hint("write it as postgresql://USER@HOST:5432/DBNAME, the password after USER and a colon")
        })?;
        let scheme_l = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme_l.as_str()) {
            return Err(Error::usage(format!(
                "database URL scheme '{scheme}' is not a PostgreSQL one"
            ))
            .with_hint("use postgresql:// (postgres://, postgresql+asyncpg://, +psycopg2:// and +psycopg:// are accepted too)"));
        }
        // libpq allows an empty host (`postgresql://app@/db?host=/run/postgresql`): give the URL
        // parser a placeholder; the `host` parameter below replaces it.
        let rest = match rest.find(['/', '?']) {
            Some(i) if rest[..i].ends_with('@') || i == 0 => {
                format!("{}localhost{}", &rest[..i], &rest[i..])
            }
            _ => rest.to_string(),
        };
        let parsed = url::Url::parse(&format!("postgresql://{rest}")).map_err(|e| {
            Error::usage(format!(
                "database URL '{}' is malformed: {e}",
                redact_url_text(raw)
            ))
            .with_hint("special characters in the password must be percent-encoded (e.g. @ as %40)")
        })?;
        let decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut host = parsed.host_str().unwrap_or("").to_string();
        if host.starts_with('[') && host.ends_with(']') {
            host = host[1..host.len() - 1].to_string();
        }
        let mut port = parsed.port().unwrap_or(5432);
        let mut user = decode(parsed.username());
        let mut password = parsed.password().map(decode);
        let mut dbname = decode(parsed.path().trim_start_matches('/'));
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut connect_timeout = None;
        let mut options = None;
        let mut extra = Vec::new();
        for (k, v) in parsed.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "sslmode" | "ssl" => sslmode = Some(SslMode::parse(&v)?),
                "sslrootcert" => sslrootcert = Some(PathBuf::from(v)),
                "connect_timeout" => {
                    let secs: u64 = v.parse().map_err(|_| {
                        Error::usage(format!("connect_timeout '{v}' is not a number of seconds"))
                    })?;
                    connect_timeout = Some(Duration::from_secs(secs));
                }
                "host" => host = v,
                "port" => {
                    port = v
                        .parse()
                        .map_err(|_| Error::usage(format!("port '{v}' is not a number")))?
                }
                "user" => user = v,
                "password" => password = Some(v),
                "dbname" => dbname = v,
                "options" => options = Some(v),
                // libpq/SQLAlchemy parameters that have no meaning here are passed over.
                "application_name" | "prepared_statement_cache_size" | "client_encoding" => {}
                other => extra.push((other.to_string(), v)),
            }
        }
        if host.is_empty() {
            host = "localhost".into();
        }
        if user.is_empty() {
            user = env.get("PGUSER").unwrap_or_else(|| "postgres".into());
        }
        if dbname.is_empty() {
            dbname = user.clone();
        }
        if password.is_none() {
            password = env.get("PGPASSWORD");
        }
        let sslmode = match sslmode {
            Some(m) => m,
            None => match env.get("PGSSLMODE") {
                Some(m) => SslMode::parse(&m)?,
                None => SslMode::Prefer,
            },
        };
        if sslrootcert.is_none() {
            sslrootcert = env.get("PGSSLROOTCERT").map(PathBuf::from);
        }
        if connect_timeout.is_none() {
            if let Some(t) = env.get("PGCONNECT_TIMEOUT") {
                connect_timeout = Some(Duration::from_secs(t.parse().map_err(|_| {
                    Error::usage(format!(
                        "PGCONNECT_TIMEOUT '{t}' is not a number of seconds"
                    ))
                })?));
            }
        }
        Ok(DbUrl {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            connect_timeout,
            options,
            extra,
        })
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `postgresql://user:***@host:port/db?sslmode=...`
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    /// The full URL, password included, in libpq's form (for `psql`/`pg_dump`). Never print it.
    pub fn to_url(&self) -> String {
        self.render(false)
    }

    fn render(&self, redact: bool) -> String {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let mut s = format!("postgresql://{}", enc(&self.user));
        if let Some(p) = &self.password {
            s.push(':');
            s.push_str(&if redact { "***".to_string() } else { enc(p) });
        }
        let host = if self.host.starts_with('/') {
            String::new()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        s.push_str(&format!("@{}:{}/{}", host, self.port, enc(&self.dbname)));
        let mut q: Vec<String> = Vec::new();
        if self.host.starts_with('/') {
            q.push(format!("host={}", enc(&self.host)));
        }
        if self.sslmode != SslMode::Prefer {
            q.push(format!("sslmode={}", self.sslmode.as_str()));
        }
        if let Some(c) = &self.sslrootcert {
            q.push(format!("sslrootcert={}", enc(&c.display().to_string())));
        }
        for (k, v) in &self.extra {
            q.push(format!("{}={}", enc(k), enc(v)));
        }
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }

    /// "host:port" for messages (the socket directory for a Unix socket).
    pub fn endpoint(&self) -> String {
        if self.host.starts_with('/') {
            format!("socket {}/.s.PGSQL.{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server and credentials, another database (shadow databases, test databases).
    pub fn with_dbname(&self, dbname: &str) -> DbUrl {
        DbUrl {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }
}

/// Replaces the password part of anything that looks like a URL (`scheme://user:pass@`) with
/// `***`, for text we did not build ourselves (error messages, echoed input).
pub fn redact_url_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // the authority ends at the first '/', '?', '#' or whitespace after the last '@'
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
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
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub dir: Option<PathBuf>,
    pub version_table: Option<String>,
    pub version_schema: Option<String>,
    pub schema_file: Option<PathBuf>,
}

impl Settings {
    pub fn resolve(flags: &Overrides, env: &Env) -> Result<Settings> {
        let raw_url = flags
            .database_url
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| {
                env.get_first(&["DATABASE_URL", "PGVECTOR_DB_URL"])
                    .map(|(v, source)| {
                        log::debug!("database URL from {source}");
                        v
                    })
            });
        let database_url = raw_url.map(|u| DbUrl::parse(&u, env)).transpose()?;
        let migrations_dir = flags
            .dir
            .clone()
            .or_else(|| env.get("MIGRATIONS_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("migrations"));
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
        Ok(Settings {
            database_url,
            migrations_dir,
            version_table: VersionTableName { schema, name },
            schema_file,
            wait: None,
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

/// Parses a duration: `500ms`, `30s`, `5m`, `1h`, `1h30m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let bad = || {
        Error::usage(format!("'{text}' is not a duration"))
            .with_hint("write it like 30s, 5m, 1h30m, 500ms, or a number of seconds")
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return if secs >= 0.0 && secs.is_finite() {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(bad())
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "sec" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_in_common_forms() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("30s").unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            super::parse_duration("5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            super::parse_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            super::parse_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            super::parse_duration("12").unwrap(),
            Duration::from_secs(12)
        );
        assert!(super::parse_duration("soon").is_err());
        assert!(super::parse_duration("5 parsecs").is_err());
    }

    use super::*;

    fn env() -> Env {
        Env::from_pairs(&[], &[])
    }

    #[test]
    fn every_accepted_scheme_normalizes_to_postgresql() {
        for scheme in [
            "postgres",
            "postgresql",
            "postgresql+asyncpg",
            "postgresql+psycopg2",
            "postgresql+psycopg",
        ] {
            let u = DbUrl::parse(
                &format!("{scheme}://app:s3cret@db.example:5433/rag"),
                &env(),
            )
            .unwrap();
            assert_eq!(
                (u.host.as_str(), u.port, u.user.as_str(), u.dbname.as_str()),
                ("db.example", 5433, "app", "rag")
            );
            assert_eq!(u.password(), Some("s3cret"));
            assert_eq!(u.to_url(), "postgresql://app:s3cret@db.example:5433/rag");
        }
    }

    #[test]
    fn asyncpg_ssl_parameter_becomes_sslmode() {
        let u = DbUrl::parse("postgresql+asyncpg://a:b@h/d?ssl=require", &env()).unwrap();
        assert_eq!(u.sslmode, SslMode::Require);
        assert_eq!(u.redacted(), "postgresql://a:***@h:5432/d?sslmode=require");
    }

    #[test]
    fn password_is_never_displayed() {
        let u = DbUrl::parse("postgresql://u:p%40ss%2Fword@h/d", &env()).unwrap();
        assert_eq!(u.password(), Some("p@ss/word"));
        for shown in [u.redacted(), format!("{u}"), format!("{u:?}")] {
            assert!(
                !shown.contains("p@ss") && !shown.contains("p%40ss"),
                "{shown}"
            );
        }
        assert!(u.to_url().contains("p%40ss%2Fword"));
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_the_password() {
        let e = DbUrl::parse("mysql://u:topsecret@h/d", &env()).unwrap_err();
        assert!(e.message.contains("mysql") && !e.to_string().contains("topsecret"));
        let e = DbUrl::parse("u:topsecret@h/d", &env()).unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }

    #[test]
    fn redact_url_text_masks_passwords_in_free_text() {
        assert_eq!(
            redact_url_text("could not use postgresql://u:pw@h:1/d and x://a@b"),
            "could not use postgresql://u:***@h:1/d and x://a@b"
        );
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

    #[test]
    fn unix_socket_urls_with_an_empty_host() {
        let u = DbUrl::parse("postgresql://app@/rag?host=/run/postgresql", &env()).unwrap();
        assert_eq!(
            (u.host.as_str(), u.user.as_str(), u.dbname.as_str()),
            ("/run/postgresql", "app", "rag")
        );
        let u = DbUrl::parse(
            "postgresql:///rag?host=/tmp",
            &Env::from_pairs(&[("PGUSER", "me")], &[]),
        )
        .unwrap();
        assert_eq!((u.host.as_str(), u.user.as_str()), ("/tmp", "me"));
        assert_eq!(
            DbUrl::parse("postgresql://h/d?sslmode=allow", &env())
                .unwrap()
                .sslmode,
            SslMode::Prefer
        );
    }

    #[test]
    fn pg_variables_fill_in_what_the_url_does_not_say() {
        let e = Env::from_pairs(
            &[
                ("PGPASSWORD", "pw"),
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", "/ca.pem"),
            ],
            &[],
        );
        let u = DbUrl::parse("postgresql://u@h/d", &e).unwrap();
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.sslrootcert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            DbUrl::parse("postgresql://u@h/d?sslmode=disable", &e)
                .unwrap()
                .sslmode,
            SslMode::Disable
        );
    }
}
