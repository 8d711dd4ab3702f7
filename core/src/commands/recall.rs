//! `migrate-check --recall <table>.<column>`: connects and measures the recall of the column's
//! ANN index ([`crate::db::recall`], which the run's `-- check: recall` steps use too).

use crate::config::Settings;
pub use crate::db::recall::{operator_for, percentile, query_recall, RecallOptions, RecallReport};
use crate::error::Result;

/// Measures the recall of the index on `opts.target` through a connection of its own.
pub fn recall(settings: &Settings, opts: &RecallOptions, app: &str) -> Result<RecallReport> {
    let url = settings.require_url()?;
    let mut client = crate::db::connect(url, app)?;
    crate::db::recall::measure(&mut client, opts)
}
