//! What only the command line needs, shared by every `migrate-*` binary: clap's flags, the
//! logging set-up, prompting, and the one place where errors are printed and turned into exit
//! codes. The core crate (`retort`) has none of it, so an application that migrates at
//! start-up does not pull in clap or a logger.

pub mod cli;
pub mod progress;
