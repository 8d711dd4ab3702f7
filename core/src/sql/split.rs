//! A PostgreSQL-aware statement splitter.
//!
//! Non-transactional scripts (`-- transactional: false`, for `CREATE INDEX CONCURRENTLY` and
//! friends) must be sent one statement at a time: a multi-statement simple query runs in an
//! implicit transaction. This module finds the top-level `;` that end statements, the way
//! `psql` does, without a full parser. It understands:
//!
//! - single-quoted strings with `''` escapes (also `B''`, `X''`, `N''`, `U&''`);
//! - `E''` strings with backslash escapes (`E'it\'s'`);
//! - double-quoted identifiers with `""` escapes;
//! - dollar quotes, `$$...$$` and `$tag$...$tag$` (but `$1` is a parameter, and `a$b` an
//!   identifier);
//! - `--` line comments and nested `/* /* */ */` block comments;
//! - parentheses: a `;` inside `(...)` does not end a statement (multi-action `CREATE RULE`);
//! - SQL-standard function bodies, `CREATE [OR REPLACE] {FUNCTION|PROCEDURE} ... BEGIN ATOMIC
//!   ... END`: with psql's heuristic, when a statement starts with those words, `BEGIN` and
//!   `CASE` (inside a `BEGIN`) open a block that `END` closes, and a `;` inside a block does not
//!   end the statement.
//!
//! Not handled (as in most tools): a server running with `standard_conforming_strings = off`,
//! where `\'` escapes a quote in a plain string, and `COPY ... FROM stdin` data.
//!
//! The splitter works on bytes: every byte that matters is ASCII, and the bytes of multi-byte
//! UTF-8 characters (all `>= 0x80`) are treated as identifier characters, as PostgreSQL does.
//! Unterminated strings or comments simply run to the end of the text; the server reports them.

/// One statement found by [`split`]: `sql[start..end]` is its text, from its first character
/// that is neither whitespace nor part of a comment to the end of its last token (the `;`
/// and any comment or whitespace before it are not included). `line` is the line of `start`,
/// counted from the `first_line` given to [`split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

impl Span {
    /// The statement's text within the `sql` that was split.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }
}

/// Splits `sql` on top-level semicolons. Statements that are empty or contain only comments and
/// whitespace are dropped. `first_line` is the line number of the first line of `sql` (for a
/// script section: `Section::line`), so each span's `line` is a file line.
pub fn split(sql: &str, first_line: usize) -> Vec<Span> {
    let b = sql.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    let mut lines = LineCounter {
        pos: 0,
        line: first_line,
    };
    let mut cur = Current::default();
    let mut i = 0;
    while i < n {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                // A line comment runs to the end of the line; the newline is whitespace.
                i = memchr(b, i + 2, b'\n').unwrap_or(n);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b';' if cur.paren == 0 && cur.begin_depth == 0 => {
                cur.finish(b, &mut lines, &mut out);
                i += 1;
            }
            b'\'' => {
                let e = skip_quoted(b, i, b'\'', false);
                cur.mark(i, e);
                i = e;
            }
            b'"' => {
                let e = skip_quoted(b, i, b'"', false);
                cur.mark(i, e);
                i = e;
            }
            b'$' => {
                let e = match dollar_quote_end(sql, i) {
                    Some(e) => e,
                    // A parameter ($1) or a stray dollar sign.
                    None => {
                        let mut j = i + 1;
                        while j < n && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        j
                    }
                };
                cur.mark(i, e);
                i = e;
            }
            b'(' => {
                cur.paren += 1;
                cur.mark(i, i + 1);
                i += 1;
            }
            b')' => {
                cur.paren = cur.paren.saturating_sub(1);
                cur.mark(i, i + 1);
                i += 1;
            }
            c if is_ident_start(c) => {
                let mut j = i + 1;
                while j < n && is_ident_cont(b[j]) {
                    j += 1;
                }
                if j == i + 1 && (c == b'e' || c == b'E') && b.get(j) == Some(&b'\'') {
                    // E'...': an escape string, where a backslash escapes the next character.
                    let e = skip_quoted(b, j, b'\'', true);
                    cur.mark(i, e);
                    i = e;
                    continue;
                }
                cur.word(&b[i..j]);
                cur.mark(i, j);
                i = j;
            }
            c if c.is_ascii_digit() => {
                // A number (12, 1.5e3, 0x1F, 1_000): none of its characters matter.
                let mut j = i + 1;
                while j < n && (is_ident_cont(b[j]) || b[j] == b'.') {
                    j += 1;
                }
                cur.mark(i, j);
                i = j;
            }
            _ => {
                cur.mark(i, i + 1);
                i += 1;
            }
        }
    }
    cur.finish(b, &mut lines, &mut out);
    out
}

/// The statement being scanned.
#[derive(Default)]
struct Current {
    /// Byte offset of the first significant character, once one was seen.
    start: Option<usize>,
    /// End of the last significant token.
    end: usize,
    paren: usize,
    begin_depth: usize,
    /// psql's heuristic: for each of the first four words, its first letter if it is one of
    /// CREATE, OR, REPLACE, FUNCTION, PROCEDURE, else 0.
    words: [u8; 4],
    word_count: usize,
}

impl Current {
    fn mark(&mut self, start: usize, end: usize) {
        if self.start.is_none() {
            self.start = Some(start);
        }
        self.end = end;
    }

    fn word(&mut self, w: &[u8]) {
        let kw = |k: &str| w.eq_ignore_ascii_case(k.as_bytes());
        if self.word_count < self.words.len() {
            let tag = ["create", "or", "replace", "function", "procedure"]
                .into_iter()
                .find(|k| kw(k))
                .map_or(0, |k| k.as_bytes()[0]);
            self.words[self.word_count] = tag;
        }
        self.word_count += 1;
        let w = &self.words;
        let creates_routine = w[0] == b'c'
            && (w[1] == b'f'
                || w[1] == b'p'
                || (w[1] == b'o' && w[2] == b'r' && (w[3] == b'f' || w[3] == b'p')));
        if !creates_routine || self.paren != 0 {
            return;
        }
        if kw("begin") {
            self.begin_depth += 1;
        } else if kw("case") {
            // CASE also ends with END; it only matters inside a BEGIN.
            if self.begin_depth > 0 {
                self.begin_depth += 1;
            }
        } else if kw("end") {
            self.begin_depth = self.begin_depth.saturating_sub(1);
        }
    }

    /// Ends the statement (at a `;` or the end of the text) and resets for the next one.
    fn finish(&mut self, b: &[u8], lines: &mut LineCounter, out: &mut Vec<Span>) {
        if let Some(start) = self.start {
            out.push(Span {
                start,
                end: self.end,
                line: lines.line_at(b, start),
            });
        }
        *self = Current::default();
    }
}

/// Counts lines incrementally; positions asked for never decrease.
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    fn line_at(&mut self, b: &[u8], pos: usize) -> usize {
        self.line += b[self.pos..pos].iter().filter(|&&c| c == b'\n').count();
        self.pos = pos;
        self.line
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn memchr(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    b[from..]
        .iter()
        .position(|&c| c == needle)
        .map(|p| from + p)
}

/// `b[start]` is the opening quote; returns the offset just past the closing quote (a doubled
/// quote is an escaped quote), or the end of the text. With `backslash`, `\` escapes the next
/// byte.
fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let n = b.len();
    let mut i = start + 1;
    while i < n {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
        } else if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    n
}

/// `b[start..start + 2]` is `/*`; returns the offset just past the matching `*/` (block comments
/// nest in PostgreSQL), or the end of the text.
fn skip_block_comment(b: &[u8], start: usize) -> usize {
    let n = b.len();
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < n {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    n
}

/// If a dollar quote (`$$` or `$tag$`) opens at `sql[start]`, returns the offset just past its
/// closing delimiter (or the end of the text if it is never closed).
fn dollar_quote_end(sql: &str, start: usize) -> Option<usize> {
    let b = sql.as_bytes();
    let mut j = start + 1;
    if j < b.len() && is_ident_start(b[j]) {
        j += 1;
        while j < b.len() && (is_ident_start(b[j]) || b[j].is_ascii_digit()) {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let delim = &sql[start..=j];
    let body = j + 1;
    Some(
        sql[body..]
            .find(delim)
            .map_or(sql.len(), |p| body + p + delim.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (text, line) of every statement.
    fn st(sql: &str) -> Vec<(&str, usize)> {
        split(sql, 1)
            .iter()
            .map(|s| (s.text(sql), s.line))
            .collect()
    }

    fn texts(sql: &str) -> Vec<&str> {
        st(sql).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn simple_statements() {
        assert_eq!(texts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(texts("SELECT 1;\nSELECT 2"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(texts("  SELECT 1  ;  "), ["SELECT 1"]);
    }

    #[test]
    fn empty_and_comment_only_statements_are_dropped() {
        assert!(texts("").is_empty());
        assert!(texts("  \n\t\r\n").is_empty());
        assert!(texts(";;; ;\n;").is_empty());
        assert!(texts("-- just a comment\n/* and a block */\n;\n-- end").is_empty());
        assert_eq!(
            texts(";SELECT 1;;-- x\n;SELECT 2;;"),
            ["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn semicolon_in_single_quotes() {
        assert_eq!(
            texts("SELECT 'a;b'; SELECT 2"),
            ["SELECT 'a;b'", "SELECT 2"]
        );
        assert_eq!(
            texts("SELECT 'it''s; here'; SELECT 2"),
            ["SELECT 'it''s; here'", "SELECT 2"]
        );
        assert_eq!(
            texts("SELECT ''';'';'; SELECT 2"),
            ["SELECT ''';'';'", "SELECT 2"]
        );
        // A backslash is an ordinary character in a standard string.
        assert_eq!(
            texts(r"SELECT 'a\'; SELECT 2"),
            [r"SELECT 'a\'", "SELECT 2"]
        );
        // Prefixed standard strings.
        assert_eq!(
            texts("SELECT U&'d;', N'n;', B'1', X'f;'; SELECT 2"),
            ["SELECT U&'d;', N'n;', B'1', X'f;'", "SELECT 2"]
        );
    }

    #[test]
    fn semicolon_in_escape_strings() {
        assert_eq!(
            texts(r"SELECT E'it\'s; ok'; SELECT 2"),
            [r"SELECT E'it\'s; ok'", "SELECT 2"]
        );
        assert_eq!(
            texts(r"SELECT e'a\\'; SELECT 2"),
            [r"SELECT e'a\\'", "SELECT 2"]
        );
        assert_eq!(
            texts(r"SELECT E'a''; b'; SELECT 2"),
            [r"SELECT E'a''; b'", "SELECT 2"]
        );
        // An identifier that merely ends in e is not an E prefix: `some'...'` is not valid SQL
        // anyway, but `x = e'...'` must be an E string and `name'` a standard one.
        assert_eq!(
            texts(r"SELECT name'a\'; SELECT 2"),
            [r"SELECT name'a\'", "SELECT 2"]
        );
    }

    #[test]
    fn semicolon_in_quoted_identifier() {
        assert_eq!(
            texts(r#"CREATE TABLE "a;b" ("x"";y" int); SELECT 2"#),
            [r#"CREATE TABLE "a;b" ("x"";y" int)"#, "SELECT 2"]
        );
        assert_eq!(
            texts(r#"SELECT 1 AS "'"; SELECT ';'"#),
            [r#"SELECT 1 AS "'""#, "SELECT ';'"]
        );
    }

    #[test]
    fn semicolon_in_dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 2;\nEND\n$$;\nSELECT f();";
        let s = st(sql);
        assert_eq!(s.len(), 2);
        assert!(s[0].0.ends_with("END\n$$"));
        assert_eq!(s[1], ("SELECT f()", 7));

        let sql = "DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$; SELECT 2";
        assert_eq!(
            texts(sql),
            ["DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$", "SELECT 2"]
        );
        // The closing tag must match exactly; other tags inside are content.
        let sql = "SELECT $a$ x $b$ ; $B$ ; $a$; SELECT 2";
        assert_eq!(texts(sql), ["SELECT $a$ x $b$ ; $B$ ; $a$", "SELECT 2"]);
        // Quotes and comments inside are content.
        let sql = "SELECT $$ ' \" -- /* $$; SELECT 2";
        assert_eq!(texts(sql), ["SELECT $$ ' \" -- /* $$", "SELECT 2"]);
    }

    #[test]
    fn dollar_parameters_and_identifiers_are_not_quotes() {
        assert_eq!(
            texts("PREPARE p AS SELECT $1; SELECT $2"),
            ["PREPARE p AS SELECT $1", "SELECT $2"]
        );
        assert_eq!(
            texts("SELECT a$b; SELECT c$$d; SELECT 2"),
            ["SELECT a$b", "SELECT c$$d", "SELECT 2"]
        );
        assert_eq!(texts("SELECT $1$2; SELECT 2"), ["SELECT $1$2", "SELECT 2"]);
    }

    #[test]
    fn comments_hide_semicolons_and_quotes() {
        assert_eq!(
            texts("SELECT 1 -- no; split 'here\n, 2; SELECT 3"),
            ["SELECT 1 -- no; split 'here\n, 2", "SELECT 3"]
        );
        assert_eq!(
            texts("SELECT /* ; ' \" $$ */ 1; SELECT 2"),
            ["SELECT /* ; ' \" $$ */ 1", "SELECT 2"]
        );
        // Nested block comments.
        assert_eq!(
            texts("SELECT /* a /* b; */ still; comment */ 1; SELECT 2"),
            ["SELECT /* a /* b; */ still; comment */ 1", "SELECT 2"]
        );
        // A lone minus or slash is an operator.
        assert_eq!(
            texts("SELECT 4 - 2 / 1; SELECT -1"),
            ["SELECT 4 - 2 / 1", "SELECT -1"]
        );
    }

    #[test]
    fn leading_and_trailing_comments_are_not_part_of_the_text() {
        let sql = "-- create it\n/* really */ CREATE TABLE t (x int) -- trailing\n; -- after\n";
        assert_eq!(st(sql), [("CREATE TABLE t (x int)", 2)]);
    }

    #[test]
    fn line_numbers() {
        let sql = "\n\nCREATE INDEX CONCURRENTLY i1\n  ON t (a);\n\n-- second\n\n  CREATE INDEX CONCURRENTLY i2 ON t (b);\n/* multi\nline */ SELECT\n1;";
        assert_eq!(
            st(sql),
            [
                ("CREATE INDEX CONCURRENTLY i1\n  ON t (a)", 3),
                ("CREATE INDEX CONCURRENTLY i2 ON t (b)", 8),
                ("SELECT\n1", 10),
            ]
        );
        let spans = split(sql, 41);
        assert_eq!(
            spans.iter().map(|s| s.line).collect::<Vec<_>>(),
            [43, 48, 50]
        );
        // Two statements on one line.
        assert_eq!(
            st("\nSELECT 1; SELECT 2;"),
            [("SELECT 1", 2), ("SELECT 2", 2)]
        );
        // Newlines inside strings and dollar quotes count.
        assert_eq!(
            st("SELECT 'a\nb', $$\n\n$$; SELECT 2"),
            [("SELECT 'a\nb', $$\n\n$$", 1), ("SELECT 2", 4)]
        );
        // CRLF line endings.
        assert_eq!(
            st("SELECT 1;\r\n\r\nSELECT 2;\r\n"),
            [("SELECT 1", 1), ("SELECT 2", 3)]
        );
    }

    #[test]
    fn parentheses_protect_semicolons() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 2";
        assert_eq!(
            texts(sql),
            ["CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 2"]
        );
        // A stray closing parenthesis does not disable splitting.
        assert_eq!(texts("SELECT 1); SELECT 2"), ["SELECT 1)", "SELECT 2"]);
    }

    #[test]
    fn begin_atomic_function_bodies() {
        let sql = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nSELECT f(1);";
        let s = st(sql);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].0.starts_with("CREATE FUNCTION") && s[0].0.ends_with("END"));
        assert_eq!(s[1], ("SELECT f(1)", 6));

        let sql = "create or replace procedure p() language sql begin atomic insert into t values (1); insert into t values (2); end; select 1";
        let s = texts(sql);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[1], "select 1");

        // Outside CREATE FUNCTION/PROCEDURE, BEGIN is a transaction statement.
        assert_eq!(texts("BEGIN; SELECT 1; END;"), ["BEGIN", "SELECT 1", "END"]);
        // A plpgsql function's BEGIN is inside a dollar quote and invisible.
        let sql = "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$; SELECT 2";
        assert_eq!(texts(sql).len(), 2);
        // A `begin` column name inside parentheses does not count.
        let sql =
            "CREATE FUNCTION h() RETURNS TABLE (begin int) LANGUAGE sql AS 'SELECT 1'; SELECT 2";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn unterminated_constructs_run_to_the_end() {
        assert_eq!(texts("SELECT 'abc; SELECT 2"), ["SELECT 'abc; SELECT 2"]);
        assert_eq!(texts("SELECT $$abc; SELECT 2"), ["SELECT $$abc; SELECT 2"]);
        assert_eq!(texts("SELECT 1 /* abc; SELECT 2"), ["SELECT 1"]);
        assert_eq!(texts("SELECT \"abc; SELECT 2"), ["SELECT \"abc; SELECT 2"]);
        assert_eq!(texts(r"SELECT E'abc\"), [r"SELECT E'abc\"]);
    }

    #[test]
    fn non_ascii_text() {
        let sql = "INSERT INTO t VALUES ('héllo; wörld'); SELECT ünïcode FROM „t“; SELECT '😀'";
        assert_eq!(
            texts(sql),
            [
                "INSERT INTO t VALUES ('héllo; wörld')",
                "SELECT ünïcode FROM „t“",
                "SELECT '😀'"
            ]
        );
    }
}
