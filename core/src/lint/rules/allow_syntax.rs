//! `allow-syntax` (error, script): a `-- retort:allow` without a rule or without a reason. An
//! allow must say why; one without a reason silences nothing ([`crate::lint::allow`]).

use super::{Concern, Meta, Raw, Rule, ScriptCx};
use crate::lint::allow::Allows;
use crate::lint::Level;

pub static META: Meta = Meta::new("allow-syntax", Level::Error, Concern::Script);

pub struct AllowSyntax;

impl Rule for AllowSyntax {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn finish(&mut self, cx: &ScriptCx, out: &mut Vec<Raw>) {
        for p in Allows::find(&cx.script.up.sql).problems() {
            out.push(Raw::new(
                &META,
                p.offset,
                p.offset,
                p.message,
                "write `-- retort:allow <rule> <reason>`, e.g. `-- retort:allow ban-drop-column the column was unused since v2`",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::*;

    #[test]
    fn allow_comments_need_a_reason_and_reach_one_statement() {
        let up = "-- retort:allow backfill-with-ddl the table has 12 rows\nALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';";
        let f = lint_after(CHUNKS, "", up);
        assert!(
            rules(&f).contains(&"backfill-with-ddl"),
            "the allow is above another statement: {f:?}"
        );
        let up = "ALTER TABLE chunks ADD COLUMN lang text;\n-- retort:allow backfill-with-ddl the table has 12 rows\nUPDATE chunks SET lang = 'en';";
        let f = lint_after(CHUNKS, "", up);
        assert!(!rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
        let up = "ALTER TABLE chunks ADD COLUMN lang text;\n-- retort:allow backfill-with-ddl\nUPDATE chunks SET lang = 'en';";
        let f = lint_after(CHUNKS, "", up);
        assert!(rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
        let bad = f
            .iter()
            .find(|f| f.rule == "allow-syntax")
            .expect("finding");
        assert_eq!(bad.line, 5);
    }
}
