//! The version table: Alembic's `alembic_version(version_num varchar(32) primary key)`, holding
//! the current heads, written per step exactly as Alembic writes it, so a database Alembic
//! migrated is taken over as it is. The SQL text here is also what offline mode prints.

use super::{db_error, query, quote_ident, quote_literal};
use crate::config::VersionTableName;
use crate::error::Result;
use crate::plan::VersionOp;
use postgres::types::Type;
use postgres::GenericClient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    pub name: VersionTableName,
}

impl VersionTable {
    pub fn new(name: VersionTableName) -> Self {
        VersionTable { name }
    }

    /// `alembic_version` or `"schema".alembic_version`, as written in SQL.
    pub fn qualified(&self) -> String {
        let table = ident(&self.name.name);
        match &self.name.schema {
            Some(s) => format!("{}.{}", ident(s), table),
            None => table,
        }
    }

    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE {} (\n    version_num VARCHAR(32) NOT NULL,\n    CONSTRAINT {}_pkc PRIMARY KEY (version_num)\n);",
            self.qualified(),
            self.name.name
        )
    }

    /// The statement for one write, in Alembic's offline format.
    pub fn op_sql(&self, op: &VersionOp) -> String {
        let t = self.qualified();
        let col = format!("{}.version_num", ident(&self.name.name));
        match op {
            VersionOp::Insert(r) => format!(
                "INSERT INTO {t} (version_num) VALUES ({});",
                quote_literal(r)
            ),
            VersionOp::Update { from, to } => format!(
                "UPDATE {t} SET version_num={} WHERE {col} = {};",
                quote_literal(to),
                quote_literal(from)
            ),
            VersionOp::Delete(r) => format!("DELETE FROM {t} WHERE {col} = {};", quote_literal(r)),
        }
    }

    /// Whether the table exists (looked up through `to_regclass`, honouring `search_path` when
    /// no schema is configured).
    pub fn exists(&self, client: &mut impl GenericClient) -> Result<bool> {
        let row = query::one(
            client,
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&self.qualified(), Type::TEXT)],
        )
        .map_err(|e| db_error("cannot look up the version table", &e))?;
        Ok(row.get(0))
    }

    /// The current heads, sorted; empty when the table does not exist.
    pub fn read(&self, client: &mut impl GenericClient) -> Result<Vec<String>> {
        if !self.exists(client)? {
            return Ok(Vec::new());
        }
        let rows = query::rows(
            client,
            &format!(
                "SELECT version_num FROM {} ORDER BY version_num",
                self.qualified()
            ),
            &[],
        )
        .map_err(|e| db_error(&format!("cannot read {}", self.qualified()), &e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Creates the table (and its schema) when missing.
    pub fn ensure(&self, client: &mut impl GenericClient) -> Result<()> {
        if self.exists(client)? {
            return Ok(());
        }
        if let Some(s) = &self.name.schema {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(s)))
                .map_err(|e| db_error("cannot create the version table's schema", &e))?;
        }
        client
            .batch_execute(&self.create_sql())
            .map_err(|e| db_error(&format!("cannot create {}", self.qualified()), &e))
    }

    pub fn apply(&self, client: &mut impl GenericClient, op: &VersionOp) -> Result<()> {
        client
            .batch_execute(&self.op_sql(op))
            .map_err(|e| db_error(&format!("cannot write {}", self.qualified()), &e))
    }
}

/// Plain lowercase identifiers are written bare (as Alembic does); others are quoted.
fn ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_match_alembic_offline_output() {
        let v = VersionTable::new(VersionTableName::default());
        assert_eq!(
            v.op_sql(&VersionOp::Insert("1a2b".into())),
            "INSERT INTO alembic_version (version_num) VALUES ('1a2b');"
        );
        assert_eq!(
            v.op_sql(&VersionOp::Update { from: "1a2b".into(), to: "2b3c".into() }),
            "UPDATE alembic_version SET version_num='2b3c' WHERE alembic_version.version_num = '1a2b';"
        );
        assert_eq!(
            v.op_sql(&VersionOp::Delete("3c4d".into())),
            "DELETE FROM alembic_version WHERE alembic_version.version_num = '3c4d';"
        );
        assert!(v
            .create_sql()
            .contains("CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)"));
    }

    #[test]
    fn schema_and_odd_names_are_quoted() {
        let v = VersionTable::new(VersionTableName {
            schema: Some("Ops".into()),
            name: "versions".into(),
        });
        assert_eq!(v.qualified(), "\"Ops\".versions");
    }
}
