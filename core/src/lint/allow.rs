//! `-- retort:allow <rule> <reason>`: the user knows better, and says why. The comment goes on
//! the lines just above the statement (several allows may be stacked, among other comment
//! lines); it silences that one rule for that one statement. A reason is required: an allow
//! without one is itself a finding (`allow-syntax`), and silences nothing. A rule about the whole
//! script (`missing-down`) is silenced by an allow on any comment line of the up section.

use super::text::LineIndex;

const MARK: &str = "-- retort:allow";

struct Allow {
    line: usize,
    rule: String,
}

pub struct Problem {
    pub offset: usize,
    pub message: String,
}

/// The allow comments of one section.
pub struct Allows {
    allows: Vec<Allow>,
    bad: Vec<(usize, String)>,
    /// 0-based lines that hold only a comment (or are blank): an allow reaches over them.
    comment_lines: Vec<bool>,
}

impl Allows {
    pub fn find(sql: &str) -> Allows {
        let ix = LineIndex::new(sql);
        let mut allows = Vec::new();
        let mut bad = Vec::new();
        let mut comment_lines = Vec::with_capacity(ix.len());
        for line in 0..ix.len() {
            let offset = ix.line_start(line);
            let text = ix.line_text(line);
            let t = text.trim();
            comment_lines.push(t.starts_with("--"));
            if let Some(rest) = t.strip_prefix(MARK) {
                let mut words = rest.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(rule), Some(_reason)) => allows.push(Allow {
                        line,
                        rule: rule.to_string(),
                    }),
                    (Some(rule), None) => bad.push((
                        offset + text.find(MARK).unwrap_or(0),
                        format!("`-- retort:allow {rule}` gives no reason: it silences nothing"),
                    )),
                    _ => bad.push((
                        offset + text.find(MARK).unwrap_or(0),
                        "`-- retort:allow` names no rule".to_string(),
                    )),
                }
            }
        }
        Allows {
            allows,
            bad,
            comment_lines,
        }
    }

    /// Whether `rule` is allowed for the statement starting at byte `stmt` (`whole_script`:
    /// the rule is about the script, and an allow anywhere in the section reaches it).
    pub fn silences(&self, rule: &str, whole_script: bool, ix: &LineIndex, stmt: usize) -> bool {
        if whole_script {
            return self.allows.iter().any(|a| a.rule == rule);
        }
        let first = ix.line(stmt);
        // the contiguous comment lines directly above the statement's first line
        let mut top = first;
        while top > 0 && self.comment_lines.get(top - 1) == Some(&true) {
            top -= 1;
        }
        self.allows
            .iter()
            .any(|a| a.rule == rule && a.line >= top && a.line < first)
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.bad
            .iter()
            .map(|(offset, message)| Problem {
                offset: *offset,
                message: message.clone(),
            })
            .collect()
    }
}
