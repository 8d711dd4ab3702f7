//! One module per command: typed options in, a typed report out. The binaries parse
//! arguments into these options and print the reports through `output`; an application can
//! call the same functions.

pub mod check;
pub mod history;
pub mod import;
pub mod lint;
pub mod recall;
pub mod revision;
pub mod roundtrip;
pub mod vector_queries;
pub mod vector_swap;
pub mod wait;
