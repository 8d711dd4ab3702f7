//! Revision ids and script file names: which ids are allowed (they must never be mistaken for
//! target syntax like `head-1` or `label@head`, or break a file name) and how a new script's
//! file is named.

use crate::error::{Error, Result};

/// Checks a revision id (also used for branch labels and `depends_on` items): 1 to 32
/// characters; no whitespace or control characters; none of `@` (`label@head`), `-` and `+`
/// (relative revisions like `head-1`), `:` (ranges), `,` (lists), `/` or `\` (file names); not
/// one of the reserved words `base`, `head`, `heads`, `none`, `current` (any case). Returns a
/// usage error saying why.
pub fn validate_revision_id(id: &str) -> Result<()> {
    let hint = "revision ids are 1 to 32 characters (like '002' or 'a1b2c3d4e5f6') with no \
                whitespace, no control characters and none of '@' '-' '+' ':' ',' '/' '\\', \
                and are not a reserved word (base, head, heads, none, current)";
    let bad = |why: String| {
        Err(Error::usage(format!("invalid revision id '{id}': {why}")).with_hint(hint))
    };
    let len = id.chars().count();
    if len == 0 {
        return Err(Error::usage("invalid revision id '': it is empty").with_hint(hint));
    }
    if len > 32 {
        return bad(format!("it is {len} characters long; the limit is 32"));
    }
    if let Some(c) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else {
            "a control character"
        };
        return bad(format!("it contains {what} ({c:?})"));
    }
    if let Some(c) = id.chars().find(|c| "@-+:,/\\".contains(*c)) {
        let why = match c {
            '@' => "'@' separates a branch label from a revision, as in 'label@head'",
            '-' | '+' => "'-' and '+' are used for relative revisions, as in 'head-1'",
            ':' => "':' separates the ends of a range, as in 'base:head'",
            ',' => "',' separates the items of a list",
            _ => "'/' and '\\' cannot be used in file names",
        };
        return bad(format!("it contains '{c}' ({why})"));
    }
    if ["base", "head", "heads", "none", "current"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(id))
    {
        return bad("it is a reserved word".to_string());
    }
    Ok(())
}

/// The file name for a new script: `<rev>_<slug>.sql`, where the slug is the message in
/// lowercase with every run of characters other than ASCII letters and digits turned into one
/// `_`, without leading or trailing `_`, at most 40 characters. An empty slug gives
/// `<rev>.sql`.
pub fn file_name_for(revision: &str, message: &str) -> String {
    let mut slug = String::with_capacity(message.len().min(48));
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    slug.truncate(40);
    let slug = slug.trim_end_matches('_');
    if slug.is_empty() {
        format!("{revision}.sql")
    } else {
        format!("{revision}_{slug}.sql")
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn validate_ids() {
        for ok in ["001", "a1b2c3d4e5f6", "x_y.z", "Ä1", &"a".repeat(32)] {
            assert!(validate_revision_id(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"a".repeat(33), "33 characters"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a@b", "'@'"),
            ("a-b", "'-'"),
            ("a+b", "'+'"),
            ("a:b", "':'"),
            ("a,b", "','"),
            ("a/b", "'/'"),
            ("head", "reserved"),
            ("BASE", "reserved"),
            ("current", "reserved"),
            ("Current", "reserved"),
        ] {
            let e = validate_revision_id(bad).expect_err(bad);
            assert!(e.message.contains(why), "{bad}: {e}");
            let hint = e.hint.unwrap();
            // the hint states the rule that is checked, not a narrower one
            assert!(
                hint.contains("32")
                    && hint.contains("whitespace")
                    && hint.contains("'@' '-' '+' ':' ',' '/' '\\'")
                    && hint.contains("current"),
                "{hint}"
            );
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(
            file_name_for("002", "server settings table"),
            "002_server_settings_table.sql"
        );
        assert_eq!(
            file_name_for("a1", "  Add Users (v2)! "),
            "a1_add_users_v2.sql"
        );
        assert_eq!(file_name_for("a1", "café--au lait"), "a1_caf_au_lait.sql");
        assert_eq!(file_name_for("a1", ""), "a1.sql");
        assert_eq!(file_name_for("a1", "!!! ???"), "a1.sql");
        let long = file_name_for("a1", &"word ".repeat(20));
        let slug = long
            .strip_prefix("a1_")
            .unwrap()
            .strip_suffix(".sql")
            .unwrap();
        assert!(slug.len() <= 40 && !slug.ends_with('_'), "{slug}");
        assert_eq!(
            file_name_for("a1", &"x".repeat(50)),
            format!("a1_{}.sql", "x".repeat(40))
        );
    }
}
