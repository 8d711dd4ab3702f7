//! Migrating at application start-up, as an API does from its start-up (lifespan) hook: read the
//! same configuration the binaries read, see what is pending, apply it, log the result.
//!
//! Run: `DATABASE_URL=postgresql://... cargo run -p retort --example migrate_at_startup`
use retort::config::{Env, Overrides, Settings};
use retort::{Migrator, RunOptions};

fn migrate() -> retort::Result<()> {
    // flags > environment > .env, exactly like the migrate-* binaries
    let settings = Settings::resolve(&Overrides::default(), &Env::load(None)?)?;
    let mut migrator = Migrator::open(&settings, "my-api")?;
    let plan = migrator.plan_upgrade("heads")?;
    if plan.is_empty() {
        println!(
            "database schema is current ({})",
            retort::output::text::heads_text(&plan.start_heads)
        );
        return Ok(());
    }
    println!("applying {} migration(s)", plan.steps.len());
    // The run takes the migration lock, so several replicas starting at once apply each
    // revision exactly once; the others wait and then find nothing to do.
    let report = migrator.upgrade("heads", &RunOptions::default())?;
    println!(
        "database now at {}",
        retort::output::text::heads_text(&report.end_heads)
    );
    Ok(())
}

fn main() {
    if let Err(e) = migrate() {
        eprintln!("migration failed: {e}");
        std::process::exit(e.exit_code());
    }
}
