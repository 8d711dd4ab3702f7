//! How reports look: `text` for people (the small formatting helpers every command shares)
//! and `json` for programs (stable, documented shapes). Commands return typed reports; only
//! this module turns them into words.

pub mod check;
pub mod fleet;
pub mod import;
pub mod json;
pub mod lint;
pub mod recall;
pub mod text;
