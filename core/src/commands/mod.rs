//! The commands that compose the core's parts (one module per command).

pub mod check;
