use super::resolve::MULTIPLE_HEADS;
use super::*;
use crate::error::ErrorKind;
use crate::plan::{Direction, Plan, VersionOp};

/// The planning calls with targets as text, the way the commands receive them: parse errors
/// and planning errors come out of one `Result`, as users see them.
trait TextTargets {
    fn upgrade_to(&self, current: &[String], target: &str) -> Result<Plan>;
    fn downgrade_to(&self, current: &[String], target: &str) -> Result<Plan>;
    fn stamp_to(&self, current: &[String], targets: &[String]) -> Result<Vec<String>>;
    fn resolve_text(&self, target: &str, current: &[String]) -> Result<Vec<String>>;
}

impl TextTargets for RevisionGraph {
    fn upgrade_to(&self, current: &[String], target: &str) -> Result<Plan> {
        self.upgrade_plan(current, &Target::parse(target)?)
    }
    fn downgrade_to(&self, current: &[String], target: &str) -> Result<Plan> {
        self.downgrade_plan(current, &Target::parse(target)?)
    }
    fn stamp_to(&self, current: &[String], targets: &[String]) -> Result<Vec<String>> {
        self.stamp_heads(current, &Target::parse_all(targets)?)
    }
    fn resolve_text(&self, target: &str, current: &[String]) -> Result<Vec<String>> {
        self.resolve_target(&Target::parse(target)?, current)
    }
}

fn node(id: &str, down: &[&str], deps: &[&str], labels: &[&str]) -> RevisionNode {
    RevisionNode {
        id: id.to_string(),
        down_revisions: down.iter().map(|s| s.to_string()).collect(),
        depends_on: deps.iter().map(|s| s.to_string()).collect(),
        branch_labels: labels.iter().map(|s| s.to_string()).collect(),
        message: format!("message of {id}"),
        source: format!("versions/{id}.sql"),
        programs: Vec::new(),
        contract: false,
    }
}

fn n(id: &str, down: &[&str]) -> RevisionNode {
    node(id, down, &[], &[])
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn g(nodes: Vec<RevisionNode>) -> RevisionGraph {
    RevisionGraph::new(nodes).expect("valid graph")
}

const A: &str = "1a2b3c4d5e6f";
const B: &str = "2b3c4d5e6f70";
const C: &str = "3c4d5e6f7081";
const D: &str = "4d5e6f708192";
const E: &str = "5e6f708192a3";

/// A fork that merges again: A -> B -> {C, D} -> E (merge).
fn doc_graph() -> RevisionGraph {
    g(vec![
        n(A, &[]),
        n(B, &[A]),
        n(C, &[B]),
        n(D, &[B]),
        n(E, &[C, D]),
    ])
}

/// r1 -> r2 -> bp -> x1 -> x2 [feat] -> x3 ; bp -> y1 [other] -> y2
fn labelled() -> RevisionGraph {
    g(vec![
        n("r1", &[]),
        n("r2", &["r1"]),
        n("bp", &["r2"]),
        n("x1", &["bp"]),
        node("x2", &["x1"], &[], &["feat"]),
        n("x3", &["x2"]),
        node("y1", &["bp"], &[], &["other"]),
        n("y2", &["y1"]),
    ])
}

/// a -> b ; a -> c -> d, d depends_on b (another branch).
fn deps_graph() -> RevisionGraph {
    g(vec![
        n("a", &[]),
        n("b", &["a"]),
        n("c", &["a"]),
        node("d", &["c"], &["b"], &[]),
    ])
}

fn op_text(op: &VersionOp) -> String {
    match op {
        VersionOp::Insert(r) => format!("INSERT {r}"),
        VersionOp::Update { from, to } => format!("UPDATE {from}->{to}"),
        VersionOp::Delete(r) => format!("DELETE {r}"),
    }
}

/// Applies one step's writes to `rows` like the database would (a primary key on the
/// row, an UPDATE/DELETE of a missing row is a bug).
fn apply(rows: &mut Vec<String>, ops: &[VersionOp]) {
    for op in ops {
        match op {
            VersionOp::Insert(r) => {
                assert!(!rows.contains(r), "INSERT {r}: already a row in {rows:?}");
                rows.push(r.clone());
            }
            VersionOp::Update { from, to } => {
                assert!(
                    !rows.contains(to),
                    "UPDATE to {to}: already a row in {rows:?}"
                );
                let k = rows
                    .iter()
                    .position(|x| x == from)
                    .unwrap_or_else(|| panic!("UPDATE {from}: no such row in {rows:?}"));
                rows[k] = to.clone();
            }
            VersionOp::Delete(r) => {
                let k = rows
                    .iter()
                    .position(|x| x == r)
                    .unwrap_or_else(|| panic!("DELETE {r}: no such row in {rows:?}"));
                rows.remove(k);
            }
        }
    }
}

/// One entry per step: "REV: OPS => rows after (sorted)"; checks the end rows.
fn trace(plan: &Plan) -> Vec<String> {
    let mut rows = plan.start_heads.clone();
    let mut out = Vec::new();
    for step in &plan.steps {
        apply(&mut rows, &step.version_ops);
        let mut sorted = rows.clone();
        sorted.sort();
        let ops: Vec<String> = step.version_ops.iter().map(op_text).collect();
        out.push(format!(
            "{}: {} => {{{}}}",
            step.revision,
            ops.join("; "),
            sorted.join(", ")
        ));
    }
    let mut end = plan.end_heads.clone();
    end.sort();
    rows.sort();
    assert_eq!(rows, end, "end_heads must be the simulated rows");
    out
}

fn revs(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.revision.as_str()).collect()
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> Error {
    r.expect_err("expected an error")
}

// ----- construction --------------------------------------------------------------------

#[test]
fn duplicate_ids_name_both_files() {
    let mut second = n("a1", &[]);
    second.source = "versions/other.sql".into();
    let e = err(RevisionGraph::new(vec![n("a1", &[]), second]));
    assert_eq!(e.kind, ErrorKind::Script);
    assert!(e.message.contains("'a1'"), "{}", e.message);
    assert!(
        e.message.contains("versions/a1.sql") && e.message.contains("versions/other.sql"),
        "{}",
        e.message
    );
}

#[test]
fn missing_parent_and_dependency_name_file_and_id() {
    let e = err(RevisionGraph::new(vec![n("a", &[]), n("b", &["zzz"])]));
    assert_eq!(e.kind, ErrorKind::Script);
    assert!(
        e.message.contains("versions/b.sql") && e.message.contains("'zzz'"),
        "{}",
        e.message
    );
    let e = err(RevisionGraph::new(vec![
        n("a", &[]),
        node("b", &["a"], &["nope"], &[]),
    ]));
    assert!(
        e.message.contains("versions/b.sql") && e.message.contains("depends_on 'nope'"),
        "{}",
        e.message
    );
}

#[test]
fn cycles_are_named() {
    let e = err(RevisionGraph::new(vec![
        n("r", &[]),
        n("a", &["c"]),
        n("b", &["a"]),
        n("c", &["b"]),
    ]));
    assert_eq!(e.kind, ErrorKind::Script);
    assert!(e.message.contains("a -> b -> c -> a"), "{}", e.message);
    assert!(e.message.contains("versions/a.sql"), "{}", e.message);
    let e = err(RevisionGraph::new(vec![n("a", &["a"])]));
    assert!(e.message.contains("a -> a"), "{}", e.message);
    // through depends_on
    let e = err(RevisionGraph::new(vec![
        n("a", &[]),
        node("b", &["a"], &["c"], &[]),
        n("c", &["b"]),
    ]));
    assert!(e.message.contains("b -> c -> b"), "{}", e.message);
}

#[test]
fn branch_label_twice_names_both_revisions() {
    let e = err(RevisionGraph::new(vec![
        node("a", &[], &[], &["x"]),
        node("b", &[], &[], &["x"]),
    ]));
    assert_eq!(e.kind, ErrorKind::Script);
    assert!(
        e.message.contains("'x'") && e.message.contains("a (") && e.message.contains("b ("),
        "{}",
        e.message
    );
    let e = err(RevisionGraph::new(vec![
        node("a", &[], &[], &["b"]),
        n("b", &[]),
    ]));
    assert!(e.message.contains("also the id"), "{}", e.message);
}

#[test]
fn nodes_are_topological_with_file_order_ties() {
    // Children listed before parents; two roots.
    let gr = g(vec![
        n("c", &["b"]),
        n("z", &[]),
        n("b", &["a"]),
        n("a", &[]),
        n("y", &["z"]),
    ]);
    let ids: Vec<&str> = gr.nodes().iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["z", "a", "b", "c", "y"]);
    assert_eq!(gr.heads(), s(&["c", "y"]));
    assert_eq!(gr.ancestors(&s(&["c"])).unwrap(), s(&["a", "b", "c"]));
    let dg = doc_graph();
    let ids: Vec<&str> = dg.nodes().iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, [A, B, C, D, E]);
}

#[test]
fn plain_queries() {
    let dg = doc_graph();
    assert_eq!(dg.len(), 5);
    assert!(!dg.is_empty());
    assert_eq!(dg.heads(), s(&[E]));
    assert_eq!(dg.ancestors(&s(&[D])).unwrap(), s(&[A, B, D]));
    assert_eq!(dg.children(B), s(&[C, D]));
    assert!(dg.children("nope").is_empty());
    assert!(dg.is_branch_point(B) && !dg.is_branch_point(C));
    assert!(dg.is_merge_point(E) && !dg.is_merge_point(D));
    assert_eq!(
        dg.get(C).map(|n| n.message.as_str()),
        Some("message of 3c4d5e6f7081")
    );
    assert!(dg.get("3c4d").is_none());
    let empty = g(vec![]);
    assert!(empty.is_empty() && empty.heads().is_empty());
    let dep = deps_graph();
    assert_eq!(dep.heads(), s(&["b", "d"]));
    // Through depends_on too, in upgrade order.
    assert_eq!(dep.ancestors(&s(&["d"])).unwrap(), s(&["a", "b", "c", "d"]));
    assert_eq!(dep.ancestors(&s(&["b", "c"])).unwrap(), s(&["a", "b", "c"]));
    assert!(dep.ancestors(&s(&["nope"])).is_err());
    assert!(dep.is_head("b") && !dep.is_real_head("b") && dep.is_real_head("d"));
}

#[test]
fn branch_labels_follow_alembic() {
    let gr = labelled();
    for id in ["x1", "x2", "x3"] {
        assert_eq!(gr.branch_labels_of(id), s(&["feat"]), "{id}");
    }
    for id in ["y1", "y2"] {
        assert_eq!(gr.branch_labels_of(id), s(&["other"]), "{id}");
    }
    for id in ["r1", "r2", "bp", "nope"] {
        assert!(gr.branch_labels_of(id).is_empty(), "{id}");
    }
    // Up to the root when there is no branch point; stops at a merge point.
    let gr = g(vec![
        n("a", &[]),
        n("b", &["a"]),
        n("p", &[]),
        n("m", &["b", "p"]),
        n("c", &["m"]),
        node("d", &["c"], &[], &["late"]),
        node("e", &["a"], &[], &[]),
        node("f", &[], &[], &["solo", "alpha"]),
        n("g", &["f"]),
    ]);
    assert_eq!(gr.branch_labels_of("c"), s(&["late"]));
    assert!(gr.branch_labels_of("m").is_empty());
    assert_eq!(gr.branch_labels_of("g"), s(&["alpha", "solo"]));
}

// ----- resolution ----------------------------------------------------------------------

#[test]
fn resolve_ids_labels_prefixes() {
    let gr = g(vec![
        n("aaaa1111", &[]),
        n("aaaa9999", &["aaaa1111"]),
        node("b0000000", &["aaaa9999"], &[], &["lbl"]),
    ]);
    assert_eq!(gr.resolve("aaaa1111").unwrap(), "aaaa1111");
    assert_eq!(gr.resolve("lbl").unwrap(), "b0000000");
    assert_eq!(gr.resolve("b").unwrap(), "b0000000");
    assert_eq!(gr.resolve("aaaa9").unwrap(), "aaaa9999");
    assert_eq!(gr.resolve("head").unwrap(), "b0000000");
    assert_eq!(gr.resolve("head-2").unwrap(), "aaaa1111");
    assert_eq!(gr.resolve("lbl@head").unwrap(), "b0000000");
    let e = err(gr.resolve("aaaa"));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert_eq!(
        e.message,
        "ambiguous revision 'aaaa': matches aaaa1111, aaaa9999"
    );
    let e = err(gr.resolve("zz"));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert_eq!(e.message, "no revision starts with 'zz'");
    assert!(e.hint.unwrap().contains("migrate-history"));
    assert_eq!(err(gr.resolve("+1")).kind, ErrorKind::Usage);
    assert_eq!(err(gr.resolve("base")).kind, ErrorKind::Usage);
}

#[test]
fn head_with_several_heads_is_alembics_error() {
    let gr = labelled();
    let e = err(gr.upgrade_to(&[], "head"));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert_eq!(e.message, MULTIPLE_HEADS);
    assert!(e.message.starts_with("Multiple head revisions are present for given argument 'head'; please specify a specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for all heads"));
    assert_eq!(err(gr.resolve("head")).message, MULTIPLE_HEADS);
}

#[test]
fn check_known_names_the_unknown_row() {
    let dg = doc_graph();
    assert!(dg.check_known(&s(&[A, E])).is_ok());
    let e = err(dg.check_known(&s(&[A, "deadbeef0000"])));
    assert_eq!(e.kind, ErrorKind::State);
    assert_eq!(
        e.message,
        "Can't locate revision identified by 'deadbeef0000'"
    );
    let hint = e.hint.unwrap();
    assert!(
        hint.contains("migrate-stamp --purge") && hint.contains("scripts directory"),
        "{hint}"
    );
    // every plan checks it
    assert_eq!(
        err(dg.upgrade_to(&s(&["deadbeef0000"]), "heads")).kind,
        ErrorKind::State
    );
    assert_eq!(
        err(dg.downgrade_to(&s(&["deadbeef0000"]), "base")).kind,
        ErrorKind::State
    );
}

// ----- upgrade / downgrade --------------------------------------------------------------

#[test]
fn upgrade_heads_from_base_follows_the_doc() {
    let dg = doc_graph();
    let plan = dg.upgrade_to(&[], "heads").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            format!("{A}: INSERT {A} => {{{A}}}"),
            format!("{B}: UPDATE {A}->{B} => {{{B}}}"),
            // Alembic's order (`alembic upgrade heads --sql` on these ids): D's branch first
            format!("{D}: UPDATE {B}->{D} => {{{D}}}"),
            format!("{C}: INSERT {C} => {{{C}, {D}}}"),
            format!("{E}: DELETE {C}; UPDATE {D}->{E} => {{{E}}}"),
        ]
    );
    assert_eq!(plan.start_heads, Vec::<String>::new());
    assert_eq!(plan.end_heads, s(&[E]));
    // Step.from / Step.to for the "-- Running upgrade" line.
    assert!(plan.steps[0].from.is_empty());
    assert_eq!(plan.steps[0].to, s(&[A]));
    assert_eq!(plan.steps[4].from, s(&[C, D]));
    assert_eq!(plan.steps[4].to, s(&[E]));
    assert!(plan.steps.iter().all(|s| s.direction == Direction::Up));
    // "head" is the same here (a single head), and so is a prefix of it.
    assert_eq!(dg.upgrade_to(&[], "head").unwrap(), plan);
    assert_eq!(dg.upgrade_to(&[], "5e").unwrap(), plan);
}

#[test]
fn upgrade_from_the_middle_and_noops() {
    let dg = doc_graph();
    let plan = dg.upgrade_to(&s(&[C]), "heads").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            format!("{D}: INSERT {D} => {{{C}, {D}}}"),
            format!("{E}: DELETE {C}; UPDATE {D}->{E} => {{{E}}}")
        ]
    );
    assert_eq!(plan.start_heads, s(&[C]));
    // already there / behind: empty plans
    let p = dg.upgrade_to(&s(&[E]), "heads").unwrap();
    assert!(p.is_empty());
    assert_eq!(p.end_heads, s(&[E]));
    assert!(dg.upgrade_to(&s(&[E]), B).unwrap().is_empty());
    assert!(dg.upgrade_to(&s(&[C]), "base").unwrap().is_empty());
    // two rows: upgrading one branch leaves the other row alone
    let plan = dg.upgrade_to(&[], C).unwrap();
    assert_eq!(revs(&plan), [A, B, C]);
    assert_eq!(plan.end_heads, s(&[C]));
}

#[test]
fn downgrade_to_one_parent_of_a_merge_unmerges() {
    let dg = doc_graph();
    let plan = dg.downgrade_to(&s(&[E]), C).unwrap();
    assert_eq!(
        trace(&plan),
        vec![format!("{E}: INSERT {C}; UPDATE {E}->{D} => {{{C}, {D}}}")]
    );
    assert_eq!(plan.end_heads, s(&[C, D]));
    assert_eq!(plan.steps[0].from, s(&[E]));
    assert_eq!(plan.steps[0].to, s(&[C, D]));
    assert_eq!(plan.steps[0].direction, Direction::Down);
    // and further down, to the branch point: one row collapses, the other walks down
    let plan = dg.downgrade_to(&s(&[C, D]), B).unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            format!("{C}: DELETE {C} => {{{D}}}"),
            format!("{D}: UPDATE {D}->{B} => {{{B}}}")
        ]
    );
}

#[test]
fn downgrade_to_base_and_relative() {
    let dg = doc_graph();
    let plan = dg.downgrade_to(&s(&[E]), "base").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            format!("{E}: INSERT {C}; UPDATE {E}->{D} => {{{C}, {D}}}"),
            format!("{C}: DELETE {C} => {{{D}}}"),
            format!("{D}: UPDATE {D}->{B} => {{{B}}}"),
            format!("{B}: UPDATE {B}->{A} => {{{A}}}"),
            format!("{A}: DELETE {A} => {{}}"),
        ]
    );
    assert!(plan.end_heads.is_empty());
    // -1 from a single row
    let plan = dg.downgrade_to(&s(&[C]), "-1").unwrap();
    assert_eq!(
        trace(&plan),
        vec![format!("{C}: UPDATE {C}->{B} => {{{B}}}")]
    );
    // -1 from the merge: ambiguous walk
    let e = err(dg.downgrade_to(&s(&[E]), "-1"));
    assert!(
        e.message.starts_with("ambiguous walk") && e.message.contains(E),
        "{}",
        e.message
    );
    // base on an empty database: nothing to do
    assert!(dg.downgrade_to(&[], "base").unwrap().is_empty());
    // to where we are: nothing
    assert!(dg.downgrade_to(&s(&[E]), E).unwrap().is_empty());
}

#[test]
fn downgrade_to_an_unapplied_revision_is_an_error() {
    let dg = doc_graph();
    let e = err(dg.downgrade_to(&s(&[C]), D));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert_eq!(
        e.message,
        format!("revision {D} is not applied; nothing to downgrade to")
    );
    let e = err(dg.downgrade_to(&[], A));
    assert!(e.hint.unwrap().contains("empty"));
    assert_eq!(err(dg.downgrade_to(&s(&[C]), "+1")).kind, ErrorKind::Usage);
}

#[test]
fn depends_on_pulls_the_dependency_in_first() {
    let gr = deps_graph();
    let plan = gr.upgrade_to(&s(&["a"]), "d").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            "b: UPDATE a->b => {b}".to_string(),
            "c: INSERT c => {b, c}".to_string(),
            "d: DELETE c; UPDATE b->d => {d}".to_string(),
        ]
    );
    assert_eq!(
        plan.steps[2].from,
        s(&["c"]),
        "from is the down_revision only"
    );
    assert_eq!(gr.effective_heads(&s(&["d"])), s(&["b"]));
    assert!(gr.effective_heads(&s(&["b", "c"])).is_empty());
    // nothing left for heads
    assert!(gr.upgrade_to(&s(&["d"]), "heads").unwrap().is_empty());
}

#[test]
fn downgrading_a_dependency_downgrades_its_dependents() {
    // a -> b ; x -> c -> d, d depends_on b
    let gr = g(vec![
        n("a", &[]),
        n("b", &["a"]),
        n("x", &[]),
        n("c", &["x"]),
        node("d", &["c"], &["b"], &[]),
    ]);
    let up = gr.upgrade_to(&[], "heads").unwrap();
    assert_eq!(
        trace(&up),
        vec![
            "a: INSERT a => {a}".to_string(),
            "b: UPDATE a->b => {b}".to_string(),
            "x: INSERT x => {b, x}".to_string(),
            "c: UPDATE x->c => {b, c}".to_string(),
            "d: DELETE c; UPDATE b->d => {d}".to_string(),
        ]
    );
    let down = gr.downgrade_to(&s(&["d"]), "a").unwrap();
    assert_eq!(
        trace(&down),
        vec![
            "d: INSERT c; UPDATE d->b => {b, c}".to_string(),
            "b: UPDATE b->a => {a, c}".to_string()
        ]
    );
    assert_eq!(down.end_heads, s(&["a", "c"]));
    // downgrading the other parent line: d goes, b stays a row
    let down = gr.downgrade_to(&s(&["d"]), "x").unwrap();
    assert_eq!(
        trace(&down),
        vec![
            "d: INSERT c; UPDATE d->b => {b, c}".to_string(),
            "c: UPDATE c->x => {b, x}".to_string()
        ]
    );
}

#[test]
fn dependency_already_an_ancestor_is_normalized_away() {
    // d depends_on a, which is already below its parent c: a plain linear step.
    let gr = g(vec![
        n("a", &[]),
        n("c", &["a"]),
        node("d", &["c"], &["a"], &[]),
    ]);
    let plan = gr.upgrade_to(&s(&["c"]), "d").unwrap();
    assert_eq!(trace(&plan), vec!["d: UPDATE c->d => {d}".to_string()]);
    let plan = gr.downgrade_to(&s(&["d"]), "c").unwrap();
    assert_eq!(trace(&plan), vec!["d: UPDATE d->c => {c}".to_string()]);
}

#[test]
fn relative_targets() {
    let dg = doc_graph();
    assert_eq!(revs(&dg.upgrade_to(&[], "+1").unwrap()), [A]);
    assert_eq!(revs(&dg.upgrade_to(&s(&[A]), "+1").unwrap()), [B]);
    assert_eq!(revs(&dg.upgrade_to(&[], "base+2").unwrap()), [A, B]);
    assert_eq!(revs(&dg.upgrade_to(&s(&[A]), "1a2b+1").unwrap()), [B]);
    assert_eq!(
        revs(&dg.upgrade_to(&[], "3c4d+1").unwrap()),
        [A, B, D, C, E]
    );
    assert_eq!(revs(&dg.upgrade_to(&[], "3c4d-2").unwrap()), [A]);
    // through a fork: ambiguous
    let e = err(dg.upgrade_to(&s(&[A]), "+2"));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(
        e.message.starts_with("ambiguous walk") && e.message.contains(B),
        "{}",
        e.message
    );
    // through a merge going down: ambiguous
    let e = err(dg.downgrade_to(&s(&[E]), "head-1"));
    assert!(
        e.message.starts_with("ambiguous walk") && e.message.contains(E),
        "{}",
        e.message
    );
    // past a head / past base: says how many steps were available
    let e = err(dg.upgrade_to(&s(&[C]), "+3"));
    assert!(
        e.message.contains("past a head") && e.message.contains("only 1 step is available"),
        "{}",
        e.message
    );
    let e = err(dg.downgrade_to(&s(&[B]), "-3"));
    assert!(
        e.message.contains("past base") && e.message.contains("only 2 steps are available"),
        "{}",
        e.message
    );
    let e = err(dg.downgrade_to(&[], "-1"));
    assert!(
        e.message.contains("only 0 steps are available"),
        "{}",
        e.message
    );
    // to base is one step below a root
    assert_eq!(revs(&dg.downgrade_to(&s(&[B]), "-2").unwrap()), [B, A]);
    // heads-N is not a thing
    assert!(err(dg.upgrade_to(&[], "heads-1"))
        .message
        .contains("'heads'"));
    // several roots: base+1 is ambiguous
    let two = g(vec![n("a", &[]), n("b", &[])]);
    assert!(err(two.upgrade_to(&[], "+1"))
        .message
        .starts_with("ambiguous walk"));
}

#[test]
fn relative_with_two_current_heads_is_ambiguous() {
    let dg = doc_graph();
    let e = err(dg.upgrade_to(&s(&[C, D]), "+1"));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(
        e.message.contains("ambiguous") && e.message.contains(C) && e.message.contains(D),
        "{}",
        e.message
    );
    assert!(err(dg.downgrade_to(&s(&[C, D]), "-1"))
        .message
        .contains("ambiguous"));
}

#[test]
fn branch_targets() {
    let gr = labelled();
    // LABEL@head / X@head
    assert_eq!(gr.resolve_text("feat@head", &[]).unwrap(), s(&["x3"]));
    assert_eq!(gr.resolve_text("other@head", &[]).unwrap(), s(&["y2"]));
    assert_eq!(gr.resolve_text("bp@head", &[]).unwrap(), s(&["x3", "y2"]));
    assert_eq!(gr.resolve_text("x1@head", &[]).unwrap(), s(&["x3"]));
    assert_eq!(gr.resolve_text("feat", &[]).unwrap(), s(&["x2"]));
    let plan = gr.upgrade_to(&s(&["y2"]), "feat@head").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            "x1: INSERT x1 => {x1, y2}",
            "x2: UPDATE x1->x2 => {x2, y2}",
            "x3: UPDATE x2->x3 => {x3, y2}"
        ]
    );
    // LABEL@+N from the branch point: follows the branch, where plain +1 is ambiguous
    assert_eq!(
        revs(&gr.upgrade_to(&s(&["bp"]), "feat@+1").unwrap()),
        ["x1"]
    );
    assert!(err(gr.upgrade_to(&s(&["bp"]), "+1"))
        .message
        .starts_with("ambiguous walk"));
    // LABEL@+N with two rows: only the row in the branch counts
    assert_eq!(
        revs(&gr.upgrade_to(&s(&["x1", "y1"]), "feat@+2").unwrap()),
        ["x2", "x3"]
    );
    assert_eq!(
        revs(&gr.upgrade_to(&s(&["x1", "y1"]), "other@+1").unwrap()),
        ["y2"]
    );
    // nothing of the branch applied: from base
    assert_eq!(revs(&gr.upgrade_to(&[], "feat@+1").unwrap()), ["r1"]);
    // LABEL@-N
    let plan = gr.downgrade_to(&s(&["x3", "y2"]), "feat@-1").unwrap();
    assert_eq!(trace(&plan), vec!["x3: UPDATE x3->x2 => {x2, y2}"]);
    // LABEL@head-N
    assert_eq!(gr.resolve_text("feat@head-2", &[]).unwrap(), s(&["x1"]));
    assert!(err(gr.resolve_text("bp@head-1", &[]))
        .message
        .starts_with("ambiguous walk"));
    // LABEL@REV: prefixes resolve within the branch
    assert_eq!(gr.resolve_text("feat@x2+1", &[]).unwrap(), s(&["x3"]));
    assert_eq!(gr.resolve_text("other@y2", &[]).unwrap(), s(&["y2"]));
    assert_eq!(
        gr.resolve_text("other@x", &[]).map_err(|e| e.message),
        Err("no revision in branch 'other' starts with 'x'".to_string())
    );
    assert_eq!(
        gr.resolve_text("feat@r", &[]).map_err(|e| e.message),
        Err("ambiguous revision 'r': matches r1, r2".to_string())
    );
    assert!(err(gr.resolve_text("feat@y1", &[]))
        .message
        .contains("not in branch 'feat'"));
    assert!(err(gr.resolve_text("nope@head", &[]))
        .message
        .contains("no revision starts with 'nope'"));
    // LABEL@base: downgrade removes the branch, back to where it forked
    let plan = gr.downgrade_to(&s(&["x3", "y2"]), "feat@base").unwrap();
    assert_eq!(
        trace(&plan),
        vec![
            "x3: UPDATE x3->x2 => {x2, y2}",
            "x2: UPDATE x2->x1 => {x1, y2}",
            "x1: DELETE x1 => {y2}"
        ]
    );
    assert!(gr.upgrade_to(&s(&["y2"]), "feat@base").unwrap().is_empty());
    // a whole independent root branch
    let roots = g(vec![
        n("a", &[]),
        n("b", &["a"]),
        node("s1", &[], &[], &["sql"]),
        n("s2", &["s1"]),
    ]);
    let plan = roots.downgrade_to(&s(&["b", "s2"]), "sql@base").unwrap();
    assert_eq!(
        trace(&plan),
        vec!["s2: UPDATE s2->s1 => {b, s1}", "s1: DELETE s1 => {b}"]
    );
    assert_eq!(roots.resolve_text("sql@base+1", &[]).unwrap(), s(&["s1"]));
}

#[test]
fn stamp_heads_rules() {
    let gr = labelled();
    assert_eq!(gr.stamp_to(&[], &s(&["heads"])).unwrap(), s(&["x3", "y2"]));
    assert_eq!(
        gr.stamp_to(&s(&["x3", "y2"]), &s(&["base"])).unwrap(),
        Vec::<String>::new()
    );
    // several targets: the minimal set
    assert_eq!(
        gr.stamp_to(&[], &s(&["x1", "x2", "y"])).unwrap_err().kind,
        ErrorKind::Usage
    );
    assert_eq!(
        gr.stamp_to(&[], &s(&["x1", "x2", "y1"])).unwrap(),
        s(&["x2", "y1"])
    );
    // the target replaces the rows in its lineage; other branches stay (Alembic)
    assert_eq!(
        gr.stamp_to(&s(&["x3", "y2"]), &s(&["x1"])).unwrap(),
        s(&["x1", "y2"])
    );
    assert_eq!(
        gr.stamp_to(&s(&["x3", "y2"]), &s(&["bp"])).unwrap(),
        s(&["bp"])
    );
    // relative and branch forms
    assert_eq!(gr.stamp_to(&s(&["x2"]), &s(&["+1"])).unwrap(), s(&["x3"]));
    assert_eq!(
        gr.stamp_to(&s(&["x3", "y2"]), &s(&["feat@base"])).unwrap(),
        s(&["y2"])
    );
    assert_eq!(
        gr.stamp_to(&s(&["x3"]), &s(&["feat@base"])).unwrap(),
        s(&["bp"])
    );
    assert!(gr.stamp_to(&[], &[]).is_err());
    assert_eq!(
        gr.stamp_to(&s(&["deadbeef"]), &s(&["heads"]))
            .unwrap_err()
            .kind,
        ErrorKind::State
    );
}

#[test]
fn history_ranges() {
    let dg = doc_graph();
    assert_eq!(dg.history_range(None, &[]).unwrap(), s(&[E, C, D, B, A]));
    assert_eq!(
        dg.history_range(Some(":"), &[]).unwrap(),
        s(&[E, C, D, B, A])
    );
    assert_eq!(
        dg.history_range(Some("base:heads"), &[]).unwrap(),
        s(&[E, C, D, B, A])
    );
    assert_eq!(
        dg.history_range(Some("2b3c:"), &[]).unwrap(),
        s(&[E, C, D, B])
    );
    assert_eq!(dg.history_range(Some(":3c4d"), &[]).unwrap(), s(&[C, B, A]));
    assert_eq!(dg.history_range(Some("3c:head"), &[]).unwrap(), s(&[E, C]));
    assert_eq!(
        dg.history_range(Some("current:"), &s(&[C, D])).unwrap(),
        s(&[E, C, D])
    );
    assert_eq!(
        dg.history_range(Some(":current"), &s(&[C])).unwrap(),
        s(&[C, B, A])
    );
    assert_eq!(
        dg.history_range(Some(":current"), &[]).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        dg.history_range(Some("current:"), &[]).unwrap(),
        s(&[E, C, D, B, A])
    );
    assert_eq!(
        dg.history_range(Some("-1:current"), &s(&[C])).unwrap(),
        s(&[C, B])
    );
    assert_eq!(
        dg.history_range(Some(":base"), &[]).unwrap(),
        Vec::<String>::new()
    );
    let e = err(dg.history_range(Some("2b3c"), &[]));
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(e.message.contains("START:END"));
    assert_eq!(
        err(dg.history_range(Some("zz:"), &[])).message,
        "no revision starts with 'zz'"
    );
    // through depends_on
    let dep = deps_graph();
    assert_eq!(dep.history_range(Some("b:"), &[]).unwrap(), s(&["d", "b"]));
}

// ----- size ---------------------------------------------------------------------------

/// 12-hex-digit ids that look random, in file-name (id) order like a real directory.
pub(super) fn chain(len: usize) -> Vec<RevisionNode> {
    let id = |i: usize| {
        format!(
            "{:012x}",
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
        )
    };
    let mut nodes: Vec<RevisionNode> = (0..len)
        .map(|i| {
            let down = if i == 0 { Vec::new() } else { vec![id(i - 1)] };
            RevisionNode {
                id: id(i),
                down_revisions: down,
                depends_on: Vec::new(),
                branch_labels: if i == len / 2 {
                    vec!["half".to_string()]
                } else {
                    Vec::new()
                },
                message: format!("revision number {i}"),
                source: format!("versions/{}_rev_{i}.sql", id(i)),
                programs: Vec::new(),
                contract: false,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.source.cmp(&b.source));
    nodes
}

/// A branchy graph: a main line where every 50th revision forks a 10-long side branch that
/// merges back, and every 100th revision depends on the previous fork's side branch.
pub(super) fn branchy(len: usize) -> Vec<RevisionNode> {
    let mut nodes: Vec<RevisionNode> = Vec::with_capacity(len);
    let mut main = String::new();
    let mut i = 0;
    while nodes.len() < len {
        let id = format!("m{i:06}");
        let mut down = if main.is_empty() {
            vec![]
        } else {
            vec![main.clone()]
        };
        if i % 50 == 0 && i > 0 {
            // a side branch from main that merges into this revision
            let fork = main.clone();
            let mut prev = fork.clone();
            for k in 0..10 {
                let sid = format!("s{i:06}_{k}");
                nodes.push(node(&sid, &[prev.as_str()], &[], &[]));
                prev = sid;
            }
            down.push(prev);
        }
        let deps: Vec<String> = if i % 100 == 0 && i > 50 {
            vec![format!("s{:06}_3", i - 50)]
        } else {
            vec![]
        };
        let mut nd = node(&id, &[], &[], &[]);
        nd.down_revisions = down;
        nd.depends_on = deps;
        nodes.push(nd);
        main = id;
        i += 1;
    }
    nodes.sort_by(|a, b| a.source.cmp(&b.source));
    nodes
}

#[test]
fn ten_thousand_revisions() {
    let t = std::time::Instant::now();
    let nodes = chain(10_000);
    let gr = g(nodes.clone());
    let order: Vec<&str> = gr.nodes().iter().map(|n| n.message.as_str()).collect();
    assert_eq!(order[0], "revision number 0");
    assert_eq!(order[9_999], "revision number 9999");
    let head = gr.heads();
    assert_eq!(head.len(), 1);
    let plan = gr.upgrade_to(&[], "head").unwrap();
    assert_eq!(plan.steps.len(), 10_000);
    assert_eq!(plan.end_heads, head);
    let down = gr.downgrade_to(&head, "base").unwrap();
    assert_eq!(down.steps.len(), 10_000);
    assert!(down.end_heads.is_empty());
    for nd in &nodes {
        assert_eq!(gr.resolve(&nd.id[..8]).unwrap(), nd.id);
    }
    assert_eq!(gr.history_range(None, &[]).unwrap().len(), 10_000);
    let mid = &gr.nodes()[5_000].id;
    assert_eq!(
        gr.history_range(Some(&format!("{mid}:")), &[])
            .unwrap()
            .len(),
        5_000
    );
    assert_eq!(gr.branch_labels_of(&head[0]), s(&["half"]));
    assert_eq!(gr.branch_labels_of(&gr.nodes()[0].id), s(&["half"]));
    assert_eq!(
        gr.resolve_text("half@head-9", &[]).unwrap(),
        s(&[gr.nodes()[9_990].id.as_str()])
    );
    assert_eq!(
        gr.stamp_to(&head, &s(&["-100"])).unwrap(),
        s(&[gr.nodes()[9_899].id.as_str()])
    );
    // Generous even for an unoptimized build on a busy machine; quadratic would not fit.
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());

    let gr = g(branchy(10_000));
    let heads = gr.heads();
    assert_eq!(heads.len(), 1);
    let up = gr.upgrade_to(&[], "heads").unwrap();
    assert_eq!(up.steps.len(), gr.len());
    assert_eq!(up.end_heads, heads);
    let down = gr.downgrade_to(&heads, "base").unwrap();
    assert_eq!(down.steps.len(), gr.len());
    assert!(down.end_heads.is_empty());
}

#[test]
fn branchy_plans_keep_the_table_valid() {
    let gr = g(branchy(400));
    let up = gr.upgrade_to(&[], "heads").unwrap();
    trace(&up);
    let down = gr.downgrade_to(&up.end_heads, "base").unwrap();
    let rows = trace(&down);
    assert!(rows.last().unwrap().ends_with("=> {}"));
    // half way down and up again
    let mid = gr.downgrade_to(&up.end_heads, "m000120").unwrap();
    trace(&mid);
    let again = gr.upgrade_to(&mid.end_heads, "heads").unwrap();
    trace(&again);
    assert_eq!(again.end_heads, up.end_heads);
    assert_eq!(
        mid.steps.len() + gr.history_range(Some(":m000120"), &[]).unwrap().len(),
        gr.len()
    );
}

#[test]
fn the_upgrade_order_is_the_full_upgrade_plan() {
    for nodes in [chain(12), branchy(40)] {
        let g = RevisionGraph::new(nodes).unwrap();
        let plan: Vec<String> = g
            .upgrade_plan(&[], &Target::Heads)
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.revision)
            .collect();
        assert_eq!(g.upgrade_order(), plan);
        assert_eq!(plan.len(), g.len());
    }
}
