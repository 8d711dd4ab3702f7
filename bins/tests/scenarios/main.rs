//! The end-to-end scenarios, one test binary: every module runs the real migrate-* binaries
//! (or the core library) against a real PostgreSQL with pgvector, each test in a database of
//! its own (see `common`). `make test` starts the server (scripts/pg.sh run).
//!
//! The autogenerate benchmarks (`autogen_bench`) are ignored tests: scripts/bench-autogen.sh
//! runs them in release mode.

mod autogen_support;
mod common;

mod autogen_bench;
mod autogen_deployments;
mod autogen_objects;
mod autogen_pgvector;
mod autogen_routines;
mod autogen_workflow;
mod backfill_workers;
mod backfills;
mod connection;
mod containers;
mod fleet;
mod grammar;
mod graph_scenarios;
mod hardening;
mod interrupts;
mod lint;
mod lock_retries;
mod long_history;
mod pooler;
mod program_steps;
mod progress;
mod python_project;
mod refusals;
mod replicas;
mod scripts_and_tools;
mod secrets;
mod staging;
mod state_and_config;
mod trust;
mod upgrade_downgrade;
mod vector_builds;
mod vector_swap;
