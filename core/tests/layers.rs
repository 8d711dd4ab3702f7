//! The layers `core/src/lib.rs` lists are the ones the code has: this test reads the crate's
//! sources, collects every `use` and every `crate::` / `super::` / `self::` path outside test
//! code, maps each module to its place in lib.rs's list, and fails on
//!
//! - a module the list does not place,
//! - an import that runs upward (a module using one listed in a layer below its own),
//! - a cycle between the listed modules (even inside one layer),
//!
//! naming the files and lines that make each. `make lint` runs it (`cargo test -p retort --test
//! layers`), and so does every `cargo test`.
//!
//! The list is lib.rs's module documentation: each `//! - ` item is a layer, top (used by all
//! below) to bottom, and its members are the modules it links, e.g. [`db`] or
//! [`mod@schema::introspect`]. A file belongs to the member that is the longest prefix of its module
//! path. Building a module graph this way needs no compiler and no extra tool (cargo-modules
//! builds rust-analyzer, a long compile): the sources are simple enough to read with a small
//! tokenizer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges that exist today and are known to be wrong, each removed by a change under way. The
/// test fails when one of them no longer exists, so that it is deleted from here with the change
/// that removes it.
/// None today: the list is empty, and every import follows the layers.
const ALLOWED: &[Allowed] = &[];

struct Allowed {
    /// Source file, relative to core/src.
    from_file: &'static str,
    /// The module the reference resolves to (a prefix of the full path).
    to_module: &'static str,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

// ---------------------------------------------------------------------------------------------
// Reading the sources

/// Removes comments, string and character literals, keeping line breaks (so line numbers hold).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let keep_newlines = |s: &[char], out: &mut String| {
        for ch in s {
            if *ch == '\n' {
                out.push('\n');
            }
        }
    };
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let start = i;
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&c[start..i.min(c.len())], &mut out);
            out.push(' ');
        } else if (c[i] == 'r' && !prev_ident && matches!(c.get(i + 1), Some('"') | Some('#')))
            || (c[i] == 'b'
                && !prev_ident
                && c.get(i + 1) == Some(&'r')
                && matches!(c.get(i + 2), Some('"') | Some('#')))
        {
            // raw string r"..", r#".."#, br".."
            let start = i;
            i += if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            if c.get(i) != Some(&'"') {
                // `r#ident` (a raw identifier): keep as is
                out.extend(&c[start..i]);
                continue;
            }
            i += 1;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            keep_newlines(&c[start..i.min(c.len())], &mut out);
            out.push_str("\"\"");
        } else if c[i] == '"' {
            let start = i;
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            keep_newlines(&c[start..i.min(c.len())], &mut out);
            out.push_str("\"\"");
        } else if c[i] == '\'' {
            // a character literal ('x', '\n', '\u{..}') or a lifetime ('a)
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // ::
    Punct(char),
}

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            toks.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            toks.push((Tok::Path, line));
            i += 2;
        } else {
            toks.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    toks
}

/// Drops every item marked `#[cfg(test)]` (test modules, test-only helpers).
fn drop_test_items(toks: Vec<(Tok, usize)>) -> Vec<(Tok, usize)> {
    let is = |t: &[(Tok, usize)], i: usize, want: &[&str]| {
        want.iter().enumerate().all(|(k, w)| match t.get(i + k) {
            Some((Tok::Ident(s), _)) => s == w,
            Some((Tok::Punct(p), _)) => w.len() == 1 && w.starts_with(*p),
            _ => false,
        })
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if is(&toks, i, &["#", "[", "cfg", "(", "test", ")", "]"]) {
            i += 7;
            // further attributes, then the item up to its `;` or its closing brace
            let mut depth = 0usize;
            while i < toks.len() {
                match &toks[i].0 {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Tok::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    Tok::Punct('[') if depth == 0 => {
                        // an attribute's brackets may hold `;` (e.g. `#[doc = ..]`): skip them
                        let mut d = 0usize;
                        while i < toks.len() {
                            match toks[i].0 {
                                Tok::Punct('[') => d += 1,
                                Tok::Punct(']') => {
                                    d -= 1;
                                    if d == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            i += 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

/// One source file of the crate, as compiled outside tests.
struct File {
    /// Relative to core/src, e.g. `exec/online.rs`.
    rel: String,
    /// Its module path, e.g. `["exec", "online"]`; empty for lib.rs.
    module: Vec<String>,
    toks: Vec<(Tok, usize)>,
}

/// Every file reachable from lib.rs through `mod` declarations that are not `#[cfg(test)]`.
fn read_crate() -> Vec<File> {
    let root = src_dir();
    let mut files = Vec::new();
    let mut todo = vec![(root.join("lib.rs"), Vec::<String>::new())];
    while let Some((path, module)) = todo.pop() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let toks = drop_test_items(tokenize(&strip(&text)));
        let dir = match path.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs") | Some("mod.rs") => path.parent().unwrap().to_path_buf(),
            _ => path.with_extension(""),
        };
        for w in toks.windows(3) {
            if let [(Tok::Ident(m), _), (Tok::Ident(name), _), (Tok::Punct(';'), _)] = w {
                if m == "mod" {
                    let flat = dir.join(format!("{name}.rs"));
                    let child = if flat.exists() {
                        flat
                    } else {
                        dir.join(name).join("mod.rs")
                    };
                    let mut m = module.clone();
                    m.push(name.clone());
                    todo.push((child, m));
                }
            }
        }
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        files.push(File { rel, module, toks });
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

/// A path the file names: its segments as written and the line.
struct Reference {
    segments: Vec<String>,
    line: usize,
    in_use: bool,
}

/// Every `use` tree (expanded) and every other path that starts with `crate`, `super` or `self`.
fn references(toks: &[(Tok, usize)]) -> Vec<Reference> {
    let mut refs = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Ident(kw) if kw == "use" => {
                let mut j = i + 1;
                let mut prefix = Vec::new();
                use_tree(toks, &mut j, &mut prefix, &mut refs);
                i = j;
            }
            Tok::Ident(first)
                if (first == "crate" || first == "super" || first == "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
                    && !matches!(toks.get(i.wrapping_sub(1)).map(|t| &t.0), Some(Tok::Path)) =>
            {
                let line = toks[i].1;
                let mut segments = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                    match toks.get(j + 1).map(|t| &t.0) {
                        Some(Tok::Ident(s)) => {
                            segments.push(s.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                refs.push(Reference {
                    segments,
                    line,
                    in_use: false,
                });
                i = j;
            }
            _ => i += 1,
        }
    }
    refs
}

/// Reads one use tree at `toks[*j]`, pushing every full path it names.
fn use_tree(
    toks: &[(Tok, usize)],
    j: &mut usize,
    prefix: &mut Vec<String>,
    refs: &mut Vec<Reference>,
) {
    let depth = prefix.len();
    loop {
        match toks.get(*j).map(|t| t.0.clone()) {
            Some(Tok::Ident(s)) if s == "as" => {
                *j += 2; // `as name`
            }
            Some(Tok::Ident(s)) if s == "self" && !prefix.is_empty() => {
                // `a::{self, ..}` names `a`
                refs.push(Reference {
                    segments: prefix.clone(),
                    line: toks[*j].1,
                    in_use: true,
                });
                *j += 1;
            }
            Some(Tok::Ident(s)) => {
                prefix.push(s);
                *j += 1;
            }
            Some(Tok::Path) => *j += 1,
            Some(Tok::Punct('{')) => {
                *j += 1;
                loop {
                    use_tree(toks, j, prefix, refs);
                    match toks.get(*j).map(|t| t.0.clone()) {
                        Some(Tok::Punct(',')) => *j += 1,
                        Some(Tok::Punct('}')) => {
                            *j += 1;
                            break;
                        }
                        _ => break,
                    }
                    if toks.get(*j).map(|t| &t.0) == Some(&Tok::Punct('}')) {
                        *j += 1;
                        break;
                    }
                }
                prefix.truncate(depth);
                return;
            }
            Some(Tok::Punct('*')) => *j += 1,
            _ => {
                // `,`, `}` or `;`: this branch of the tree ends
                if prefix.len() > depth || depth > 0 {
                    let line = toks.get(*j).map(|t| t.1).unwrap_or(0);
                    if prefix.len() > depth {
                        refs.push(Reference {
                            segments: prefix.clone(),
                            line,
                            in_use: true,
                        });
                    }
                }
                prefix.truncate(depth);
                if toks.get(*j).map(|t| &t.0) == Some(&Tok::Punct(';')) && depth == 0 {
                    *j += 1;
                }
                return;
            }
        }
    }
}

/// The module path a reference resolves to (segments past the module name items), or None for
/// another crate's path.
fn resolve(r: &Reference, from: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut segs = r.segments.iter().peekable();
    let mut base: Vec<String> = match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
            Vec::new()
        }
        Some("super") => {
            let mut b = from.to_vec();
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                segs.next();
                b.pop();
            }
            b
        }
        Some("self") => {
            segs.next();
            from.to_vec()
        }
        Some(first) if r.in_use => {
            // `use child::Item` (a path relative to this module) or another crate
            let mut m = from.to_vec();
            m.push(first.to_string());
            if !modules.contains(&m) {
                return None;
            }
            from.to_vec()
        }
        _ => return None,
    };
    base.extend(segs.cloned());
    Some(base)
}

// ---------------------------------------------------------------------------------------------
// The layer list

/// lib.rs's layers, top first: each one's name (its text up to the colon) and members.
fn layers() -> Vec<(String, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let mut layers: Vec<(String, String)> = Vec::new();
    let mut in_item = false;
    for line in text.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        if let Some(item) = doc.strip_prefix(" - ") {
            let name = item.split(':').next().unwrap_or("").trim().to_string();
            layers.push((name, item.to_string()));
            in_item = true;
        } else if in_item && doc.starts_with("   ") {
            layers.last_mut().unwrap().1.push_str(doc);
        } else {
            in_item = false;
        }
    }
    layers
        .into_iter()
        .map(|(name, text)| {
            let members = text
                .split("[`")
                .skip(1)
                .filter_map(|s| s.split_once("`]").map(|(m, _)| m))
                .map(|m| m.trim_start_matches("mod@"))
                .map(|m| m.split("::").map(str::to_string).collect())
                .collect();
            (name, members)
        })
        .collect()
}

/// The layer member a module belongs to: the longest member that is a prefix of its path.
fn member_of<'a>(
    module: &[String],
    members: &'a [(usize, Vec<String>)],
) -> Option<&'a (usize, Vec<String>)> {
    members
        .iter()
        .filter(|(_, m)| module.starts_with(m))
        .max_by_key(|(_, m)| m.len())
}

// ---------------------------------------------------------------------------------------------
// The check

struct Edge {
    from_file: String,
    line: usize,
    target: String,
}

struct Graph {
    layer_names: Vec<String>,
    members: Vec<(usize, Vec<String>)>,
    unplaced: Vec<String>,
    /// member -> member -> the references that make the edge
    edges: BTreeMap<String, BTreeMap<String, Vec<Edge>>>,
}

fn graph() -> Graph {
    let layers = layers();
    let layer_names = layers.iter().map(|(n, _)| n.clone()).collect();
    let members: Vec<(usize, Vec<String>)> = layers
        .into_iter()
        .enumerate()
        .flat_map(|(i, (_, ms))| ms.into_iter().map(move |m| (i, m)))
        .collect();
    let files = read_crate();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut unplaced = Vec::new();
    let mut edges: BTreeMap<String, BTreeMap<String, Vec<Edge>>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        let Some((_, from)) = member_of(&f.module, &members) else {
            unplaced.push(f.rel.clone());
            continue;
        };
        for r in references(&f.toks) {
            let Some(path) = resolve(&r, &f.module, &modules) else {
                continue;
            };
            let Some((_, to)) = member_of(&path, &members) else {
                continue; // the crate root's re-exports (`crate::Error`)
            };
            if to != from {
                edges
                    .entry(from.join("::"))
                    .or_default()
                    .entry(to.join("::"))
                    .or_default()
                    .push(Edge {
                        from_file: f.rel.clone(),
                        line: r.line,
                        target: path.join("::"),
                    });
            }
        }
    }
    Graph {
        layer_names,
        members,
        unplaced,
        edges,
    }
}

fn allowed(e: &Edge) -> bool {
    ALLOWED.iter().any(|a| {
        a.from_file == e.from_file
            && (e.target == a.to_module || e.target.starts_with(&format!("{}::", a.to_module)))
    })
}

fn show(edges: &[Edge]) -> String {
    let mut seen = BTreeSet::new();
    edges
        .iter()
        .filter(|e| seen.insert((e.from_file.clone(), e.line)))
        .map(|e| {
            format!(
                "      core/src/{}:{} uses {}",
                e.from_file, e.line, e.target
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tarjan's strongly connected components of the member graph, each with more than one member.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        let n = t.index.len();
        t.index.insert(v.to_string(), n);
        t.low.insert(v.to_string(), n);
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let next: Vec<String> =
            t.g.edges
                .get(v)
                .map(|m| {
                    m.iter()
                        .filter(|(_, es)| es.iter().any(|e| !allowed(e)))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
        for w in next {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for (_, m) in &g.members {
        let k = m.join("::");
        if !t.index.contains_key(&k) {
            visit(&mut t, &k);
        }
    }
    t.out
}

#[test]
fn every_module_is_in_a_layer() {
    let g = graph();
    assert!(
        g.layer_names.len() >= 3 && g.members.len() >= 10,
        "lib.rs's layer list was not found (its `//! - ` items): {:?}",
        g.layer_names
    );
    assert!(
        g.unplaced.is_empty(),
        "these files belong to no module of lib.rs's layer list; add their module to a layer \
         there:\n  {}",
        g.unplaced.join("\n  ")
    );
}

#[test]
fn no_import_runs_upward() {
    let g = graph();
    let layer = |m: &str| {
        g.members
            .iter()
            .find(|(_, mm)| mm.join("::") == m)
            .map(|(l, _)| *l)
            .unwrap()
    };
    let mut problems = Vec::new();
    for (from, tos) in &g.edges {
        for (to, es) in tos {
            let es: Vec<Edge> = es
                .iter()
                .filter(|e| !allowed(e))
                .map(|e| Edge {
                    from_file: e.from_file.clone(),
                    line: e.line,
                    target: e.target.clone(),
                })
                .collect();
            if layer(to) > layer(from) && !es.is_empty() {
                problems.push(format!(
                    "  {from} ({}) uses {to} ({}), a layer below it:\n{}",
                    g.layer_names[layer(from)],
                    g.layer_names[layer(to)],
                    show(&es)
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that run upward against lib.rs's layers (each layer uses only the ones above \
         it):\n{}",
        problems.join("\n")
    );
}

/// The edges `from -> to` makes, without the allowed ones.
fn live_edges<'a>(g: &'a Graph, from: &str, to: &str) -> Vec<&'a Edge> {
    g.edges
        .get(from)
        .and_then(|m| m.get(to))
        .map(|es| es.iter().filter(|e| !allowed(e)).collect())
        .unwrap_or_default()
}

/// A shortest cycle through `start` inside `comp` (breadth first), as its members in order.
fn shortest_cycle(g: &Graph, comp: &[String], start: &str) -> Vec<String> {
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(v) = queue.pop_front() {
        for w in comp {
            if live_edges(g, &v, w).is_empty() {
                continue;
            }
            if w == start {
                let mut path = vec![v.clone()];
                let mut at = v.clone();
                while at != start {
                    at = parent[&at].clone();
                    path.push(at.clone());
                }
                path.reverse();
                return path;
            }
            if !parent.contains_key(w) {
                parent.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    vec![start.to_string()]
}

#[test]
fn no_import_cycle() {
    let g = graph();
    let mut problems = Vec::new();
    for comp in cycles(&g) {
        let cycle = shortest_cycle(&g, &comp, &comp[0]);
        let mut text = format!(
            "  {} form a cycle, e.g. {} -> {}:",
            comp.join(", "),
            cycle.join(" -> "),
            cycle[0]
        );
        for (i, from) in cycle.iter().enumerate() {
            let to = &cycle[(i + 1) % cycle.len()];
            let es: Vec<Edge> = live_edges(&g, from, to)
                .into_iter()
                .map(|e| Edge {
                    from_file: e.from_file.clone(),
                    line: e.line,
                    target: e.target.clone(),
                })
                .collect();
            text.push_str(&format!("\n    {from} -> {to}:\n{}", show(&es)));
        }
        problems.push(text);
    }
    assert!(
        problems.is_empty(),
        "import cycles between core's modules (break each by moving what the upper module \
         takes from the lower one up, or the user down):\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_allowed_edge_still_exists() {
    let g = graph();
    for a in ALLOWED {
        let exists = g
            .edges
            .values()
            .flat_map(|m| m.values())
            .flatten()
            .any(|e| allowed(e) && e.from_file == a.from_file);
        assert!(
            exists,
            "core/src/{} no longer uses {}: delete this edge from ALLOWED in core/tests/layers.rs",
            a.from_file, a.to_module
        );
    }
}

#[test]
fn the_reader_finds_use_trees_and_paths_and_skips_comments_strings_and_tests() {
    let src = r#"
        //! [`crate::output`] in a doc comment is no import
        use crate::{config::LockMode, db::{self, lease::Lease}};
        use super::report::RunReport;
        use online::PgExecutor;
        use std::fmt;
        fn f() -> String {
            let _ = crate::words::plural(2);
            /* crate::commands::check */
            "crate::fleet in a string".to_string()
        }
        #[cfg(test)]
        mod tests {
            use crate::commands::lint;
        }
    "#;
    let toks = drop_test_items(tokenize(&strip(src)));
    let module = vec!["exec".to_string(), "run".to_string()];
    let modules: BTreeSet<Vec<String>> = [vec![
        "exec".to_string(),
        "run".to_string(),
        "online".to_string(),
    ]]
    .into_iter()
    .collect();
    let found: Vec<String> = references(&toks)
        .iter()
        .filter_map(|r| resolve(r, &module, &modules))
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "config::LockMode",
            "db",
            "db::lease::Lease",
            "exec::report::RunReport",
            "exec::run::online::PgExecutor",
            "words::plural",
        ]
    );
}

#[test]
fn print_graph() {
    if std::env::var_os("LAYERS_PRINT").is_none() {
        return;
    }
    let g = graph();
    for (from, tos) in &g.edges {
        for (to, es) in tos {
            println!("{from} -> {to}\n{}", show(es));
        }
    }
}
