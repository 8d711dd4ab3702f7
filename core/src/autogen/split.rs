//! How the changes are split into up to four chained revisions.
//!
//! Enum values added by `ALTER TYPE ... ADD VALUE` cannot be used in the transaction that added
//! them. Values the main revision's up section uses go to a non-transactional revision before
//! it ("pre"); values its down section adds back and uses (a removal in up) go to a
//! non-transactional revision after it ("post"), so they are committed on the way down. Index
//! builds on the existing tables that `concurrent` names (those that hold rows on the target
//! database, by default; every existing table with `--concurrently`; none with `--blocking`)
//! go to a last, non-transactional revision that uses CONCURRENTLY: the new index is built
//! beside the old one, which serves queries until the swap.
//!
//! Each split is made on the schemas, not on the statements: an intermediate schema (the
//! replay with the new enum values, the wanted schema with the old indexes) is diffed against
//! both ends, so every revision is a plain diff and its down section the reverse one.

use super::renames::RenameChanges;
use crate::schema::change::Change;
use crate::schema::diff::{changes, enum_change, EnumChange};
use crate::schema::model::{literal, QName, Schema};
use crate::schema::DiffOptions;

/// The statements of one revision.
#[derive(Debug, Clone, Default)]
pub(super) struct Section {
    pub up: Vec<Change>,
    pub down: Vec<Change>,
}

impl Section {
    /// From `a` to `b` and back.
    fn between(a: &Schema, b: &Schema, opts: &DiffOptions) -> Section {
        Section {
            up: changes(a, b, opts),
            down: changes(b, a, opts),
        }
    }
}

/// The revisions to write, in chain order: `pre`, `main`, `post`, `concurrent`.
#[derive(Debug, Clone, Default)]
pub(super) struct Split {
    pub pre: Option<Section>,
    pub main: Section,
    pub post: Option<Section>,
    pub concurrent: Option<Section>,
}

impl Split {
    pub fn is_empty(&self) -> bool {
        self.main.up.is_empty()
            && self.pre.is_none()
            && self.post.is_none()
            && self.concurrent.is_none()
    }
}

/// A value `ADD VALUE` adds to an enum type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AddedValue {
    enum_name: QName,
    value: String,
}

/// The changes from `old` (the replay) to `new` (the wanted schema); `renamed` is the replay
/// with `renames` applied.
pub(super) fn split(
    old: &Schema,
    renamed: &Schema,
    new: &Schema,
    renames: &RenameChanges,
    concurrent: &dyn Fn(&QName) -> bool,
) -> Split {
    // `mid` is the wanted schema with the concurrent index builds left as before.
    let (mid, moved) = revert_indexes(new, renamed, &mut |t| concurrent(t));
    let plain = DiffOptions::default();
    let mut split = Split {
        main: with_renames(renames, Section::between(renamed, &mid, &plain)),
        ..Split::default()
    };
    let added_up = added_enum_values(old, new);
    let added_down = added_enum_values(new, old);
    let use_pre = !added_up.is_empty() && uses_values(&split.main.up, &added_up);
    let use_post = !added_down.is_empty() && uses_values(&split.main.down, &added_down);
    if use_pre || use_post {
        let mut base = renamed.clone();
        let mut top = mid.clone();
        if use_pre {
            let old_e = with_enum_values(old, new, &added_up);
            base = with_enum_values(renamed, new, &added_up);
            split.pre = Some(Section::between(old, &old_e, &plain));
        }
        if use_post {
            top = with_enum_values(&mid, old, &added_down);
            split.post = Some(Section::between(&top, &mid, &plain));
        }
        split.main = with_renames(renames, Section::between(&base, &top, &plain));
    }
    if moved > 0 {
        let c = DiffOptions { concurrently: true };
        split.concurrent = Some(Section::between(&mid, new, &c));
    }
    split
}

/// The renames first in up, last in down.
fn with_renames(renames: &RenameChanges, s: Section) -> Section {
    let mut up = renames.up.clone();
    up.extend(s.up);
    let mut down = s.down;
    down.extend(renames.down.iter().cloned());
    Section { up, down }
}

/// Whether a statement other than `ALTER TYPE` (which adds the values) uses one of `added`.
fn uses_values(changes: &[Change], added: &[AddedValue]) -> bool {
    changes
        .iter()
        .filter(|c| {
            !matches!(
                c,
                Change::AddEnumValue { .. } | Change::RenameEnumAside { .. }
            )
        })
        .any(|c| {
            let sql = c.sql();
            added.iter().any(|a| sql.contains(&literal(&a.value)))
        })
}

/// The values that the change from `old` to `new` adds with ADD VALUE.
fn added_enum_values(old: &Schema, new: &Schema) -> Vec<AddedValue> {
    let mut out = Vec::new();
    for (n, e) in &old.enums {
        if let Some(ne) = new.enums.get(n) {
            if let Some(EnumChange::AddValues(adds)) = enum_change(&e.values, &ne.values) {
                out.extend(adds.into_iter().map(|v| AddedValue {
                    enum_name: n.clone(),
                    value: v.value,
                }));
            }
        }
    }
    out
}

/// `s` with the enum types of `added` given their values in `from`.
fn with_enum_values(s: &Schema, from: &Schema, added: &[AddedValue]) -> Schema {
    let mut s = s.clone();
    for a in added {
        if let (Some(e), Some(f)) = (s.enums.get_mut(&a.enum_name), from.enums.get(&a.enum_name)) {
            e.values = f.values.clone();
        }
    }
    s
}

/// How many index builds on existing tables the main revision holds that `--concurrently`
/// would move to a revision of their own (for the summary's hint), given the tables whose
/// builds are moved (`concurrent`).
pub(super) fn blocking_builds(
    new: &Schema,
    renamed: &Schema,
    concurrent: &dyn Fn(&QName) -> bool,
) -> usize {
    revert_indexes(new, renamed, &mut |t| !concurrent(t)).1
}

/// The existing tables that have an index build a concurrent revision could take.
pub(super) fn tables_with_builds(new: &Schema, renamed: &Schema) -> Vec<QName> {
    let mut v = Vec::new();
    revert_indexes(new, renamed, &mut |t| {
        v.push(t.clone());
        false
    });
    v
}

/// `target` with the indexes that are new or changed on the tables of `base` that `which`
/// names put back as in `base`; returns it and how many indexes were put back.
fn revert_indexes(
    target: &Schema,
    base: &Schema,
    which: &mut dyn FnMut(&QName) -> bool,
) -> (Schema, usize) {
    let mut mid = target.clone();
    let mut moved = 0;
    for (t, tb) in &target.tables {
        let Some(ta) = base.tables.get(t) else {
            continue;
        };
        let builds = tb.indexes.iter().any(|(name, ib)| {
            ta.indexes
                .get(name)
                .is_none_or(|ia| !ia.same_definition(ib))
        });
        if !builds || !which(t) {
            continue;
        }
        let m = mid.tables.get_mut(t).expect("same tables");
        for (name, ib) in &tb.indexes {
            match ta.indexes.get(name) {
                Some(ia) if ia.same_definition(ib) => {}
                Some(ia) => {
                    let usable = ia
                        .columns
                        .iter()
                        .all(|c| match (ta.column(c), tb.column(c)) {
                            (Some(x), Some(y)) => x.type_sql == y.type_sql,
                            _ => false,
                        });
                    if usable {
                        m.indexes.insert(name.clone(), ia.clone());
                        moved += 1;
                    }
                }
                None => {
                    let renamed = ta
                        .indexes
                        .values()
                        .any(|ia| !tb.indexes.contains_key(&ia.name) && ia.same_definition(ib));
                    if !renamed {
                        m.indexes.remove(name);
                        moved += 1;
                    }
                }
            }
        }
    }
    (mid, moved)
}
