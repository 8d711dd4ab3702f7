//! Renames the user asks for (`--rename table.old=new`, `--rename-table old=new`): parsed,
//! resolved against the replayed schema, and turned into `RENAME` changes (up) and their
//! reverse (down). The diff cannot tell a rename from a drop + add; with the renames applied
//! to the replay first, it compares what is left.

use crate::error::{Error, Result};
use crate::schema::change::Change;
use crate::schema::model::{QName, Schema};
use crate::schema::shadow::run_sql;
use crate::schema::workspace::Workspace;
use postgres::Client;

use super::AutogenOptions;

/// A rename as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RenameArg {
    /// `--rename-table from=to` (`from` may be `schema.table`).
    Table { from: String, to: String },
    /// `--rename table.from=to` (`table` may be `schema.table`).
    Column {
        table: String,
        from: String,
        to: String,
    },
}

/// A rename the user asked for, resolved against the replayed schema.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rename {
    Table {
        from: QName,
        to: String,
    },
    Column {
        table: QName,
        from: String,
        to: String,
    },
}

/// The rename statements: `up` renames, `down` undoes them in reverse order.
#[derive(Debug, Clone, Default)]
pub(super) struct RenameChanges {
    pub up: Vec<Change>,
    pub down: Vec<Change>,
}

/// The table renames, then the column renames.
pub(super) fn parse_renames(opts: &AutogenOptions) -> Result<Vec<RenameArg>> {
    let mut out = Vec::new();
    for r in &opts.table_renames {
        let (from, to) = r
            .split_once('=')
            .filter(|(f, t)| !f.is_empty() && !t.is_empty())
            .ok_or_else(|| {
                Error::usage(format!("--rename-table '{r}' is not OLD=NEW"))
                    .with_hint("e.g. --rename-table docs=documents (OLD may be schema.table)")
            })?;
        out.push(RenameArg::Table {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    for r in &opts.renames {
        let parsed = r.split_once('=').and_then(|(lhs, to)| {
            lhs.rsplit_once('.')
                .map(|(t, from)| (t.to_string(), from.to_string(), to.to_string()))
        });
        match parsed {
            Some((table, from, to)) if !table.is_empty() && !from.is_empty() && !to.is_empty() => {
                out.push(RenameArg::Column { table, from, to })
            }
            _ => {
                return Err(Error::usage(format!("--rename '{r}' is not TABLE.OLD=NEW"))
                    .with_hint("e.g. --rename documents.title=name (TABLE may be schema.table)"))
            }
        }
    }
    Ok(out)
}

fn find_table(s: &Schema, spec: &str) -> Option<QName> {
    if let Some((sch, n)) = spec.split_once('.') {
        let q = QName::new(sch, n);
        return s.tables.contains_key(&q).then_some(q);
    }
    let found: Vec<&QName> = s.tables.keys().filter(|q| q.name == spec).collect();
    match found.as_slice() {
        [one] => Some((*one).clone()),
        many => many
            .iter()
            .find(|q| q.schema == "public")
            .map(|q| (*q).clone()),
    }
}

/// A table rename: (the table in the migrations, its new name).
struct TableMove {
    from: QName,
    to: QName,
}

fn resolve_renames(parsed: &[RenameArg], old: &Schema) -> Result<Vec<Rename>> {
    let mut out = Vec::new();
    let mut moves: Vec<TableMove> = Vec::new();
    for arg in parsed {
        if let RenameArg::Table { from, to } = arg {
            let q = find_table(old, from).ok_or_else(|| {
                Error::usage(format!(
                    "--rename-table: the migrations have no table '{from}'"
                ))
            })?;
            let new_q = QName::new(q.schema.clone(), to.clone());
            if old.tables.contains_key(&new_q) {
                return Err(Error::usage(format!(
                    "--rename-table: table {new_q} already exists in the migrations"
                )));
            }
            moves.push(TableMove {
                from: q.clone(),
                to: new_q,
            });
            out.push(Rename::Table {
                from: q,
                to: to.clone(),
            });
        }
    }
    for arg in parsed {
        if let RenameArg::Column { table, from, to } = arg {
            out.push(resolve_column(old, &moves, table, from, to)?);
        }
    }
    Ok(out)
}

/// A column rename; `t` may name a table by its new name (renamed by `--rename-table`).
fn resolve_column(
    old: &Schema,
    moves: &[TableMove],
    t: &str,
    from: &str,
    to: &str,
) -> Result<Rename> {
    let q = match find_table(old, t) {
        Some(q) => q,
        None => moves
            .iter()
            .find(|m| m.to.name == *t || format!("{}.{}", m.to.schema, m.to.name) == *t)
            .map(|m| m.from.clone())
            .ok_or_else(|| Error::usage(format!("--rename: the migrations have no table '{t}'")))?,
    };
    let table = &old.tables[&q];
    if table.column(from).is_none() {
        return Err(Error::usage(format!(
            "--rename: table {q} has no column '{from}' in the migrations"
        )));
    }
    if table.column(to).is_some() {
        return Err(Error::usage(format!(
            "--rename: table {q} already has a column '{to}'"
        )));
    }
    let current = moves
        .iter()
        .find(|m| m.from == q)
        .map(|m| m.to.clone())
        .unwrap_or(q);
    Ok(Rename::Column {
        table: current,
        from: from.to_string(),
        to: to.to_string(),
    })
}

/// The rename statements (up), and their reverse in reverse order (down).
fn rename_changes(renames: &[Rename]) -> RenameChanges {
    let mut c = RenameChanges::default();
    for r in renames {
        match r {
            Rename::Table { from, to } => {
                c.up.push(Change::RenameTable {
                    from: from.clone(),
                    to: to.clone(),
                    reverting: false,
                });
                c.down.push(Change::RenameTable {
                    from: QName::new(from.schema.clone(), to.clone()),
                    to: from.name.clone(),
                    reverting: true,
                });
            }
            Rename::Column { table, from, to } => {
                c.up.push(Change::RenameColumn {
                    table: table.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    reverting: false,
                });
                c.down.push(Change::RenameColumn {
                    table: table.clone(),
                    from: to.clone(),
                    to: from.clone(),
                    reverting: true,
                });
            }
        }
    }
    c.down.reverse();
    c
}

fn sql_text(changes: &[Change]) -> String {
    changes.iter().map(|c| format!("{};\n", c.sql())).collect()
}

/// Resolves the renames against the replay (`old`), and reads the replay as it is with them
/// applied (they are undone right after). Returns that schema and the rename changes.
pub(super) fn apply_renames(
    ws: &Workspace,
    client: &mut Client,
    parsed: &[RenameArg],
    old: &Schema,
) -> Result<(Schema, RenameChanges)> {
    let renames = resolve_renames(parsed, old)?;
    let changes = rename_changes(&renames);
    if renames.is_empty() {
        return Ok((old.clone(), changes));
    }
    run_sql(client, &sql_text(&changes.up), "cannot apply the renames")?;
    let renamed = ws.read(client)?;
    run_sql(client, &sql_text(&changes.down), "cannot undo the renames")?;
    Ok((renamed, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_arguments_are_parsed() {
        let o = AutogenOptions {
            renames: vec!["docs.title=name".into(), "s.t.a=b".into()],
            table_renames: vec!["old=new".into()],
            ..Default::default()
        };
        assert_eq!(
            parse_renames(&o).unwrap(),
            vec![
                RenameArg::Table {
                    from: "old".into(),
                    to: "new".into()
                },
                RenameArg::Column {
                    table: "docs".into(),
                    from: "title".into(),
                    to: "name".into()
                },
                RenameArg::Column {
                    table: "s.t".into(),
                    from: "a".into(),
                    to: "b".into()
                }
            ]
        );
        let bad = AutogenOptions {
            renames: vec!["title=name".into()],
            ..Default::default()
        };
        assert!(parse_renames(&bad)
            .unwrap_err()
            .message
            .contains("TABLE.OLD=NEW"));
    }
}
