//! Puts the per-relation rows together: views and materialized views (with their column
//! comments, indexes and dependencies), tables (with their constraints and indexes), and the
//! relations not compared as tables (partitioned tables, partitions, foreign tables,
//! inheritance children), which get a fingerprint among the unhandled objects.

use super::relations::{Rel, Relations};
use super::views::ViewDependencies;
use crate::schema::model::*;
use std::collections::{BTreeMap, HashMap};

/// What the per-relation readers found, by relation oid.
pub(super) struct PerRelation {
    pub columns: HashMap<u32, Vec<Column>>,
    pub constraints: HashMap<u32, Vec<Constraint>>,
    pub indexes: HashMap<u32, Vec<Index>>,
    pub view_deps: ViewDependencies,
}

/// Adds every relation of `rels`, in oid order, to `s`.
pub(super) fn assemble(s: &mut Schema, rels: &Relations, mut per: PerRelation) {
    let mut oids: Vec<u32> = rels.keys().copied().collect();
    oids.sort_unstable();
    for oid in oids {
        let rel = &rels[&oid];
        let cols = per.columns.remove(&oid).unwrap_or_default();
        let constraints = per.constraints.remove(&oid).unwrap_or_default();
        let indexes = per.indexes.remove(&oid).unwrap_or_default();
        match rel.kind.as_str() {
            "v" | "m" => {
                let deps = per.view_deps.remove(&oid).unwrap_or_default();
                s.views
                    .insert(rel.name.clone(), view(rel, &cols, indexes, deps));
            }
            _ if rel.is_table() => {
                s.tables
                    .insert(rel.name.clone(), table(rel, cols, constraints, indexes));
            }
            _ => {
                let (kind, fp) = fingerprint(rel, &cols, &constraints, &indexes);
                let key = ObjectKey {
                    kind: kind.to_string(),
                    name: rel.name.sql(),
                };
                s.unhandled.insert(key, fp);
            }
        }
    }
}

fn by_name(indexes: Vec<Index>) -> BTreeMap<String, Index> {
    indexes
        .into_iter()
        .map(|ix| (ix.name.clone(), ix))
        .collect()
}

fn view(
    rel: &Rel,
    cols: &[Column],
    indexes: Vec<Index>,
    depends_on: BTreeMap<QName, Vec<String>>,
) -> View {
    View {
        name: rel.name.clone(),
        materialized: rel.kind == "m",
        definition: rel.viewdef.clone().unwrap_or_default(),
        options: rel.options.clone(),
        comment: rel.comment.clone(),
        column_comments: cols
            .iter()
            .filter_map(|c| c.comment.clone().map(|t| (c.name.clone(), t)))
            .collect(),
        indexes: by_name(indexes),
        depends_on,
    }
}

fn table(
    rel: &Rel,
    columns: Vec<Column>,
    constraints: Vec<Constraint>,
    indexes: Vec<Index>,
) -> Table {
    Table {
        name: rel.name.clone(),
        columns,
        constraints: constraints
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect(),
        indexes: by_name(indexes),
        comment: rel.comment.clone(),
        unlogged: rel.unlogged,
    }
}

/// A relation not compared as a table: its kind, and a fingerprint of its columns, partition
/// key or bound, constraints and indexes.
fn fingerprint(
    rel: &Rel,
    cols: &[Column],
    constraints: &[Constraint],
    indexes: &[Index],
) -> (&'static str, String) {
    let kind = if rel.kind == "p" {
        "partitioned table"
    } else if rel.partition {
        "partition"
    } else if rel.kind == "f" {
        "foreign table"
    } else {
        "inheritance child table"
    };
    let mut fp: Vec<String> = cols
        .iter()
        .map(|c| format!("{} {} {} {:?}", c.name, c.type_sql, c.not_null, c.default))
        .collect();
    fp.extend(rel.part.clone());
    for c in constraints {
        fp.push(format!("{} {}", c.name, c.definition));
    }
    for ix in indexes {
        fp.push(format!("{} {}", ix.name, ix.body));
    }
    (kind, fp.join("; "))
}
