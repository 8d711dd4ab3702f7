//! `migrate-revision`: writes a new script file. Ids follow the history's convention, so that a
//! new revision sits with the old ones: 12 random hex digits where the history's ids are
//! Alembic's (an imported history), else the next number, zero-padded (`001`, `002`, as
//! projects that number their files do). `retort.toml`'s `[revision] ids = "hex"` or
//! `"sequential"` fixes the choice; `--random-id` and `--rev-id` decide for one revision.

use crate::config::project_file::{self, IdStyle};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::script::{file_name_for, render_script, validate_revision_id, NewScript};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct RevisionOptions {
    pub message: String,
    pub rev_id: Option<String>,
    /// `--head REV|base`: the parent; default: the single head.
    pub head: Option<String>,
    /// Allow a parent that is not a head (starts a branch).
    pub splice: bool,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    pub non_transactional: bool,
    /// Random 12-hex ids instead of sequential numbers.
    pub random_id: bool,
    /// `--merge`: the revisions to merge (`heads` for all heads).
    pub merge: Option<Vec<String>>,
    /// Bodies of the sections (autogenerate fills them; empty for a hand-written revision).
    pub up_sql: String,
    pub down_sql: String,
    /// The `created:` timestamp; now when `None`.
    pub created: Option<String>,
    /// Header keys after `transactional` (`backfill`, `check`, `phase`): a generated chain's.
    pub headers: Vec<(String, String)>,
}

/// The script to write and where: computed without writing anything (`retort.toml` is read
/// for its `[revision]` table).
pub fn prepare(project: &Project, opts: &RevisionOptions) -> Result<(PathBuf, NewScript)> {
    let graph = &project.graph;
    let heads = graph.heads();
    let down_revisions: Vec<String> = if let Some(merge) = &opts.merge {
        let mut revs = Vec::new();
        for m in merge {
            if m == "heads" {
                revs.extend(heads.iter().cloned());
            } else {
                revs.push(graph.resolve(m)?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        revs.retain(|r| seen.insert(r.clone()));
        if revs.len() < 2 {
            return Err(Error::usage(format!(
                "nothing to merge: {} revision given ({})",
                revs.len(),
                revs.join(", ")
            ))
            .with_hint("a merge needs two or more revisions; `--merge heads` merges every head"));
        }
        revs
    } else {
        match opts.head.as_deref() {
            Some("base") => Vec::new(),
            Some(h) => {
                let id = if h == "head" {
                    single_head(&heads)?
                } else {
                    // The full target grammar (`LABEL@head` is the branch's head, not the
                    // revision that declares the label), exactly one revision, nothing
                    // relative to a database.
                    graph.resolve(h)?
                };
                if !heads.contains(&id) && !opts.splice {
                    return Err(
                        Error::usage(format!("revision {id} is not a head revision")).with_hint(
                            "pass --splice to create a new branch from a non-head revision",
                        ),
                    );
                }
                vec![id]
            }
            None if heads.is_empty() => Vec::new(),
            None => vec![single_head(&heads)?],
        }
    };
    let depends_on = opts
        .depends_on
        .iter()
        .map(|d| graph.resolve(d))
        .collect::<Result<Vec<_>>>()?;
    for label in &opts.branch_labels {
        if project
            .graph
            .nodes()
            .iter()
            .any(|n| n.branch_labels.contains(label))
        {
            return Err(Error::usage(format!(
                "branch label '{label}' is already used"
            )));
        }
    }
    let revision = match &opts.rev_id {
        Some(id) => id.clone(),
        None if opts.random_id => random_id(&opts.message),
        None => match project_file::revision_ids(&project.dir)?
            .unwrap_or_else(|| history_convention(project))
        {
            IdStyle::Hex => random_id(&opts.message),
            IdStyle::Sequential => next_sequential(project),
        },
    };
    validate_revision_id(&revision)?;
    if project.graph.get(&revision).is_some() {
        return Err(
            Error::usage(format!("revision id '{revision}' already exists"))
                .with_hint("choose another --rev-id"),
        );
    }
    let script = NewScript {
        revision: revision.clone(),
        down_revisions,
        depends_on,
        branch_labels: opts.branch_labels.clone(),
        message: opts.message.clone(),
        created: opts.created.clone().unwrap_or_else(now_rfc3339),
        transactional: !opts.non_transactional,
        headers: opts.headers.clone(),
        up_sql: opts.up_sql.clone(),
        down_sql: opts.down_sql.clone(),
    };
    Ok((
        project.dir.join(file_name_for(&revision, &opts.message)),
        script,
    ))
}

/// The comment [`create`] writes in an empty up section of a new hand-written revision.
pub const UP_PLACEHOLDER: &str = "-- SQL that applies the change\n";
/// The comment [`create`] writes in an empty down section of a new hand-written revision.
pub const DOWN_PLACEHOLDER: &str =
    "-- SQL that reverts it (leave only this comment if nothing needs reverting)\n";

/// Writes the script; refuses to overwrite a file. Empty sections of a revision that is not a
/// merge get a comment saying what goes there ([`UP_PLACEHOLDER`], [`DOWN_PLACEHOLDER`]), so
/// that a forgotten down section shows in the file.
pub fn create(project: &Project, opts: &RevisionOptions) -> Result<PathBuf> {
    let (path, _, text) = render_new(project, opts)?;
    write_new(&path, &text)?;
    Ok(path)
}

/// What [`create`] would write, and where, without writing it (`--dry-run`).
pub fn render_new(
    project: &Project,
    opts: &RevisionOptions,
) -> Result<(PathBuf, NewScript, String)> {
    let (path, mut script) = prepare(project, opts)?;
    if opts.merge.is_none() {
        if script.up_sql.trim().is_empty() {
            script.up_sql = UP_PLACEHOLDER.to_string();
        }
        if script.down_sql.trim().is_empty() {
            script.down_sql = DOWN_PLACEHOLDER.to_string();
        }
    }
    let text = render_script(&script);
    Ok((path, script, text))
}

pub fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}: {e}", path.display())))
}

fn single_head(heads: &[String]) -> Result<String> {
    match heads {
        [h] => Ok(h.clone()),
        [] => Err(Error::usage("there is no head revision")),
        many => Err(Error::usage(format!(
            "Multiple heads are present ({}); please specify the head revision on which the new revision should be based, or perform a merge",
            many.join(", ")
        ))
        .with_hint("pass --head REV, or merge them first: migrate-revision --merge heads -m \"merge\"")),
    }
}

/// The ids the history uses: hex where more of its ids look like Alembic's (12 hex digits, a
/// letter among them) than are numbers, else sequential (an empty history too).
fn history_convention(project: &Project) -> IdStyle {
    let (mut hex, mut numbered) = (0usize, 0usize);
    for n in project.graph.nodes() {
        let id = n.id.as_bytes();
        if id.iter().all(u8::is_ascii_digit) {
            numbered += 1;
        } else if id.len() == 12
            && id
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            hex += 1;
        }
    }
    if hex > numbered {
        IdStyle::Hex
    } else {
        IdStyle::Sequential
    }
}

/// One more than the largest all-digit id, padded to the widest such id (at least 3 digits).
fn next_sequential(project: &Project) -> String {
    let mut max: u64 = 0;
    let mut width = 3;
    for n in project.graph.nodes() {
        if !n.id.is_empty() && n.id.len() <= 19 && n.id.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = n.id.parse::<u64>() {
                max = max.max(v);
                width = width.max(n.id.len());
            }
        }
    }
    format!("{:0width$}", max + 1, width = width)
}

/// Twelve hex digits, as Alembic writes them, but never twelve decimal digits: an id made
/// only of digits would be read as a number by `ids = "sequential"`, and the next
/// sequential revision would follow it (064197798154 after 064197798153).
fn random_id(seed: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (0u32..)
        .map(|attempt| {
            let mut h = Sha256::new();
            h.update(seed.as_bytes());
            h.update(std::process::id().to_le_bytes());
            h.update(now.as_nanos().to_le_bytes());
            h.update(attempt.to_le_bytes());
            let digest = h.finalize();
            digest
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .find(|id| !id.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_default()
}

/// Current UTC time as `2026-11-22T10:00:00Z` (no date crate needed).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    /// 001 -> 002 [feat] -> 003 and 001 -> 004: heads 003 and 004.
    fn project() -> Project {
        let script = |rev: &str, down: &str, extra: &str| {
            let text = format!(
                "-- revision: {rev}\n-- down_revision: {down}\n{extra}-- migrate:up\nSELECT 1;\n"
            );
            parse_script(Path::new(&format!("m/{rev}.sql")), text.as_bytes()).unwrap()
        };
        let scripts = vec![
            script("001", "none", ""),
            script("002", "001", "-- branch_labels: feat\n"),
            script("003", "002", ""),
            script("004", "001", ""),
        ];
        Project::from_scripts(Path::new("m"), scripts).unwrap()
    }

    fn opts() -> RevisionOptions {
        RevisionOptions {
            message: "m".into(),
            created: Some("2026-11-22T10:00:00Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn random_ids_are_twelve_hex_digits_and_never_all_decimal() {
        // about one id in 280 would be all digits if nothing prevented it
        for i in 0..5_000 {
            let id = random_id(&format!("m{i}"));
            assert_eq!(id.len(), 12, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(!id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        }
    }

    #[test]
    fn new_ids_follow_the_history() {
        let of = |ids: &[&str]| {
            let mut down = "none".to_string();
            let scripts = ids
                .iter()
                .map(|rev| {
                    let text =
                        format!("-- revision: {rev}\n-- down_revision: {down}\n-- migrate:up\n");
                    down = rev.to_string();
                    parse_script(Path::new(&format!("m/{rev}.sql")), text.as_bytes()).unwrap()
                })
                .collect();
            history_convention(&Project::from_scripts(Path::new("m"), scripts).unwrap())
        };
        assert_eq!(of(&[]), IdStyle::Sequential);
        assert_eq!(of(&["001", "002"]), IdStyle::Sequential);
        assert_eq!(
            of(&["202612071530", "202612081000"]),
            IdStyle::Sequential,
            "timestamps"
        );
        assert_eq!(of(&["4b1e0c9a7d21", "2f1c8e6b3a90"]), IdStyle::Hex);
        // an Alembic id made only of digits does not turn the history numbered
        assert_eq!(
            of(&["4b1e0c9a7d21", "2f1c8e6b3a90", "123456789012"]),
            IdStyle::Hex
        );
        assert_eq!(of(&["001", "add_users"]), IdStyle::Sequential);
        // in a hex history, the new revision and the merge get hex ids
        let p = Project::from_scripts(
            Path::new("m"),
            ["4b1e0c9a7d21", "2f1c8e6b3a90"]
                .iter()
                .map(|rev| {
                    let text = format!("-- revision: {rev}\n-- migrate:up\n");
                    parse_script(Path::new(&format!("m/{rev}.sql")), text.as_bytes()).unwrap()
                })
                .collect(),
        )
        .unwrap();
        let o = RevisionOptions {
            merge: Some(vec!["heads".into()]),
            ..opts()
        };
        let (path, s) = prepare(&p, &o).unwrap();
        assert!(
            s.revision.len() == 12 && s.revision.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}",
            s.revision
        );
        assert!(path.ends_with(format!("{}_m.sql", s.revision)), "{path:?}");
    }

    #[test]
    fn head_label_at_head_is_the_branch_head() {
        let p = project();
        let o = RevisionOptions {
            head: Some("feat@head".into()),
            ..opts()
        };
        let (_, s) = prepare(&p, &o).unwrap();
        assert_eq!(s.down_revisions, ["003"]);
        assert_eq!(s.revision, "005");
        // relative to a database: refused, not resolved against an empty one
        let o = RevisionOptions {
            head: Some("+1".into()),
            ..opts()
        };
        assert!(prepare(&p, &o).is_err());
    }

    #[test]
    fn merge_drops_repeated_revisions_keeping_the_first() {
        let p = project();
        let o = RevisionOptions {
            merge: Some(vec!["heads".into(), "003".into()]),
            ..opts()
        };
        let (_, s) = prepare(&p, &o).unwrap();
        assert_eq!(s.down_revisions, ["003", "004"]);
        let o = RevisionOptions {
            merge: Some(vec!["004".into(), "003".into(), "004".into()]),
            ..opts()
        };
        let (_, s) = prepare(&p, &o).unwrap();
        assert_eq!(s.down_revisions, ["004", "003"]);
        let o = RevisionOptions {
            merge: Some(vec!["003".into(), "feat@head".into()]),
            ..opts()
        };
        let e = prepare(&p, &o).unwrap_err();
        assert!(e.message.contains("nothing to merge"), "{e}");
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_341_600), "2026-11-22T10:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
