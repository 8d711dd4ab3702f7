//! Script checksums: a fingerprint of what applying a script does, recorded when it is applied,
//! so that editing an applied script is noticed (`migrate-check`, `migrate-up` refuse to run
//! past one) while cosmetic edits (line endings, trailing whitespace, the message) are not.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `text` after normalizing away cosmetic differences: a BOM is
/// removed, CRLF and CR become LF, trailing whitespace is removed from every line, and
/// trailing blank lines are removed.
pub fn checksum(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut hasher = Sha256::new();
    let mut first = true;
    let mut pending_blank = 0usize;
    for line in text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
    {
        let line = line.trim_end();
        if line.is_empty() {
            pending_blank += 1;
            continue;
        }
        if !first {
            hasher.update(b"\n");
        }
        for _ in 0..pending_blank {
            hasher.update(b"\n");
        }
        hasher.update(line.as_bytes());
        first = false;
        pending_blank = 0;
    }
    let digest = hasher.finalize();
    // hex by table: `write!("{:02x}")` per byte was a visible part of loading 10,000 scripts
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(HEX[(byte >> 4) as usize] as char);
        hex.push(HEX[(byte & 15) as usize] as char);
    }
    hex
}

/// The header fields that change what applying the script does, as lines that [`checksum`]
/// covers before the `-- migrate:up` line: `down_revision: a, b` and `depends_on: c` (items in
/// file order) when not empty, `transactional: false` when false. Nothing for a transactional
/// root without dependencies, so its checksum is that of the sections alone. `message`,
/// `created` and `branch_labels` are left out: editing them changes nothing in the database.
pub(super) fn checksum_header(
    down_revisions: &[String],
    depends_on: &[String],
    transactional: bool,
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
            &EXAMPLE.replace("DROP TABLE", "DROP TABLE IF EXISTS"),
            "SQL",
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
}
