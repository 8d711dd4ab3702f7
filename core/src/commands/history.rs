//! Text for `migrate-history`, `--heads`, `--branches`, `--show` and `migrate-current`, in
//! Alembic's formats, line for line. Pure functions: each returns the whole
//! output, every line ending in `\n`, ready for `print!`.
//!
//! Tags follow Alembic: in one-line formats `(head)` marks a head nothing depends on and
//! `(effective head)` a head that something depends on; `(branchpoint)` is more than one child
//! by `down_revision`, `(mergepoint)` more than one parent. retort adds `(program)` to a
//! revision with a program step (`-- run:`), and a `Program:` line per step to its verbose
//! block. A verbose block is
//!
//! ```text
//! Rev: <id> (head) (branchpoint) (mergepoint) (current)
//! Parent: <id> | Merges: <a>, <b>
//! Also depends on: <d>
//! Branches into: <x>, <y>
//! Branch names: <label>
//! Path: <file>
//! Program: up: <command>
//!
//!     <message, indented by 4 spaces>
//!
//! ```

use std::collections::HashSet;

use crate::graph::{RevisionGraph, RevisionNode, Tags, Target};

/// `migrate-history`: one line (or one verbose block) per revision of `revs`, in the order
/// given (newest first from [`RevisionGraph::history_range`]). With `indicate_current`, the
/// revisions in `current` (the version table's rows) are tagged `(current)`.
///
/// ```text
/// 3c4d5e6f7081, 4d5e6f708192 -> 5e6f708192a3 (head) (mergepoint), merge orders and posts
/// 1a2b3c4d5e6f -> 2b3c4d5e6f70 (branchpoint), add email
/// <base> -> 1a2b3c4d5e6f, create users
/// ```
pub fn format_history(
    graph: &RevisionGraph,
    revs: &[String],
    verbose: bool,
    current: &[String],
    indicate_current: bool,
) -> String {
    let current: HashSet<&str> = current.iter().map(String::as_str).collect();
    let mut out = String::new();
    if !verbose {
        // one line of about 40 bytes a revision, written in place (10,000 of them in a
        // long history: no string of its own per line)
        out.reserve(revs.len() * 48);
    }
    for id in revs {
        let Some((node, tags)) = graph.tagged(id) else {
            continue;
        };
        let is_current = indicate_current && current.contains(id.as_str());
        if verbose {
            out.push_str(&log_entry(graph, node, is_current));
        } else {
            let opts = LineOpts {
                branches: true,
                doc: true,
                parents: true,
                tree: true,
                current: is_current,
            };
            push_line(&mut out, node, tags, opts);
        }
        out.push('\n');
    }
    out
}

/// `migrate-history --branches`: each branch point (newest first) with its children aligned
/// under it, and a blank line after each block.
///
/// ```text
/// 2b3c4d5e6f70 (branchpoint)
///              -> 3c4d5e6f7081
///              -> 4d5e6f708192
/// ```
pub fn format_branches(graph: &RevisionGraph) -> String {
    let mut out = String::new();
    for id in graph.history_range(None, &[]).unwrap_or_default() {
        if !graph.is_branch_point(&id) {
            continue;
        }
        let Some(node) = graph.get(&id) else { continue };
        let opts = LineOpts {
            branches: true,
            doc: false,
            parents: false,
            tree: true,
            current: false,
        };
        out.push_str(&one_line(graph, node, opts));
        out.push('\n');
        let pad = " ".repeat(id.chars().count());
        for child in graph.children(&id) {
            if let Some(c) = graph.get(&child) {
                out.push_str(&format!("{pad} -> {}\n", one_line(graph, c, opts)));
            }
        }
        out.push('\n');
    }
    out
}

/// `migrate-history --heads`: one line per script head, `5e6f708192a3 (mylabel) (head)`, or a
/// verbose block each.
pub fn format_heads(graph: &RevisionGraph, verbose: bool) -> String {
    let mut out = String::new();
    for id in graph.heads() {
        let Some(node) = graph.get(&id) else { continue };
        if verbose {
            out.push_str(&log_entry(graph, node, false));
        } else {
            let opts = LineOpts {
                branches: true,
                doc: false,
                parents: false,
                tree: false,
                current: false,
            };
            out.push_str(&one_line(graph, node, opts));
        }
        out.push('\n');
    }
    out
}

/// `migrate-history --show REV`: the verbose block of one revision (`id` must be an exact id,
/// see [`RevisionGraph::resolve`]; empty for an unknown id).
pub fn format_show(graph: &RevisionGraph, id: &str) -> String {
    match graph.get(id) {
        Some(node) => format!("{}\n", log_entry(graph, node, false)),
        None => String::new(),
    }
}

/// `migrate-current`: one line per version-table row, `4d5e6f708192 (head)` (`(head)` only if
/// it is a script head), plus a line `b1c2d3e4f5a6 (effective head)` for each script head that
/// is applied only through `depends_on`; `(branchpoint)` / `(mergepoint)` as in Alembic.
/// Lines are in `nodes()` order; nothing for an empty database. Verbose: a block each.
pub fn format_current(graph: &RevisionGraph, current: &[String], verbose: bool) -> String {
    let rows: HashSet<&str> = current.iter().map(String::as_str).collect();
    let effective = graph.effective_heads(current);
    let effective: HashSet<&str> = effective.iter().map(String::as_str).collect();
    let mut out = String::new();
    for node in graph.nodes() {
        let is_row = rows.contains(node.id.as_str());
        let is_effective = effective.contains(node.id.as_str());
        if !is_row && !is_effective {
            continue;
        }
        if verbose {
            out.push_str(&log_entry(graph, node, false));
        } else {
            out.push_str(&node.id);
            if is_row && graph.is_head(&node.id) {
                out.push_str(" (head)");
            }
            if is_effective {
                out.push_str(" (effective head)");
            }
            out.push_str(&tree_tags(graph, node));
        }
        out.push('\n');
    }
    // Rows no script has (`check_known` normally stops the command before this).
    for id in current.iter().filter(|c| graph.get(c).is_none()) {
        out.push_str(id);
        out.push('\n');
    }
    out
}

/// Whether the database (version-table rows `current`) is at the scripts' heads: upgrading to
/// `heads` has nothing to do. A head applied only through another revision's `depends_on` counts
/// as reached. False when `current` names a revision no script has.
pub fn at_heads(graph: &RevisionGraph, current: &[String]) -> bool {
    graph
        .upgrade_plan(current, &Target::Heads)
        .is_ok_and(|plan| plan.is_empty())
}

#[derive(Debug, Clone, Copy)]
struct LineOpts {
    branches: bool,
    doc: bool,
    parents: bool,
    tree: bool,
    current: bool,
}

/// Alembic's `Script._head_only` (without the trailing newline).
fn one_line(graph: &RevisionGraph, node: &RevisionNode, o: LineOpts) -> String {
    let mut text = String::new();
    if let Some((_, tags)) = graph.tagged(&node.id) {
        push_line(&mut text, node, tags, o);
    }
    text
}

/// [`one_line`], appended to `out`.
fn push_line(out: &mut String, node: &RevisionNode, tags: Tags<'_>, o: LineOpts) {
    if o.parents {
        push_down(out, node);
        if !node.depends_on.is_empty() {
            out.push_str(" (");
            push_joined(out, node.depends_on.iter().map(String::as_str));
            out.push(')');
        }
        out.push_str(" -> ");
    }
    out.push_str(&node.id);
    if o.branches && tags.has_labels() {
        out.push_str(" (");
        push_joined(out, tags.labels());
        out.push(')');
    }
    if tags.real_head {
        out.push_str(" (head)");
    } else if tags.head {
        out.push_str(" (effective head)");
    }
    if o.current {
        out.push_str(" (current)");
    }
    if o.tree {
        push_tree_tags(out, tags);
        if !node.programs.is_empty() {
            out.push_str(" (program)");
        }
        if node.contract {
            out.push_str(" (contract)");
        }
    }
    if o.doc {
        let doc = doc(&node.message);
        if !doc.is_empty() {
            out.push_str(", ");
            out.push_str(doc);
        }
    }
}

/// `a, b, c`.
fn push_joined<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    for (k, item) in items.enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
}

/// [`format_down`], appended to `out`.
fn push_down(out: &mut String, node: &RevisionNode) {
    if node.down_revisions.is_empty() {
        out.push_str("<base>");
    } else {
        push_joined(out, node.down_revisions.iter().map(String::as_str));
    }
}

fn push_tree_tags(out: &mut String, tags: Tags<'_>) {
    if tags.branch_point {
        out.push_str(" (branchpoint)");
    }
    if tags.merge_point {
        out.push_str(" (mergepoint)");
    }
}

fn tree_tags(graph: &RevisionGraph, node: &RevisionNode) -> String {
    let mut s = String::new();
    if graph.is_branch_point(&node.id) {
        s.push_str(" (branchpoint)");
    }
    if graph.is_merge_point(&node.id) {
        s.push_str(" (mergepoint)");
    }
    s
}

/// Alembic's `Script.log_entry`: ends with the indented message and a newline.
fn log_entry(graph: &RevisionGraph, node: &RevisionNode, current: bool) -> String {
    let id = &node.id;
    let mut e = format!("Rev: {id}");
    if graph.is_head(id) {
        e.push_str(" (head)");
    }
    e.push_str(&tree_tags(graph, node));
    if current {
        e.push_str(" (current)");
    }
    e.push('\n');
    if graph.is_merge_point(id) {
        e.push_str(&format!("Merges: {}\n", format_down(node)));
    } else {
        e.push_str(&format!("Parent: {}\n", format_down(node)));
    }
    if !node.depends_on.is_empty() {
        e.push_str(&format!(
            "Also depends on: {}\n",
            node.depends_on.join(", ")
        ));
    }
    if graph.is_branch_point(id) {
        e.push_str(&format!(
            "Branches into: {}\n",
            graph.children(id).join(", ")
        ));
    }
    let labels = graph.branch_labels_of(id);
    if !labels.is_empty() {
        e.push_str(&format!("Branch names: {}\n", labels.join(", ")));
    }
    e.push_str(&format!("Path: {}\n", node.source));
    for p in &node.programs {
        e.push_str(&format!("Program: {p}\n"));
    }
    // Blank lines stay empty (Alembic indents them too, leaving trailing blanks).
    let body: Vec<String> = node
        .message
        .trim()
        .lines()
        .map(|l| match l.trim_end() {
            "" => String::new(),
            l => format!("    {l}"),
        })
        .collect();
    e.push_str(&format!("\n{}\n", body.join("\n")));
    e
}

fn format_down(node: &RevisionNode) -> String {
    if node.down_revisions.is_empty() {
        "<base>".to_string()
    } else {
        node.down_revisions.join(", ")
    }
}

/// The message's first paragraph (Alembic's `Script.doc`).
fn doc(message: &str) -> &str {
    let m = message.trim();
    // a byte search: a short message needs no substring searcher
    match m.as_bytes().windows(2).position(|w| w == b"\n\n") {
        Some(end) => &m[..end],
        None => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1a2b3c4d5e6f";
    const B: &str = "2b3c4d5e6f70";
    const C: &str = "3c4d5e6f7081";
    const D: &str = "4d5e6f708192";
    const E: &str = "5e6f708192a3";

    fn node(
        id: &str,
        down: &[&str],
        deps: &[&str],
        labels: &[&str],
        message: &str,
    ) -> RevisionNode {
        RevisionNode {
            id: id.to_string(),
            down_revisions: down.iter().map(|s| s.to_string()).collect(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            branch_labels: labels.iter().map(|s| s.to_string()).collect(),
            message: message.to_string(),
            source: format!("migrations/versions/{id}.sql"),
            programs: Vec::new(),
            contract: false,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn doc_graph() -> RevisionGraph {
        RevisionGraph::new(vec![
            node(A, &[], &[], &[], "create users"),
            node(B, &[A], &[], &[], "add email"),
            node(C, &[B], &[], &[], "add orders"),
            node(D, &[B], &[], &[], "add posts"),
            node(E, &[C, D], &[], &[], "merge orders and posts"),
        ])
        .unwrap()
    }

    /// a -> b [feat] ; a -> c -> d, d depends_on b.
    fn deps_graph() -> RevisionGraph {
        RevisionGraph::new(vec![
            node("a", &[], &[], &[], "root"),
            node(
                "b",
                &["a"],
                &[],
                &["feat"],
                "feature\n\nwith a longer\nexplanation",
            ),
            node("c", &["a"], &[], &[], "main line"),
            node("d", &["c"], &["b"], &[], "needs the feature"),
        ])
        .unwrap()
    }

    fn all(g: &RevisionGraph) -> Vec<String> {
        g.history_range(None, &[]).unwrap()
    }

    #[test]
    fn history_lines_match_the_doc() {
        let g = doc_graph();
        let expected = "\
3c4d5e6f7081, 4d5e6f708192 -> 5e6f708192a3 (head) (mergepoint), merge orders and posts
2b3c4d5e6f70 -> 3c4d5e6f7081, add orders
2b3c4d5e6f70 -> 4d5e6f708192, add posts
1a2b3c4d5e6f -> 2b3c4d5e6f70 (branchpoint), add email
<base> -> 1a2b3c4d5e6f, create users
";
        assert_eq!(format_history(&g, &all(&g), false, &[], false), expected);
        // (current) only with indicate_current
        let current = s(&[C, D]);
        assert_eq!(
            format_history(&g, &all(&g), false, &current, false),
            expected
        );
        let expected = "\
3c4d5e6f7081, 4d5e6f708192 -> 5e6f708192a3 (head) (mergepoint), merge orders and posts
2b3c4d5e6f70 -> 3c4d5e6f7081 (current), add orders
2b3c4d5e6f70 -> 4d5e6f708192 (current), add posts
1a2b3c4d5e6f -> 2b3c4d5e6f70 (branchpoint), add email
<base> -> 1a2b3c4d5e6f, create users
";
        assert_eq!(
            format_history(&g, &all(&g), false, &current, true),
            expected
        );
        assert_eq!(format_history(&g, &[], false, &[], false), "");
    }

    #[test]
    fn an_empty_message_leaves_no_trailing_comma() {
        let g = RevisionGraph::new(vec![
            node("a", &[], &[], &[], ""),
            node("b", &["a"], &[], &[], "  \n"),
        ])
        .unwrap();
        assert_eq!(
            format_history(&g, &all(&g), false, &[], false),
            "a -> b (head)\n<base> -> a\n"
        );
    }

    #[test]
    fn at_heads_means_nothing_left_to_upgrade() {
        let g = deps_graph();
        // b is applied through d's depends_on: the rows are [d] only
        assert!(at_heads(&g, &s(&["d"])));
        assert!(at_heads(&g, &s(&["b", "d"])));
        assert!(!at_heads(&g, &s(&["b", "c"])));
        assert!(!at_heads(&g, &[]));
        assert!(!at_heads(&g, &s(&["unknown"])));
        let g = doc_graph();
        assert!(at_heads(&g, &s(&[E])));
        assert!(!at_heads(&g, &s(&[C, D])));
        let empty = RevisionGraph::new(vec![]).unwrap();
        assert!(at_heads(&empty, &[]));
    }

    #[test]
    fn history_lines_with_labels_and_dependencies() {
        let g = deps_graph();
        let expected = "\
c (b) -> d (head), needs the feature
a -> c, main line
a -> b (feat) (effective head), feature
<base> -> a (branchpoint), root
";
        assert_eq!(format_history(&g, &all(&g), false, &[], false), expected);
    }

    #[test]
    fn verbose_history_blocks() {
        let g = doc_graph();
        let expected = "\
Rev: 5e6f708192a3 (head) (mergepoint)
Merges: 3c4d5e6f7081, 4d5e6f708192
Path: migrations/versions/5e6f708192a3.sql

    merge orders and posts

Rev: 2b3c4d5e6f70 (branchpoint) (current)
Parent: 1a2b3c4d5e6f
Branches into: 3c4d5e6f7081, 4d5e6f708192
Path: migrations/versions/2b3c4d5e6f70.sql

    add email

Rev: 1a2b3c4d5e6f
Parent: <base>
Path: migrations/versions/1a2b3c4d5e6f.sql

    create users

";
        assert_eq!(
            format_history(&g, &s(&[E, B, A]), true, &s(&[B]), true),
            expected
        );
        let g = deps_graph();
        let expected = "\
Rev: d (head)
Parent: c
Also depends on: b
Path: migrations/versions/d.sql

    needs the feature

Rev: b (head)
Parent: a
Branch names: feat
Path: migrations/versions/b.sql

    feature

    with a longer
    explanation

";
        assert_eq!(
            format_history(&g, &s(&["d", "b"]), true, &[], false),
            expected
        );
    }

    #[test]
    fn branches_block() {
        let g = doc_graph();
        let expected = "\
2b3c4d5e6f70 (branchpoint)
             -> 3c4d5e6f7081
             -> 4d5e6f708192

";
        assert_eq!(format_branches(&g), expected);
        let g = deps_graph();
        assert_eq!(
            format_branches(&g),
            "a (branchpoint)\n  -> b (feat) (effective head)\n  -> c\n\n"
        );
        let linear = RevisionGraph::new(vec![node("x", &[], &[], &[], "m")]).unwrap();
        assert_eq!(format_branches(&linear), "");
    }

    #[test]
    fn heads_lines() {
        let g = doc_graph();
        assert_eq!(format_heads(&g, false), "5e6f708192a3 (head)\n");
        let g = deps_graph();
        assert_eq!(
            format_heads(&g, false),
            "b (feat) (effective head)\nd (head)\n"
        );
        assert!(format_heads(&g, true).starts_with("Rev: b (head)\nParent: a\n"));
    }

    #[test]
    fn show_block() {
        let g = doc_graph();
        let expected = "\
Rev: 3c4d5e6f7081
Parent: 2b3c4d5e6f70
Path: migrations/versions/3c4d5e6f7081.sql

    add orders

";
        assert_eq!(format_show(&g, C), expected);
        assert_eq!(format_show(&g, "nope"), "");
    }

    #[test]
    fn current_lines() {
        let g = doc_graph();
        assert_eq!(format_current(&g, &[], false), "");
        assert_eq!(
            format_current(&g, &s(&[D, C]), false),
            "3c4d5e6f7081\n4d5e6f708192\n"
        );
        assert_eq!(
            format_current(&g, &s(&[E]), false),
            "5e6f708192a3 (head) (mergepoint)\n"
        );
        assert_eq!(
            format_current(&g, &s(&[B]), false),
            "2b3c4d5e6f70 (branchpoint)\n"
        );
        let linear = RevisionGraph::new(vec![
            node(A, &[], &[], &[], "create users"),
            node(D, &[A], &[], &[], "posts"),
        ])
        .unwrap();
        assert_eq!(
            format_current(&linear, &s(&[D]), false),
            "4d5e6f708192 (head)\n"
        );
        // a dependency applied only through depends_on
        let g = deps_graph();
        assert_eq!(
            format_current(&g, &s(&["d"]), false),
            "b (effective head)\nd (head)\n"
        );
        assert_eq!(format_current(&g, &s(&["b", "c"]), false), "b (head)\nc\n");
        let verbose = format_current(&g, &s(&["d"]), true);
        assert!(
            verbose.starts_with("Rev: b (head)\n") && verbose.contains("\nRev: d (head)\n"),
            "{verbose}"
        );
    }
}
