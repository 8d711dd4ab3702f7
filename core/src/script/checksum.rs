//! Script checksums: a fingerprint of what applying a script does, recorded when it is applied,
//! so that editing an applied script is noticed (`migrate-check`, `migrate-up` refuse to run
//! past one) while cosmetic edits (line endings, trailing whitespace, the message) are not.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `text` after normalizing away cosmetic differences: a BOM is
/// removed, CRLF and CR become LF, trailing whitespace is removed from every line, and
/// trailing blank lines are removed.
pub fn checksum(text: &str) -> String {
    let mut h = Normalized::default();
    h.feed(text.strip_prefix('\u{feff}').unwrap_or(text));
    h.hex()
}

/// A script's two checksums, in one pass over `text` (the header lines of
/// [`checksum_header`], then the file from the `-- migrate:up` line to the end): the first
/// covers `text[..up_end]` (what runs on upgrade: the header lines and the up section), the
/// second all of `text` (the form recorded before the down section was left out, accepted
/// when verifying records written then). Both normalized as [`checksum`] does.
pub(super) fn checksums(text: &str, up_end: usize) -> (String, String) {
    let mut h = Normalized::default();
    h.feed(&text[..up_end]);
    let up_only = h.clone().hex();
    h.feed(&text[up_end..]);
    (up_only, h.hex())
}

/// A program step's checksum: `checksum` (the script's own, which covers the `-- run:` line,
/// so the command) extended with the bytes of each file the command names inside the
/// migrations directory (name, then content, as they are: editing the program of an applied
/// revision is noticed like an edit of its SQL). Without files, `checksum` unchanged.
pub(super) fn with_files(checksum: &str, files: &[(String, Vec<u8>)]) -> String {
    if files.is_empty() {
        return checksum.to_string();
    }
    let mut h = Sha256::new();
    h.update(checksum.as_bytes());
    for (name, bytes) in files {
        h.update(b"\0run file\0");
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    Normalized {
        hasher: h,
        ..Default::default()
    }
    .hex()
}

/// SHA-256 over normalized lines, fed in pieces that end at line boundaries.
#[derive(Clone, Default)]
struct Normalized {
    hasher: Sha256,
    started: bool,
    pending_blank: usize,
}

impl Normalized {
    /// Adds the lines of `text` (which must start at a line start; a piece not ending in a
    /// newline ends with a whole line).
    fn feed(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.is_empty() {
            return;
        }
        for line in text
            .split('\n')
            .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
        {
            let line = line.trim_end();
            if line.is_empty() {
                self.pending_blank += 1;
                continue;
            }
            if self.started {
                self.hasher.update(b"\n");
            }
            for _ in 0..self.pending_blank {
                self.hasher.update(b"\n");
            }
            self.hasher.update(line.as_bytes());
            self.started = true;
            self.pending_blank = 0;
        }
    }

    fn hex(self) -> String {
        let digest = self.hasher.finalize();
        // hex by table: `write!("{:02x}")` per byte was a visible part of loading 10,000 scripts
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(HEX[(byte >> 4) as usize] as char);
            hex.push(HEX[(byte & 15) as usize] as char);
        }
        hex
    }
}

/// The header fields that change what applying the script does, as lines that [`checksum`]
/// covers before the `-- migrate:up` line: `down_revision: a, b` and `depends_on: c` (items in
/// file order) when not empty, `transactional: false` when false, `backfill: t.id batch=N` for a
/// backfill (the key and the batch change what applying it does). Nothing for a transactional
/// root without dependencies, so its checksum is that of the sections alone. `message`,
/// `created` and `branch_labels` are left out: editing them changes nothing in the database.
pub(super) fn checksum_header(
    down_revisions: &[String],
    depends_on: &[String],
    transactional: bool,
    backfill: Option<&str>,
) -> String {
    let mut s = String::new();
    if !down_revisions.is_empty() {
        s.push_str(&format!("down_revision: {}\n", down_revisions.join(", ")));
    }
    if !depends_on.is_empty() {
        s.push_str(&format!("depends_on: {}\n", depends_on.join(", ")));
    }
    if !transactional {
        s.push_str("transactional: false\n");
    }
    if let Some(b) = backfill {
        s.push_str(&format!("backfill: {b}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn checksum_ignores_cosmetics() {
        let base = "-- migrate:up\nCREATE TABLE t (x int);\n\n-- migrate:down\nDROP TABLE t;\n";
        let c = checksum(base);
        assert_eq!(c.len(), 64);
        assert!(c
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        assert_eq!(checksum(&base.replace('\n', "\r\n")), c, "CRLF");
        assert_eq!(checksum(&base.replace('\n', "\r")), c, "CR");
        assert_eq!(checksum(&format!("\u{feff}{base}")), c, "BOM");
        assert_eq!(
            checksum(&base.replace('\n', "  \t\n")),
            c,
            "trailing spaces"
        );
        assert_eq!(
            checksum(&format!("{base}\n\n  \n")),
            c,
            "trailing blank lines"
        );
        assert_eq!(checksum(base.trim_end()), c, "no final newline");
        assert_ne!(
            checksum(&base.replace("x int", "x bigint")),
            c,
            "SQL change"
        );
        assert_ne!(
            checksum(&base.replace("\n\n", "\n")),
            c,
            "inner blank line removed"
        );
        assert_ne!(
            checksum(&base.replace("CREATE", "  CREATE")),
            c,
            "leading indentation"
        );
        // Known value: SHA-256 of "abc".
        assert_eq!(
            checksum("abc\n"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn script_checksum_covers_the_semantic_header_fields_only() {
        let a = p(EXAMPLE).unwrap();
        let same =
            |text: &str, why: &str| assert_eq!(p(text).unwrap().checksum, a.checksum, "{why}");
        let differs =
            |text: &str, why: &str| assert_ne!(p(text).unwrap().checksum, a.checksum, "{why}");
        same(
            &EXAMPLE.replace("server settings table", "server settings tables"),
            "message",
        );
        same(&EXAMPLE.replace("2026-11-22", "2027-01-01"), "created");
        same(
            &EXAMPLE.replace("-- migrate:up", "-- branch_labels: settings\n-- migrate:up"),
            "branch_labels",
        );
        same(
            &EXAMPLE.replace("-- down_revision: 001", "--down_revision :  001  "),
            "header spacing",
        );
        same(
            &EXAMPLE.replace(
                "-- revision: 002\n-- down_revision: 001",
                "-- down_revision: 001\n-- a comment\n-- revision: 002",
            ),
            "header line order and comments",
        );
        same(
            &EXAMPLE.replace("-- migrate:up", "-- transactional: true\n-- migrate:up"),
            "transactional: true is the default",
        );
        differs(
            &EXAMPLE.replace("CREATE TABLE", "CREATE UNLOGGED TABLE"),
            "up SQL",
        );
        same(
            &EXAMPLE.replace("DROP TABLE", "DROP TABLE IF EXISTS"),
            "down SQL: it did not run on upgrade",
        );
        same(
            &EXAMPLE.replace("-- migrate:down\nDROP TABLE server_settings;\n", ""),
            "no down section",
        );
        same(
            &EXAMPLE.replace(
                "-- migrate:up",
                "-- set: work_mem=64MB\n-- lock_timeout: 1s\n-- migrate:up",
            ),
            "session settings",
        );
        same(
            &EXAMPLE.replace(
                "-- migrate:up",
                "-- round_trip: keeps extension vector (other databases use it)\n-- migrate:up",
            ),
            "the round-trip exemption",
        );
        differs(
            &EXAMPLE.replace("-- migrate:up", "-- transactional: false\n-- migrate:up"),
            "transactional",
        );
        differs(&EXAMPLE.replace("001", "000"), "down_revision");
        differs(
            &EXAMPLE.replace("-- down_revision: 001", "-- down_revision: 001, 000"),
            "down_revision list",
        );
        differs(&EXAMPLE.replace("-- down_revision: 001\n", ""), "no parent");
        differs(
            &EXAMPLE.replace("-- migrate:up", "-- depends_on: 000\n-- migrate:up"),
            "depends_on",
        );
        // a transactional root without dependencies: the sections alone
        let root = "-- revision: 1\n-- message: m\n-- migrate:up\nSELECT 1;\n";
        assert_eq!(
            p(root).unwrap().checksum,
            checksum("-- migrate:up\nSELECT 1;\n")
        );
    }

    #[test]
    fn a_record_of_either_form_matches_and_only_the_up_section_counts_in_the_new_one() {
        let a = p(EXAMPLE).unwrap();
        let old_form = a.legacy_checksum.clone().expect("a down section");
        assert_ne!(old_form, a.checksum);
        assert!(a.matches_checksum(&a.checksum));
        assert!(a.matches_checksum(&old_form), "a record written before");
        assert!(
            a.matches_checksum(&format!("{old_form}  ")),
            "char(64) padding"
        );
        // the down section fixed: the new form still matches, the old one no longer does
        let fixed = p(&EXAMPLE.replace("DROP TABLE", "DROP TABLE IF EXISTS")).unwrap();
        assert!(fixed.matches_checksum(&a.checksum));
        assert!(!fixed.matches_checksum(&old_form));
        // the up section edited: neither form matches
        let edited = p(&EXAMPLE.replace("jsonb", "json")).unwrap();
        assert!(!edited.matches_checksum(&a.checksum));
        assert!(!edited.matches_checksum(&old_form));
        // without a down section both forms are one
        let no_down = p("-- revision: 1\n-- migrate:up\nSELECT 1;\n").unwrap();
        assert_eq!(no_down.legacy_checksum, None);
    }
}
