//! Backups before migrating (what a start-up hook that migrates should do before every upgrade): `pg_dump
//! --format=custom` of the whole database into a timestamped file, taken under the migration
//! lock right before the first step runs, and only when there is something to run. The
//! password goes to pg_dump through PGPASSWORD, never on its command line.

use crate::config::DbUrl;
use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where pg_dump is: `PG_DUMP` (a path), else `PG_BIN/pg_dump`, else `pg_dump` on PATH.
pub fn pg_dump_program() -> PathBuf {
    if let Some(p) = std::env::var_os("PG_DUMP").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|p| !p.is_empty()) {
        let p = Path::new(&dir).join("pg_dump");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("pg_dump")
}

/// Dumps the database into `dir/<db>-<UTC time>-at-<heads>.dump`; returns the file's path.
pub fn dump(url: &DbUrl, dir: &Path, heads: &[String]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::new(
            ErrorKind::Migration,
            format!("cannot create the backup directory {}: {e}", dir.display()),
        )
    })?;
    let stamp = crate::revision::now_rfc3339().replace([':', '-'], "");
    let at = if heads.is_empty() {
        "base".to_string()
    } else {
        heads.join("+")
    };
    let file = dir.join(format!("{}-{stamp}-at-{at}.dump", url.dbname));
    let program = pg_dump_program();
    let mut cmd = Command::new(&program);
    cmd.arg("--format=custom")
        .arg("--file")
        .arg(&file)
        .arg("--host")
        .arg(&url.host)
        .arg("--port")
        .arg(url.port.to_string())
        .arg("--username")
        .arg(&url.user)
        .arg("--no-password")
        .arg(&url.dbname)
        .env("PGSSLMODE", url.sslmode.as_str())
        .env("PGAPPNAME", "retort-backup");
    if let Some(p) = url.password() {
        cmd.env("PGPASSWORD", p);
    }
    if let Some(c) = &url.sslrootcert {
        cmd.env("PGSSLROOTCERT", c);
    }
    log::info!("backing up {} to {}", url.dbname, file.display());
    let started = std::time::Instant::now();
    let out = cmd.output().map_err(|e| {
        Error::new(ErrorKind::Migration, format!("cannot run {}: {e}", program.display()))
            .with_hint("install the PostgreSQL client tools (pg_dump), or set PG_DUMP / PG_BIN; nothing was migrated")
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&file);
        let stderr = crate::config::redact_url_text(String::from_utf8_lossy(&out.stderr).trim());
        return Err(Error::new(ErrorKind::Migration, format!("the backup failed, so nothing was migrated: {stderr}"))
            .with_hint("pg_dump must be of the server's major version or newer; fix it, or run without --backup-dir"));
    }
    // a dump holds every row: readable by its owner only
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    log::info!(
        "backup done in {}: {} ({} bytes)",
        crate::words::fmt_duration(started.elapsed()),
        file.display(),
        size
    );
    Ok(file)
}
