//! SQL text as PostgreSQL sees it: splitting a script section into statements ([`split()`]),
//! and mapping the character position PostgreSQL reports in an error back to a line of the
//! script ([`line_of_position`]). Every error that names a script line goes through the one
//! function here, so that they all agree.

pub mod split;

pub use split::{split, Span};

/// The file line of the character at 1-based character `position` of the statement `sql`, as
/// PostgreSQL reports it in an error for the query `sql`. `line` is the file line of the
/// statement's first token: whitespace and comments (`--`, nested `/* */`) before that token
/// are skipped, then the line breaks up to the position are counted. Position 0 (PostgreSQL
/// gave none) or a position within that leading text gives `line`; positions past the end give
/// the last line. Positions count characters, not bytes.
pub fn line_of_position(sql: &str, line: usize, position: usize) -> usize {
    let text: Vec<char> = sql.chars().collect();
    let start = leading_trivia(&text);
    let upto = position.saturating_sub(1).min(text.len());
    if upto <= start {
        return line;
    }
    line + text[start..upto].iter().filter(|&&c| c == '\n').count()
}

/// The number of characters of whitespace and comments before the first token.
fn leading_trivia(t: &[char]) -> usize {
    let mut i = 0;
    loop {
        while i < t.len() && t[i].is_whitespace() {
            i += 1;
        }
        if i + 1 < t.len() && t[i] == '-' && t[i + 1] == '-' {
            while i < t.len() && t[i] != '\n' {
                i += 1;
            }
        } else if i + 1 < t.len() && t[i] == '/' && t[i + 1] == '*' {
            let mut depth = 0usize;
            while i + 1 < t.len() {
                if t[i] == '/' && t[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if t[i] == '*' && t[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_lines() {
        let sql = "SELECT 1,\n  é,\n  oops";
        assert_eq!(line_of_position(sql, 10, 0), 10);
        assert_eq!(line_of_position(sql, 10, 1), 10);
        assert_eq!(line_of_position(sql, 10, 10), 10); // the newline itself
        assert_eq!(line_of_position(sql, 10, 11), 11);
        // Positions are in characters, not bytes: "  é,\n" is 5 characters.
        assert_eq!(line_of_position(sql, 10, 15), 11);
        assert_eq!(line_of_position(sql, 10, 16), 12);
        assert_eq!(line_of_position(sql, 10, 1000), 12);
    }

    #[test]
    fn leading_comments_and_whitespace_are_skipped() {
        // As `SqlFailure::line_in` counts: `line` is the line of "CREATE".
        let sql = "-- lead\nCREATE TABLE t (\n  a int,\n  b nope\n)";
        let body = "CREATE TABLE t (\n  a int,\n  b ";
        let pos = "-- lead\n".chars().count() + body.chars().count() + 1;
        assert_eq!(line_of_position(sql, 11, pos), 13);
        assert_eq!(line_of_position(sql, 11, 0), 11);
        // A position inside the leading comment, or on the first token.
        assert_eq!(line_of_position(sql, 11, 3), 11);
        assert_eq!(line_of_position(sql, 11, 9), 11);

        let sql = "\n\n  /* a /* nested */\n comment */ -- and more\n\tSELECT\n1/0";
        let select = sql.find("SELECT").unwrap();
        let zero = sql.chars().count() - 2;
        assert_eq!(line_of_position(sql, 7, select + 1), 7);
        assert_eq!(line_of_position(sql, 7, zero), 8);
        assert_eq!(line_of_position(sql, 7, 10_000), 8);
        // Only comments: everything is leading text.
        assert_eq!(line_of_position("-- x\n/* y */", 3, 8), 3);
        // Unterminated block comment.
        assert_eq!(line_of_position("/* x\n y", 3, 7), 3);
    }

    #[test]
    fn split_statements_keep_their_lines() {
        let sql = "\n-- one\nSELECT 1;\n\nSELECT\n  nope;";
        let spans = split(sql, 20);
        let second = spans[1];
        assert_eq!(second.line, 24);
        let text = second.text(sql);
        let nope = text.find("nope").unwrap() + 1;
        assert_eq!(line_of_position(text, second.line, nope), 25);
    }
}
