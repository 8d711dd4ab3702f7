//! Every statement retort sends that returns rows or takes parameters goes through here, as the
//! unnamed statement of the extended protocol (`query_typed`: Parse, Bind, Execute and Sync in
//! one round trip, parameter types given here, nothing left prepared on the server). Statements
//! without rows or parameters go by the simple protocol (`batch_execute`), and transactions
//! begin and end by simple query too.
//!
//! Never the driver's `query` / `execute` / `prepare`: they prepare NAMED statements ("s0",
//! "s1", …) that stay on the server connection, and a transaction-pooling pooler (PgBouncer,
//! pgcat, Supavisor, RDS Proxy) hands that connection to other clients between transactions,
//! which then fail with `42P05 prepared statement "s0" already exists` or `26000 … does not
//! exist`. `core/clippy.toml` forbids those methods in this crate.
//!
//! Result columns must be of built-in types: for any other type the driver looks the type up
//! with a prepared statement of its own (cast to text instead, as the catalog readers do).

use postgres::types::{ToSql, Type};
use postgres::{Error, GenericClient, Row};

/// A parameter and its type, e.g. `(&name, Type::TEXT)`.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// The rows of `sql`.
pub fn rows(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, Error> {
    client.query_typed(sql, params)
}

/// The one row of `sql` (an error when there are none or several).
pub fn one(client: &mut impl GenericClient, sql: &str, params: &[Param<'_>]) -> Result<Row, Error> {
    client.query_typed_one(sql, params)
}
