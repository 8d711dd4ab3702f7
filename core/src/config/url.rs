//! Database URLs: parsing every form Python applications already keep in their `.env`,
//! normalizing it to libpq's, and keeping the password out of everything printed.
//!
//! Accepted as they are: `postgres://`, `postgresql://` and SQLAlchemy's
//! `postgresql+asyncpg://`, `+psycopg2://`, `+psycopg://` (the driver suffix is dropped and
//! asyncpg's `ssl=` becomes `sslmode=`), with libpq's `key=value` query parameters and an empty
//! host for Unix sockets (`postgresql://app@/db?host=/run/postgresql`).
//!
//! A URL is the one input that carries a secret, hence a module of its own with three rules:
//! a [`DbUrl`] never prints its password (`Display`, `Debug` and [`DbUrl::redacted`] show
//! `***`); a URL that cannot be parsed is never quoted, its errors name the part and the column
//! instead (in a mangled URL, what looks like the port is often a piece of the password); and
//! [`redact_url_text`] masks passwords in text that comes from elsewhere (library errors, log
//! lines).

use super::Env;
use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

/// libpq connection parameters that [`DbUrl::redacted`] shows when a URL passes them through:
/// none is secret.
const SHOWN_PARAMETERS: &[&str] = &[
    "hostaddr",
    "passfile",
    "channel_binding",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// Where each part of `scheme://user:password@host:port/dbname?query#fragment` lies in a URL's
/// text, found the way the `url` crate splits it. Errors about a malformed URL use it to say
/// which part is wrong and at which column without quoting any of the text: in a mangled URL,
/// what looks like the port or the host may well be a piece of the password.
struct Layout<'a> {
    /// The URL as given (trailing whitespace dropped); byte offsets below index into it.
    text: &'a str,
    /// Just after `://`.
    start: usize,
    /// The end of the authority (user info, host, port): the first `/`, `?` or `#` after
    /// `start`, or the end of the text.
    authority_end: usize,
    /// The `@` that ends the user info (the last one in the authority).
    at: Option<usize>,
    /// The `:` between the user name and the password.
    colon: Option<usize>,
    /// The `?` that starts the query.
    query: Option<usize>,
    /// The `#` that starts a fragment (which a database URL cannot have).
    fragment: Option<usize>,
}

/// "write it as ..." for errors about the URL's syntax.
const URL_SYNTAX_HINT: &str = "write it as postgresql://USER@HOST:PORT/DBNAME with the password after USER and a colon, and / ? # @ % in it percent-encoded (%2F %3F %23 %40 %25); or keep the password out of the URL in PGPASSWORD";

impl<'a> Layout<'a> {
    /// Finds the scheme (which must be a PostgreSQL one) and the parts after it.
    fn new(text: &'a str) -> Result<Layout<'a>> {
        let start = check_scheme(text)?;
        let authority_end = text[start..]
            .find(['/', '?', '#'])
            .map_or(text.len(), |i| start + i);
        let at = text[start..authority_end].rfind('@').map(|i| start + i);
        let colon = at.and_then(|at| text[start..at].find(':').map(|i| start + i));
        let fragment = text[authority_end..].find('#').map(|i| authority_end + i);
        let query = text[authority_end..fragment.unwrap_or(text.len())]
            .find('?')
            .map(|i| authority_end + i);
        Ok(Layout {
            text,
            start,
            authority_end,
            at,
            colon,
            query,
            fragment,
        })
    }

    /// The 1-based column of a byte offset, in characters.
    fn column(&self, pos: usize) -> usize {
        self.text[..pos].chars().count() + 1
    }

    /// Where the host starts (after the user info).
    fn host_start(&self) -> usize {
        self.at.map_or(self.start, |at| at + 1)
    }

    /// The name of the part that holds byte `pos`, for messages ("the password").
    fn part_at(&self, pos: usize) -> &'static str {
        if pos < self.authority_end {
            return match self.at {
                Some(at) if pos < at => match self.colon {
                    Some(c) if pos > c => "the password",
                    _ => "the user name",
                },
                _ => "the host",
            };
        }
        if self.fragment.is_some_and(|f| pos >= f) {
            return "the fragment";
        }
        match self.query {
            Some(q) if pos > q => {
                let seg = self.text[..pos].rfind(['?', '&']).map_or(q, |i| i + 1);
                let key = self.text[seg..pos].split('=').next().unwrap_or("");
                if key.eq_ignore_ascii_case("password") && self.text[seg..pos].contains('=') {
                    "the password parameter"
                } else {
                    "a query parameter"
                }
            }
            _ => "the database name",
        }
    }

    /// A "malformed" error; the hint points at the likely cause.
    fn malformed(&self, what: String) -> Error {
        Error::usage(format!("the database URL is malformed: {what}")).with_hint(self.hint())
    }

    /// An `@` after the end of the authority almost always means that the user name or the
    /// password holds a `/`, `?` or `#` that ended the authority early.
    fn hint(&self) -> String {
        match self.text[self.authority_end..].find('@') {
            Some(i) => format!(
                "the host part ends at column {}, yet an '@' follows at column {}: if the user name or password holds a / ? or #, percent-encode it (%2F %3F %23, and @ as %40), or keep the password out of the URL in PGPASSWORD",
                self.column(self.authority_end),
                self.column(self.authority_end + i)
            ),
            None => URL_SYNTAX_HINT.to_string(),
        }
    }

    /// What can be told before the `url` crate sees the text: percent-encoding, the IPv6
    /// brackets, the port, `key=value` parameters, a fragment.
    fn check_syntax(&self) -> Result<()> {
        self.check_percent_encoding()?;
        self.check_host_and_port()?;
        self.check_parameters()?;
        if let Some(f) = self.fragment {
            return Err(self
                .malformed(format!(
                    "a '#' at column {} would start a fragment, which a database URL cannot have",
                    self.column(f)
                ))
                .with_hint("percent-encode a # in the password (or in a parameter) as %23"));
        }
        Ok(())
    }

    /// Every query parameter is `key=value`, as libpq requires. A bare word is most often the
    /// rest of a password with an unencoded `&` in it (`password=Sup3r&S3cret`); it must not
    /// slip through as a parameter of its own, to be shown wherever the URL is.
    fn check_parameters(&self) -> Result<()> {
        let Some(q) = self.query else { return Ok(()) };
        let end = self.fragment.unwrap_or(self.text.len());
        let mut pos = q + 1;
        for param in self.text[q + 1..end].split('&') {
            if !param.is_empty() && !param.contains('=') {
                return Err(self
                    .malformed(format!(
                        "the query parameter at column {} has no '=' (parameters are key=value)",
                        self.column(pos)
                    ))
                    .with_hint(
                        "if it follows password=, the password holds an '&': percent-encode it as %26",
                    ));
            }
            pos += param.len() + 1;
        }
        Ok(())
    }

    fn check_percent_encoding(&self) -> Result<()> {
        let bytes = self.text.as_bytes();
        for (i, &b) in bytes.iter().enumerate().skip(self.start) {
            let ok = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if b == b'%' && !(ok(i + 1) && ok(i + 2)) {
                return Err(self.malformed(format!(
                    "{} has a '%' at column {} that is not followed by two hex digits (a literal % is written %25)",
                    self.part_at(i),
                    self.column(i)
                )));
            }
        }
        Ok(())
    }

    fn check_host_and_port(&self) -> Result<()> {
        let host_start = self.host_start();
        let hostport = &self.text[host_start..self.authority_end];
        let port_at = if hostport.starts_with('[') {
            let Some(close) = hostport.find(']') else {
                return Err(self.malformed(format!(
                    "the host (column {}) opens an IPv6 address with '[' and does not close it with ']'",
                    self.column(host_start)
                )));
            };
            let after = &hostport[close + 1..];
            if !after.is_empty() && !after.starts_with(':') {
                return Err(self.malformed(format!(
                    "the host (column {}) goes on after the IPv6 address's ']' (only :PORT may follow)",
                    self.column(host_start)
                )));
            }
            (!after.is_empty()).then_some(host_start + close + 1)
        } else {
            hostport.find(':').map(|i| host_start + i)
        };
        if let Some(colon) = port_at {
            let port = &self.text[colon + 1..self.authority_end];
            let valid = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
            if !port.is_empty() && !valid {
                return Err(self.port_error(colon + 1));
            }
        }
        Ok(())
    }

    fn port_error(&self, pos: usize) -> Error {
        self.malformed(format!(
            "the port (column {}) is not a number from 0 to 65535",
            self.column(pos)
        ))
    }

    /// The `url` crate's complaint, said with the part and column (its messages quote
    /// nothing, but which part they mean is not obvious in a mangled URL).
    fn url_crate_error(&self, e: ::url::ParseError) -> Error {
        let host = self.column(self.host_start());
        match e {
            ::url::ParseError::InvalidIpv6Address => self.malformed(format!(
                "the host (column {host}) is not a valid IPv6 address"
            )),
            ::url::ParseError::InvalidIpv4Address => self.malformed(format!(
                "the host (column {host}) is not a valid IPv4 address"
            )),
            ::url::ParseError::EmptyHost => {
                self.malformed(format!("the host (column {host}) is empty"))
            }
            ::url::ParseError::InvalidPort => self.port_error(self.host_start()),
            ::url::ParseError::InvalidDomainCharacter | ::url::ParseError::IdnaError => self
                .malformed(format!(
                    "the host (column {host}) has a character that a host name cannot have"
                )),
            other => self.malformed(format!("{other} (from column {})", self.column(self.start))),
        }
    }

    /// The user name, the password and the database name must be UTF-8 once percent-decoded.
    fn check_decoded(&self) -> Result<()> {
        let path_end = self.query.or(self.fragment).unwrap_or(self.text.len());
        let mut parts = vec![(self.authority_end, path_end, "the database name")];
        if let Some(at) = self.at {
            match self.colon {
                Some(c) => {
                    parts.push((self.start, c, "the user name"));
                    parts.push((c + 1, at, "the password"));
                }
                None => parts.push((self.start, at, "the user name")),
            }
        }
        for (from, to, part) in parts {
            if percent_decode(&self.text[from..to]).is_none() {
                return Err(self.malformed(format!(
                    "{part} (from column {}) is not valid UTF-8 once percent-decoded",
                    self.column(from)
                )));
            }
        }
        Ok(())
    }
}

/// The offset just after `scheme://`, if the scheme is a PostgreSQL one. The scheme is quoted
/// in the error only when it looks like one: `user:secret://host` must not be.
fn check_scheme(text: &str) -> Result<usize> {
    let lead = text.len() - text.trim_start().len();
    let sep = text.find("://").ok_or_else(no_scheme)?;
    let scheme = &text[lead..sep];
    let plausible = scheme.len() <= 24
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !plausible {
        return Err(no_scheme());
    }
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(Error::usage(format!(
            "the database URL's scheme '{scheme}' (column {}) is not a PostgreSQL one",
            lead + 1
        ))
        .with_hint("use postgresql:// (postgres://, postgresql+asyncpg://, +psycopg2:// and +psycopg:// are accepted too)"));
    }
    Ok(sep + 3)
}

fn no_scheme() -> Error {
    Error::usage("the database URL does not start with a scheme (it must start with postgresql://)")
        .with_hint(
            "write it as postgresql://USER@HOST:5432/DBNAME, the password after USER and a colon",
        )
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`); `None` when the bytes are not
/// UTF-8 or an escape is incomplete.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl DbUrl {
    /// Parses any accepted URL form. `env` supplies PGUSER, PGPASSWORD, PGSSLMODE,
    /// PGSSLROOTCERT and PGCONNECT_TIMEOUT when the URL does not say. Errors never quote the
    /// URL: they name the part that is wrong and its column, so neither the password nor a
    /// `password=` parameter can show, however the URL is mangled.
    pub fn parse(raw: &str, env: &Env) -> Result<DbUrl> {
        let parsed = parse_url_text(raw)?;
        let mut given = Given::from_authority_and_path(&parsed);
        for (key, value) in parsed.query_pairs() {
            given.apply_parameter(&key, value.into_owned())?;
        }
        given.complete(env)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `postgresql://user:***@host:port/db?sslmode=...`. Of the parameters retort passes
    /// through, only libpq's own (not `sslpassword`) are shown: another key may be a piece of a
    /// password that held an `&`.
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    /// The full URL, password included, in libpq's form (for `psql`/`pg_dump`). Never print it.
    pub fn to_url(&self) -> String {
        self.render(false)
    }

    fn render(&self, redact: bool) -> String {
        let enc = |s: &str| {
            ::url::form_urlencoded::byte_serialize(s.as_bytes())
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
            if !redact || SHOWN_PARAMETERS.contains(&k.as_str()) {
                q.push(format!("{}={}", enc(k), enc(v)));
            }
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

/// Checks the text (errors by part and column, see [`Layout`]) and hands it to the `url` crate.
fn parse_url_text(raw: &str) -> Result<::url::Url> {
    let text = raw.trim_end();
    let layout = Layout::new(text)?;
    layout.check_syntax()?;
    let rest = &text[layout.start..];
    // libpq allows an empty host (`postgresql://app@/db?host=/run/postgresql`): give the URL
    // parser a placeholder; the `host` parameter replaces it.
    let rest = match rest.find(['/', '?']) {
        Some(i) if rest[..i].ends_with('@') || i == 0 => {
            format!("{}localhost{}", &rest[..i], &rest[i..])
        }
        _ => rest.to_string(),
    };
    let parsed = ::url::Url::parse(&format!("postgresql://{rest}"))
        .map_err(|e| layout.url_crate_error(e))?;
    layout.check_decoded()?;
    Ok(parsed)
}

/// What the URL itself says, decoded; `None` where it is silent and the environment or a
/// default decides ([`Given::complete`]).
struct Given {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: String,
    sslmode: Option<SslMode>,
    sslrootcert: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    options: Option<String>,
    extra: Vec<(String, String)>,
}

impl Given {
    /// `user:password@host:port/dbname`, percent-decoded (the query comes next).
    fn from_authority_and_path(parsed: &::url::Url) -> Given {
        let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_string());
        let host = parsed.host_str().unwrap_or("");
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6,
            None => host,
        };
        Given {
            host: host.to_string(),
            port: parsed.port().unwrap_or(5432),
            user: decode(parsed.username()),
            password: parsed.password().map(decode),
            dbname: decode(parsed.path().trim_start_matches('/')),
            sslmode: None,
            sslrootcert: None,
            connect_timeout: None,
            options: None,
            extra: Vec::new(),
        }
    }

    /// One query parameter: libpq's override the URL's parts; unknown ones are kept for
    /// [`DbUrl::to_url`].
    fn apply_parameter(&mut self, key: &str, value: String) -> Result<()> {
        match key {
            "sslmode" | "ssl" => self.sslmode = Some(SslMode::parse(&value)?),
            "sslrootcert" => self.sslrootcert = Some(PathBuf::from(value)),
            "connect_timeout" => {
                self.connect_timeout = Some(seconds(
                    &value,
                    "the database URL's connect_timeout parameter",
                )?)
            }
            "host" => self.host = value,
            "port" => {
                self.port = value.parse().map_err(|_| {
                    Error::usage(format!(
                    "the database URL's port parameter '{value}' is not a number from 0 to 65535"
                ))
                })?
            }
            "user" => self.user = value,
            "password" => self.password = Some(value),
            "dbname" => self.dbname = value,
            "options" => self.options = Some(value),
            // libpq/SQLAlchemy parameters that have no meaning here are passed over.
            "application_name" | "prepared_statement_cache_size" | "client_encoding" => {}
            other => self.extra.push((other.to_string(), value)),
        }
        Ok(())
    }

    /// Fills in what the URL did not say from `env` (PGUSER, PGPASSWORD, PGSSLMODE,
    /// PGSSLROOTCERT, PGCONNECT_TIMEOUT) and libpq's defaults.
    fn complete(self, env: &Env) -> Result<DbUrl> {
        let host = if self.host.is_empty() {
            "localhost".to_string()
        } else {
            self.host
        };
        let user = if self.user.is_empty() {
            env.get("PGUSER").unwrap_or_else(|| "postgres".into())
        } else {
            self.user
        };
        let dbname = if self.dbname.is_empty() {
            user.clone()
        } else {
            self.dbname
        };
        let sslmode = match (self.sslmode, env.get("PGSSLMODE")) {
            (Some(m), _) => m,
            (None, Some(m)) => SslMode::parse(&m)?,
            (None, None) => SslMode::Prefer,
        };
        let connect_timeout = match (self.connect_timeout, env.get("PGCONNECT_TIMEOUT")) {
            (Some(t), _) => Some(t),
            (None, Some(t)) => Some(seconds(&t, "PGCONNECT_TIMEOUT")?),
            (None, None) => None,
        };
        Ok(DbUrl {
            host,
            port: self.port,
            user,
            password: self.password.or_else(|| env.get("PGPASSWORD")),
            dbname,
            sslmode,
            sslrootcert: self
                .sslrootcert
                .or_else(|| env.get("PGSSLROOTCERT").map(PathBuf::from)),
            connect_timeout,
            options: self.options,
            extra: self.extra,
        })
    }
}

/// A whole number of seconds (`connect_timeout`); `what` names the setting in the error.
fn seconds(value: &str, what: &str) -> Result<Duration> {
    value
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| Error::usage(format!("{what} '{value}' is not a number of seconds")))
}

/// Masks passwords in text we did not build ourselves (error messages from libraries and
/// tools, echoed input, log lines): the user info of anything that looks like a URL
/// (`scheme://user:pass@host` becomes `scheme://user:***@host`) and the value of any
/// `password=` parameter (also `PGPASSWORD=`, `sslpassword=`, percent-encoded keys).
///
/// It errs on the side of masking: a password may hold an unencoded `/ ? # : @`, so the user
/// info runs to the last `@` before whitespace, and `user:secret/db` (no `@`, and no port after
/// the colon) is masked too.
pub fn redact_url_text(text: &str) -> String {
    mask_password_params(&mask_url_userinfo(text))
}

/// `scheme://user:***@...` for every `://` in `text`.
fn mask_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let token = &tail[..tail.find(char::is_whitespace).unwrap_or(tail.len())];
        let authority = &token[..token.find(['/', '?', '#']).unwrap_or(token.len())];
        let keep_user = |info: &str, end: usize| match info.find(':') {
            Some(c) => (format!("{}:***", &info[..c]), end),
            None => (String::new(), 0),
        };
        let (masked, skip) = match token.rfind('@') {
            Some(at) => keep_user(&token[..at], at),
            None => match authority.find(':') {
                Some(c)
                    if !authority.starts_with('[')
                        && !authority[c + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    keep_user(authority, authority.len())
                }
                _ => (String::new(), 0),
            },
        };
        out.push_str(&masked);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// `password=***` for every password parameter in `text`, in a URL's query (up to the next
/// `&` or whitespace) or in a `key=value` list (a quoted value up to its closing quote).
fn mask_password_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(off) = text[from..].find('=') {
        let eq = from + off;
        let (key_start, in_query) = match text[..eq].char_indices().rev().find(|&(_, c)| {
            c.is_whitespace() || matches!(c, '?' | '&' | ';' | ',' | '"' | '\'' | '(' | '[' | '{')
        }) {
            Some((k, c)) => (k + c.len_utf8(), matches!(c, '?' | '&')),
            None => (0, false),
        };
        let value = eq + 1;
        if !is_password_key(&text[key_start..eq]) {
            from = value;
            continue;
        }
        let quote = text[value..]
            .chars()
            .next()
            .filter(|c| !in_query && matches!(c, '\'' | '"'));
        let end = match quote {
            Some(q) => text[value + 1..]
                .find(q)
                .map_or(text.len(), |j| value + 1 + j + 1),
            None => text[value..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .map_or(text.len(), |j| value + j),
        };
        out.push_str(&text[copied..value]);
        out.push_str("***");
        copied = end;
        from = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_password_key(key: &str) -> bool {
    let key = percent_decode(key)
        .unwrap_or_else(|| key.to_string())
        .to_ascii_lowercase();
    key.ends_with("password") || key.ends_with("passwd")
}

#[cfg(test)]
mod tests {
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
    fn redact_url_text_masks_mangled_passwords_and_password_parameters() {
        for (text, shown) in [
            (
                "url 'postgresql://app:p@ss:w/rd@127.0.0.1/db' is bad",
                "url 'postgresql://app:***@127.0.0.1/db' is bad",
            ),
            (
                "postgresql+asyncpg://app:Pa55#word@127.0.0.1:5432/db",
                "postgresql+asyncpg://app:***@127.0.0.1:5432/db",
            ),
            ("postgresql://app:Zq7?x/y@h/d", "postgresql://app:***@h/d"),
            ("postgresql://app:N0At5ign/rag", "postgresql://app:***/rag"),
            (
                "postgresql://app@h:54x32/db?password=Sup3r-S3cret!pw",
                "postgresql://app@h:54x32/db?password=***",
            ),
            (
                "postgresql://app@h/db?sslmode=disable&password=Sup3r%21pw&port=1",
                "postgresql://app@h/db?sslmode=disable&password=***&port=1",
            ),
            (
                "postgresql://app@h/db?PassWord=x1&%70assword=x2",
                "postgresql://app@h/db?PassWord=***&%70assword=***",
            ),
            (
                "host=h password='a b c' user=u PGPASSWORD=Hunter2",
                "host=h password=*** user=u PGPASSWORD=***",
            ),
            // untouched: no password
            (
                "postgresql://app@[::1]:5432/db and h:5432 x://a@b",
                "postgresql://app@[::1]:5432/db and h:5432 x://a@b",
            ),
            ("postgresql://h:5432/db", "postgresql://h:5432/db"),
            (
                "\u{3000}password=Sec\u{3000}x",
                "\u{3000}password=***\u{3000}x",
            ),
        ] {
            assert_eq!(redact_url_text(text), shown, "{text}");
        }
    }

    #[test]
    fn malformed_urls_are_described_by_part_and_column_never_quoted() {
        for (url, says) in [
            (
                "postgresql+asyncpg://app:Pa55#word@127.0.0.1:5432/db",
                "the port (column 26)",
            ),
            (
                "postgresql://app@127.0.0.1:54x32/db?password=Sup3r-S3cret!pw",
                "the port (column 28)",
            ),
            (
                "postgresql://app:B4d%zzEnc@h/db",
                "the password has a '%' at column 21",
            ),
            (
                "postgresql://app@h/db?password=Qu3ry%zz",
                "the password parameter has a '%' at column 37",
            ),
            ("postgresql://app%FF@h/db", "the user name (from column 14)"),
            (
                "postgresql://a:b@[::1:5432/db",
                "the host (column 18) opens",
            ),
            (
                "postgresql://a:b@[fe80::zz]/db",
                "the host (column 18) is not",
            ),
            ("postgresql://a:b@h/db#Fr4g", "'#' at column 22"),
            ("postgresql://a:b@h:70000/db", "the port (column 20)"),
        ] {
            let e = DbUrl::parse(url, &env()).unwrap_err();
            assert!(e.message.contains(says), "{url}: {e}");
            for secret in ["Pa55", "Sup3r", "B4d", "Qu3ry", "Fr4g", "app%FF"] {
                assert!(!e.to_string().contains(secret), "{url}: {e}");
            }
        }
        let e = DbUrl::parse("postgresql://app:Pa55#word@h:5432/db", &env()).unwrap_err();
        assert!(
            e.hint.unwrap().contains("an '@' follows at column 27"),
            "the hint points at the unencoded character's likely effect"
        );
    }

    #[test]
    fn a_password_with_an_unencoded_ampersand_is_refused_or_not_shown() {
        let e = DbUrl::parse("postgresql://u@h/d?password=Sup3r&S3cretPw", &env()).unwrap_err();
        assert!(e.message.contains("column 35 has no '='"), "{e}");
        assert!(!e.to_string().contains("S3cr"), "{e}");
        let u = DbUrl::parse(
            "postgresql://u@h/d?password=Sup3r&S3cr=etPw&target_session_attrs=any",
            &env(),
        )
        .unwrap();
        assert_eq!(
            u.redacted(),
            "postgresql://u:***@h:5432/d?target_session_attrs=any"
        );
        assert!(
            u.to_url().contains("S3cr=etPw"),
            "to_url passes everything on"
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
