//! `missing-down` (warning, script): no `-- migrate:down` section: the revision cannot be
//! rolled back, nor tested by `migrate-check --round-trip`. About the whole script: its
//! `-- retort:allow` may be on any comment line of the up section.

use super::{Concern, Meta, Raw, Rule, ScriptCx};
use crate::lint::first_token;
use crate::lint::Level;
use squawk_syntax::ast::AstNode;

pub static META: Meta = Meta {
    whole_script: true,
    ..Meta::new("missing-down", Level::Warning, Concern::Script)
};

pub struct MissingDown;

impl Rule for MissingDown {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn finish(&mut self, cx: &ScriptCx, out: &mut Vec<Raw>) {
        if cx.script.down.is_some() || cx.stmts.is_empty() {
            return;
        }
        out.push(Raw::new(
            &META,
            cx.stmts.first().map(|s| first_token(s.syntax())).unwrap_or(0),
            0,
            format!(
                "revision {} has no `-- migrate:down` section: it cannot be rolled back",
                cx.script.revision
            ),
            "add `-- migrate:down` with the statements that undo the up section (`migrate-check --round-trip` tests them)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn a_script_without_a_down_section() {
        let cfg = LintConfig::default();
        let s = script("001", "", "CREATE TABLE t (id bigint PRIMARY KEY);", None);
        let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
        assert!(rules(&f).contains(&"missing-down"), "{f:?}");
        let s = script(
            "001",
            "",
            "CREATE TABLE t (id bigint PRIMARY KEY);",
            Some("DROP TABLE t;"),
        );
        let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
        assert!(!rules(&f).contains(&"missing-down"), "{f:?}");
    }
}

#[cfg(test)]
mod program_tests {
    use crate::lint::testing::*;

    #[test]
    fn a_program_step_is_not_linted_in_either_direction() {
        let cfg = LintConfig::default();
        for (up, down) in [
            ("-- run: python 002_fill.py", None),
            (
                "-- run: python 002_fill.py",
                Some("-- run: python 002_fill.py"),
            ),
        ] {
            let s = script("002", "", up, down);
            let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
            assert!(f.is_empty(), "{f:?}");
        }
        // SQL up, a program down: the up SQL is linted as ever, the program not at all
        let s = script(
            "002",
            "",
            "CREATE TABLE t (id int PRIMARY KEY);",
            Some("-- run: ./undo.sh"),
        );
        let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
        assert_eq!(rules(&f), ["prefer-bigint-over-int"], "{f:?}");
    }
}
