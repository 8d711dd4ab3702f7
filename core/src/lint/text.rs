//! Byte offsets in a section's SQL to 0-based section lines and 1-based character columns, and
//! names as PostgreSQL folds them.

/// The starts of the lines of one text.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// (0-based line, 1-based column in characters) of byte `offset`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line, col + 1)
    }

    /// The 0-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.position(offset).0
    }

    /// The text of 0-based line `line`, without its line break.
    pub fn line_text(&self, line: usize) -> &'a str {
        let start = self.starts[line];
        let end = self
            .starts
            .get(line + 1)
            .map(|&e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }

    /// The byte offset where 0-based line `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.starts[line]
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// A possibly qualified name as PostgreSQL resolves it with the default search path:
/// unquoted parts are folded to lower case, quotes are removed, and `public.` is dropped (so
/// `Public.Chunks`, `chunks` and `"chunks"` are the same table).
pub fn normalize_name(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
            }
            '.' if !quoted => {
                parts.push(std::mem::take(&mut cur));
            }
            c if quoted => cur.push(c),
            c if c.is_whitespace() => {}
            c => cur.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(cur);
    if parts.len() > 1 && parts[0] == "public" {
        parts.remove(0);
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_lines_and_character_columns() {
        let t = "SELECT 1;\n  é; x\nlast";
        let ix = LineIndex::new(t);
        assert_eq!(ix.position(0), (0, 1));
        assert_eq!(ix.position(t.find('x').unwrap()), (1, 6));
        assert_eq!(ix.position(t.find("last").unwrap()), (2, 1));
        assert_eq!(ix.line_text(1), "  é; x");
        assert_eq!(ix.position(10_000), (2, 5));
    }

    #[test]
    fn names_fold_like_postgresql() {
        assert_eq!(normalize_name("Public.Chunks"), "chunks");
        assert_eq!(normalize_name("\"Chunks\""), "Chunks");
        assert_eq!(normalize_name("app.\"My\"\"T\""), "app.My\"T");
        assert_eq!(normalize_name("chunks"), "chunks");
    }
}
