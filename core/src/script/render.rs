//! Writing a new script (`migrate-revision`, autogenerate) in the documented format, so that
//! what the tools write is what the parser reads back.

use super::{NewScript, DOWN_MARKER, UP_MARKER};

/// The text of a new script file, in the documented format. Header lines: `revision`,
/// `down_revision` (only if there are parents), `message`, `created` (only if set), then
/// `branch_labels`, `depends_on` and `transactional: false` only when set. A message
/// containing line breaks is written on one line.
pub fn render_script(n: &NewScript) -> String {
    let one_line = |s: &str| {
        s.split(['\r', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::with_capacity(n.up_sql.len() + n.down_sql.len() + 256);
    let mut key = |k: &str, v: &str| {
        out.push_str("-- ");
        out.push_str(k);
        out.push(':');
        if !v.is_empty() {
            out.push(' ');
            out.push_str(v);
        }
        out.push('\n');
    };
    key("revision", &n.revision);
    if !n.down_revisions.is_empty() {
        key("down_revision", &n.down_revisions.join(", "));
    }
    key("message", &one_line(&n.message));
    if !n.created.trim().is_empty() {
        key("created", n.created.trim());
    }
    if !n.branch_labels.is_empty() {
        key("branch_labels", &n.branch_labels.join(", "));
    }
    if !n.depends_on.is_empty() {
        key("depends_on", &n.depends_on.join(", "));
    }
    if !n.transactional {
        key("transactional", "false");
    }
    for (k, v) in &n.headers {
        key(k, v);
    }
    let mut section = |marker: &str, sql: &str| {
        out.push('\n');
        out.push_str(marker);
        out.push('\n');
        let sql = sql.trim_end();
        let sql = sql.trim_start_matches(['\r', '\n']);
        if !sql.is_empty() {
            out.push_str(sql);
            out.push('\n');
        }
    };
    section(UP_MARKER, &n.up_sql);
    section(DOWN_MARKER, &n.down_sql);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn sample_new() -> NewScript {
        NewScript {
            revision: "ab12".into(),
            down_revisions: vec!["x1".into(), "y2".into()],
            depends_on: vec!["d1".into()],
            branch_labels: vec!["feature".into(), "other".into()],
            message: "add users".into(),
            created: "2026-11-22T10:00:00Z".into(),
            transactional: false,
            headers: Vec::new(),
            up_sql: "CREATE TABLE users (id int);\nCREATE INDEX ON users (id);".into(),
            down_sql: "DROP TABLE users;\n".into(),
        }
    }

    #[test]
    fn render_format() {
        let n = NewScript {
            revision: "002".into(),
            down_revisions: vec!["001".into()],
            message: "server settings table".into(),
            created: "2026-11-22T10:00:00Z".into(),
            transactional: true,
            up_sql: "CREATE TABLE server_settings (key text PRIMARY KEY, value jsonb NOT NULL);"
                .into(),
            down_sql: "DROP TABLE server_settings;".into(),
            ..Default::default()
        };
        assert_eq!(render_script(&n), EXAMPLE);
        let full = render_script(&sample_new());
        assert_eq!(
            full,
            "-- revision: ab12\n-- down_revision: x1, y2\n-- message: add users\n-- created: 2026-11-22T10:00:00Z\n\
             -- branch_labels: feature, other\n-- depends_on: d1\n-- transactional: false\n\n\
             -- migrate:up\nCREATE TABLE users (id int);\nCREATE INDEX ON users (id);\n\n\
             -- migrate:down\nDROP TABLE users;\n"
        );
        let root = render_script(&NewScript {
            revision: "001".into(),
            transactional: true,
            ..Default::default()
        });
        assert_eq!(
            root,
            "-- revision: 001\n-- message:\n\n-- migrate:up\n\n-- migrate:down\n"
        );
    }

    #[test]
    fn render_parse_round_trip() {
        for n in [
            sample_new(),
            NewScript {
                revision: "001".into(),
                transactional: true,
                ..Default::default()
            },
            NewScript {
                revision: "003".into(),
                down_revisions: vec!["002".into()],
                message: "multi\nline: message ".into(),
                transactional: true,
                up_sql: "\nSELECT 1;\n\n".into(),
                ..Default::default()
            },
        ] {
            let text = render_script(&n);
            let s = parse_script(Path::new("x.sql"), text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(s.revision, n.revision);
            assert_eq!(s.down_revisions, n.down_revisions);
            assert_eq!(s.depends_on, n.depends_on);
            assert_eq!(s.branch_labels, n.branch_labels);
            assert_eq!(
                s.message,
                n.message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            assert_eq!(s.created.unwrap_or_default(), n.created);
            assert_eq!(s.transactional, n.transactional);
            assert_eq!(s.up.sql.trim(), n.up_sql.trim());
            assert_eq!(s.down.expect("down section").sql.trim(), n.down_sql.trim());
        }
    }
}
