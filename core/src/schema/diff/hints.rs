//! Rename hints: a column dropped and another of the same type added in one table, or a table
//! dropped and another with the same columns added in the same schema, look like renames. The
//! diff writes them as drop + add; these hints say how to ask for the rename instead.

use super::super::model::*;

/// A hint about a drop + add that may be meant as a rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameHint {
    Column {
        table: QName,
        from: String,
        to: String,
        type_sql: String,
    },
    Table {
        from: QName,
        to: QName,
    },
}

impl RenameHint {
    pub fn describe(&self) -> String {
        match self {
            RenameHint::Column { table, from, to, type_sql } => format!(
                "possible rename: column {}.{from} was dropped and {to} ({type_sql}) added; if it is a rename, pass --rename {}.{from}={to}",
                table.sql(),
                rename_table_arg(table)
            ),
            RenameHint::Table { from, to } => format!(
                "possible rename: table {from} was dropped and {to} added with the same columns; if it is a rename, pass --rename-table {}={}",
                rename_table_arg(from),
                to.name
            ),
        }
    }
}

fn rename_table_arg(t: &QName) -> String {
    if t.schema == "public" {
        t.name.clone()
    } else {
        format!("{}.{}", t.schema, t.name)
    }
}

/// Columns dropped and added with the same type in one table, tables dropped and added with the
/// same columns: reported as possible renames.
pub fn rename_hints(a: &Schema, b: &Schema) -> Vec<RenameHint> {
    let mut hints = Vec::new();
    for (t, ta) in &a.tables {
        let Some(tb) = b.tables.get(t) else { continue };
        let dropped: Vec<&Column> = ta
            .columns
            .iter()
            .filter(|c| tb.column(&c.name).is_none())
            .collect();
        let added: Vec<&Column> = tb
            .columns
            .iter()
            .filter(|c| ta.column(&c.name).is_none())
            .collect();
        for d in &dropped {
            for n in added.iter().filter(|n| n.type_sql == d.type_sql) {
                hints.push(RenameHint::Column {
                    table: t.clone(),
                    from: d.name.clone(),
                    to: n.name.clone(),
                    type_sql: n.type_sql.clone(),
                });
            }
        }
    }
    let shape = |t: &Table| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = t
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.type_sql.clone()))
            .collect();
        v.sort();
        v
    };
    for (n, ta) in &a.tables {
        if b.tables.contains_key(n) {
            continue;
        }
        for (m, tb) in &b.tables {
            if !a.tables.contains_key(m) && m.schema == n.schema && shape(ta) == shape(tb) {
                hints.push(RenameHint::Table {
                    from: n.clone(),
                    to: m.clone(),
                });
            }
        }
    }
    hints
}
