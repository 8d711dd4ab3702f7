//! The fleet's targets: a file of database URLs (`--targets FILE`) or the rows of a query on
//! the main database (`--targets-query SQL`: URLs, or schema names for schema-per-tenant).

use crate::config::{DbUrl, Env, Settings};
use crate::db::{self, query};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One database (or one schema of a database) to run on.
#[derive(Debug, Clone)]
pub struct Target {
    /// What the status and the table call it: the `name=` of the file, else the database
    /// name (or host:port/database when two share one), else the schema.
    pub name: String,
    pub url: DbUrl,
    /// Schema-per-tenant: the version table and the `search_path` are in this schema.
    pub schema: Option<String>,
}

impl Target {
    /// `settings` pointed at this target: its URL, its version table's schema.
    pub fn settings(&self, base: &Settings) -> Settings {
        let mut s = base.clone();
        s.database_url = Some(self.url.clone());
        if let Some(schema) = &self.schema {
            s.version_table.schema = Some(schema.clone());
        }
        s
    }

    /// `postgresql://user:***@host:5432/db` (and the schema): never the password.
    pub fn shown(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} schema {s}", self.url.redacted()),
            None => self.url.redacted(),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
}

/// Parses a targets file: one URL per line, `name=URL` to name it, blank lines and `#`
/// comments ignored. Every bad line is an error with `file:line` (and never the URL's text).
pub fn parse_file(path: &Path, env: &Env) -> Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("--targets {}: cannot read it: {e}", path.display())))?;
    let mut out: Vec<(Option<String>, DbUrl, usize)> = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, url_text) = match line.split_once('=') {
            Some((name, rest)) if !name.contains("://") && !name.contains('?') => {
                let name = name.trim();
                if !valid_name(name) {
                    problems.push(format!(
                        "{}:{n}: the name before '=' may hold letters, digits and _ - . : / only",
                        path.display()
                    ));
                    continue;
                }
                (Some(name.to_string()), rest.trim())
            }
            _ => (None, line),
        };
        match DbUrl::parse(url_text, env) {
            Ok(u) => out.push((name, u, n)),
            Err(e) => problems.push(format!(
                "{}:{n}: {}",
                path.display(),
                crate::config::redact_url_text(&e.message)
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Error::usage(problems.join("\n"))
            .with_hint("each line: postgresql://user@host:5432/db, or name=postgresql://...; # starts a comment"));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let targets = name_targets(out.iter().map(|(n, u, _)| (n.clone(), u.clone())).collect());
    for (t, (_, _, line)) in targets.iter().zip(&out) {
        if let Some(first) = seen.insert(t.name.clone(), *line) {
            problems.push(format!(
                "{}:{line}: the target {} is already on line {first}",
                path.display(),
                t.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::usage(problems.join("\n")));
    }
    if targets.is_empty() {
        return Err(Error::usage(format!(
            "--targets {}: no targets in it (only blank lines and comments)",
            path.display()
        )));
    }
    Ok(targets)
}

/// Names unnamed URLs by their database, or host:port/database where two share a name.
fn name_targets(list: Vec<(Option<String>, DbUrl)>) -> Vec<Target> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (n, u) in &list {
        if n.is_none() {
            *count.entry(u.dbname.clone()).or_default() += 1;
        }
    }
    list.into_iter()
        .map(|(n, u)| {
            let name = n.unwrap_or_else(|| {
                if count[&u.dbname] > 1 {
                    format!("{}/{}", u.endpoint(), u.dbname)
                } else {
                    u.dbname.clone()
                }
            });
            Target {
                name,
                url: u,
                schema: None,
            }
        })
        .collect()
}

/// The rows of `sql` on `main`'s database, first column as text: a URL (containing `://`)
/// is a database; anything else is a schema of `main`'s database (schema-per-tenant).
pub fn from_query(main: &DbUrl, sql: &str, env: &Env, app: &str) -> Result<Vec<Target>> {
    let mut client = db::connect(main, app)?;
    let rows = query::rows(&mut client, sql, &[])
        .map_err(|e| db::db_error("--targets-query failed", &e))?;
    let mut urls = Vec::new();
    let mut schemas = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let v: Option<String> = row.try_get(0).map_err(|e| {
            Error::usage(format!(
                "--targets-query: its first column must be text (cast it: ...::text): {e}"
            ))
        })?;
        let Some(v) = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
            return Err(Error::usage(format!(
                "--targets-query: row {} is empty (NULL or blank)",
                i + 1
            )));
        };
        if v.contains("://") {
            let u = DbUrl::parse(&v, env).map_err(|e| {
                Error::usage(format!(
                    "--targets-query: row {}: {}",
                    i + 1,
                    crate::config::redact_url_text(&e.message)
                ))
            })?;
            urls.push((None, u));
        } else {
            if v.chars()
                .any(|c| c.is_whitespace() || c == '\\' || c == '"')
            {
                return Err(Error::usage(format!(
                    "--targets-query: row {}: schema name {v:?} has a space, a quote or a backslash",
                    i + 1
                )));
            }
            schemas.push(v);
        }
    }
    if !urls.is_empty() && !schemas.is_empty() {
        return Err(Error::usage(
            "--targets-query: the rows mix URLs and schema names; return one kind",
        ));
    }
    let mut targets = name_targets(urls);
    for s in schemas {
        let mut url = main.clone();
        let path = format!("-c search_path={}", db::quote_ident(&s));
        url.options = Some(match &main.options {
            Some(o) => format!("{o} {path}"),
            None => path,
        });
        targets.push(Target {
            name: s.clone(),
            url,
            schema: Some(s),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &targets {
        if !seen.insert(t.name.clone()) {
            return Err(Error::usage(format!(
                "--targets-query: the target {} comes twice",
                t.name
            )));
        }
    }
    if targets.is_empty() {
        return Err(Error::usage("--targets-query returned no rows"));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Target>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("targets.txt");
        std::fs::write(&p, text).unwrap();
        parse_file(&p, &Env::from_pairs(&[], &[])).map_err(|mut e| {
            e.message = e.message.replace(&p.display().to_string(), "targets.txt");
            e
        })
    }

    #[test]
    fn names_comments_and_blank_lines() {
        let t = parse("# tenants\n\nacme=postgresql://app:pw@db1:5432/acme\npostgresql://app@db2/beta\n  # more\npostgres://app@db3:5433/beta\n").unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["acme", "db2:5432/beta", "db3:5433/beta"]);
        assert_eq!(t[0].url.password(), Some("pw"));
        assert!(!t[0].shown().contains("pw"));
    }

    #[test]
    fn bad_lines_name_file_and_line_and_never_the_password() {
        let e = parse("acme=postgresql://app:Sup3r@db1/acme\nbad name=postgresql://x@h/d\nmysql://app:Sup3r@h/d\n").unwrap_err();
        assert!(
            e.message.contains("targets.txt:2: the name"),
            "{}",
            e.message
        );
        assert!(e.message.contains("targets.txt:3:"), "{}", e.message);
        assert!(!e.message.contains("Sup3r"), "{}", e.message);
        let e = parse("a=postgresql://h/d1\na=postgresql://h/d2\n").unwrap_err();
        assert!(
            e.message
                .contains("targets.txt:2: the target a is already on line 1"),
            "{}",
            e.message
        );
        let e = parse("# nothing\n\n").unwrap_err();
        assert!(e.message.contains("no targets"), "{}", e.message);
    }
}
