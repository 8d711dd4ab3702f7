//! `.env` files read the way python-dotenv reads them.
//!
//! retort's users keep one `.env` for their Python application, Docker Compose and retort, so a
//! line those tools accept must not stop a migration: `APP_TITLE=My RAG App` (an unquoted value
//! with spaces), `export KEY=value`, `KEY=1  # a comment`, single and double quotes (which may
//! span lines), empty values, `KEY` alone. The rules are python-dotenv's (its `parser.py` and
//! the `${NAME}` / `${NAME:-default}` expansion of `load_dotenv`), checked against python-dotenv
//! itself in `python/tests/test_dotenv.py`; dotenvy, stricter than both, refused such files.
//!
//! A statement that cannot be read (an unclosed quote, text after the closing quote, a name
//! with a space) is kept as a [`Skipped`] with its line and the name it seems to set. The caller
//! decides: python-dotenv passes over it, and so does retort unless it sets a variable retort
//! reads (then the error names the file, the line and the variable).

use std::collections::HashMap;

/// What a `.env` text sets, in order (a later binding of the same name wins), and the
/// statements that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `(name, value)`; `None` for a name without `=` (which sets nothing).
    pub bindings: Vec<(String, Option<String>)>,
    pub skipped: Vec<Skipped>,
}

/// A statement that is not `KEY=value` by python-dotenv's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line where the statement starts.
    pub line: usize,
    /// The name it seems to set (the text before `=`), when there is one.
    pub name: Option<String>,
    /// Why it cannot be read.
    pub reason: &'static str,
}

/// Parses a `.env` text (no expansion: see [`expand`]).
pub fn parse(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut out = Parsed::default();
    loop {
        while r.peek().is_some_and(char::is_whitespace) {
            r.pos += 1;
        }
        if r.peek().is_none() {
            break;
        }
        let start = r.pos;
        match r.binding() {
            Ok(Some(b)) => out.bindings.push(b),
            Ok(None) => {}
            Err(reason) => {
                // python-dotenv skips the rest of the line where reading stopped
                while r.peek().is_some_and(|c| c != '\n' && c != '\r') {
                    r.pos += 1;
                }
                out.skipped.push(Skipped {
                    line: r.line_of(start),
                    name: name_of(&r.chars[start..r.pos]),
                    reason,
                });
            }
        }
    }
    out
}

/// The values after python-dotenv's expansion of `${NAME}` and `${NAME:-default}` (in every
/// value, quoted or not; `$NAME` without braces stays as written). A name resolves to the
/// process environment first, then to what the file set before it, else the default (else
/// empty). Names without a value are left out.
pub fn expand(parsed: &Parsed, process: &HashMap<String, String>) -> HashMap<String, String> {
    // a name the file lists without a value resolves to empty, not to the default
    let mut values: HashMap<String, Option<String>> = HashMap::new();
    for (name, value) in &parsed.bindings {
        let resolved = value.as_ref().map(|v| {
            expand_one(v, |n| match process.get(n) {
                Some(p) => Some(p.clone()),
                None => values.get(n).map(|f| f.clone().unwrap_or_default()),
            })
        });
        values.insert(name.clone(), resolved);
    }
    values
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

fn expand_one(value: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('}') {
            // `${name}` / `${name:-default}`: a name has neither `}` nor `:`
            Some(close) => {
                let inner = &after[..close];
                let (name, default) = match inner.find(':') {
                    Some(c) if inner[c..].starts_with(":-") => (&inner[..c], &inner[c + 2..]),
                    Some(_) => {
                        out.push_str("${");
                        rest = after;
                        continue;
                    }
                    None => (inner, ""),
                };
                out.push_str(&lookup(name).unwrap_or_else(|| default.to_string()));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The name a statement seems to set: after `export`, before `=` or a space, without quotes.
fn name_of(stmt: &[char]) -> Option<String> {
    let s: String = stmt.iter().collect();
    let s = s.trim_start();
    let s = s
        .strip_prefix("export")
        .filter(|r| r.starts_with([' ', '\t']))
        .map(str::trim_start)
        .unwrap_or(s);
    let name: String = s
        .chars()
        .take_while(|c| *c != '=' && !c.is_whitespace())
        .filter(|c| *c != '\'' && *c != '"')
        .collect();
    (!name.is_empty() && !name.starts_with('#')).then_some(name)
}

struct Reader {
    chars: Vec<char>,
    pos: usize,
}

fn is_blank(c: char) -> bool {
    c.is_whitespace() && c != '\n' && c != '\r'
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn line_of(&self, pos: usize) -> usize {
        let ends = self.chars[..pos]
            .iter()
            .enumerate()
            .filter(|&(i, c)| *c == '\n' || (*c == '\r' && self.chars.get(i + 1) != Some(&'\n')))
            .count();
        ends + 1
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        (self.pos..)
            .zip(s.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    /// One statement: `[export ]KEY[=VALUE][ # comment]` up to the end of its line. `None` for
    /// a comment line.
    fn binding(&mut self) -> Result<Option<(String, Option<String>)>, &'static str> {
        if self.starts_with("export") && self.chars.get(self.pos + 6).is_some_and(|c| is_blank(*c))
        {
            self.pos += 6;
            self.skip_blanks();
        }
        let key = self.key()?;
        self.skip_blanks();
        let value = if self.peek() == Some('=') {
            self.pos += 1;
            let blank_after = self.peek().is_some_and(is_blank);
            self.skip_blanks();
            // `KEY= # note` is empty with a comment; `KEY=#x` is the value `#x`
            if blank_after && self.peek() == Some('#') {
                Some(String::new())
            } else {
                Some(self.value()?)
            }
        } else {
            None
        };
        // an optional comment, then the end of the line
        let mark = self.pos;
        self.skip_blanks();
        if self.peek() == Some('#') {
            while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                self.pos += 1;
            }
        } else {
            self.pos = mark;
        }
        self.skip_blanks();
        match self.peek() {
            None => {}
            Some('\n') => self.pos += 1,
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
            }
            Some(_) => {
                return Err(match &value {
                    Some(_) => "text follows the value's closing quote",
                    None if key.is_some() => "the name is followed by text that is not `=`",
                    None => "cannot read it as KEY=value",
                })
            }
        }
        Ok(key.map(|k| (k, value)))
    }

    /// The name; `None` at a `#` (a comment line).
    fn key(&mut self) -> Result<Option<String>, &'static str> {
        match self.peek() {
            Some('#') => Ok(None),
            Some('\'') => {
                let from = self.pos + 1;
                let mut end = from;
                while self.chars.get(end).is_some_and(|c| *c != '\'') {
                    end += 1;
                }
                if end == from || self.chars.get(end).is_none() {
                    return Err("the name's quote is not closed");
                }
                self.pos = end + 1;
                Ok(Some(self.chars[from..end].iter().collect()))
            }
            _ => {
                let from = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c != '=' && c != '#' && !c.is_whitespace())
                {
                    self.pos += 1;
                }
                if self.pos == from {
                    return Err("there is no name before `=`");
                }
                Ok(Some(self.chars[from..self.pos].iter().collect()))
            }
        }
    }

    fn value(&mut self) -> Result<String, &'static str> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let raw = self.quoted(q)?;
                Ok(if q == '\'' {
                    unescape(&raw, |c| matches!(c, '\\' | '\''))
                } else {
                    unescape(&raw, |c| {
                        matches!(
                            c,
                            '\\' | '\'' | '"' | 'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v'
                        )
                    })
                })
            }
            None | Some('\n' | '\r') => Ok(String::new()),
            Some(_) => {
                let from = self.pos;
                while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                    self.pos += 1;
                }
                let part = &self.chars[from..self.pos];
                // a comment starts at the first `#` after whitespace
                let cut = (1..part.len())
                    .find(|&i| part[i] == '#' && part[i - 1].is_whitespace())
                    .map(|i| {
                        let mut j = i - 1;
                        while j > 0 && part[j - 1].is_whitespace() {
                            j -= 1;
                        }
                        j
                    })
                    .unwrap_or(part.len());
                let value: String = part[..cut].iter().collect();
                Ok(value.trim_end().to_string())
            }
        }
    }

    /// The text between the quote `q` at the reader and its closing quote: python-dotenv's
    /// `'((?:\\.|[^'\\])*)'`, where a backslash takes the next character along (so `\'`
    /// does not close). May span lines.
    fn quoted(&mut self, q: char) -> Result<String, &'static str> {
        let from = self.pos + 1;
        let mut i = from;
        loop {
            match self.chars.get(i) {
                None => return Err("the quote that opens the value is not closed"),
                Some('\\') if i + 1 < self.chars.len() => i += 2,
                Some('\\') => return Err("the quote that opens the value is not closed"),
                Some(c) if *c == q => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(self.chars[from..i].iter().collect())
    }
}

/// Replaces `\x` for the `x` that `escapable` accepts, left to right, as python-dotenv does.
fn unescape(raw: &str, escapable: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(n)) if escapable(n) => {
                chars.next();
                out.push(match n {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases python/tests/test_dotenv.py checks against python-dotenv itself: text (and
    /// process environment) in, the values and the lines of skipped statements out.
    #[test]
    fn reads_what_python_dotenv_reads() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("dotenv_cases.json")).unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let process: HashMap<String, String> =
                serde_json::from_value(case.get("env").cloned().unwrap_or_default())
                    .unwrap_or_default();
            let parsed = parse(case["text"].as_str().unwrap());
            let expected: HashMap<String, String> =
                serde_json::from_value(case["expected"].clone()).unwrap();
            assert_eq!(expand(&parsed, &process), expected, "{name}");
            let lines: Vec<usize> = parsed.skipped.iter().map(|s| s.line).collect();
            let want: Vec<usize> = serde_json::from_value(case["skipped_lines"].clone()).unwrap();
            assert_eq!(lines, want, "{name}");
        }
    }

    #[test]
    fn a_skipped_statement_says_which_name_it_seems_to_set_and_why() {
        let p = parse("A=1\nexport DATABASE_URL=\"postgresql://u@h/d\nC='x' y\nMY KEY=3\n");
        let got: Vec<(usize, Option<&str>, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.line, s.name.as_deref(), s.reason))
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    Some("DATABASE_URL"),
                    "the quote that opens the value is not closed"
                ),
                (3, Some("C"), "text follows the value's closing quote"),
                (
                    4,
                    Some("MY"),
                    "the name is followed by text that is not `=`"
                ),
            ]
        );
    }
}
