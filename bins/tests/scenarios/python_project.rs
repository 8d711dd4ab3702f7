//! A Python project: retort's settings in `pyproject.toml`'s `[tool.retort]`, found from the
//! working directory upward, and `retort.toml` winning when both exist.

use crate::common::*;

const REQUIRED_COLUMN: &str = "ALTER TABLE chunks ADD COLUMN n bigint NOT NULL;";

fn project() -> Scenario {
    let s = Scenario::new();
    // the repository's root: the search for pyproject.toml stops here
    std::fs::create_dir(s.path(".git")).unwrap();
    s.revision(
        "001",
        "",
        "CREATE TABLE chunks (id bigint PRIMARY KEY);",
        "DROP TABLE chunks;",
    );
    s.revision(
        "002",
        "001",
        REQUIRED_COLUMN,
        "ALTER TABLE chunks DROP COLUMN n;",
    );
    s
}

#[test]
fn tool_retort_in_pyproject_sets_the_lint_levels_from_any_subdirectory() {
    let s = project();
    // no project file: adding a NOT NULL column without a default is an error
    let r = s
        .run_env("migrate-check", &["--offline", "--lint"], &[])
        .code(1);
    assert!(
        r.stdout.contains("error  adding-required-field"),
        "{}",
        r.stdout
    );

    s.write(
        "pyproject.toml",
        "[project]\nname = \"ragapp\"\n\n[tool.ruff]\nexclude = [\"migrations\"]\n\n[tool.retort.lint]\nadding-required-field = \"off\"\n",
    );
    s.run_env("migrate-check", &["--offline", "--lint"], &[])
        .ok();
    // from a subdirectory of the project, as pytest or an IDE runs it
    s.write("app/tests/.keep", "");
    let mut cmd = std::process::Command::new(bin_path("migrate-check"));
    cmd.args(["--offline", "--lint", "--dir", "../../migrations"])
        .current_dir(s.path("app/tests"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    Run::from(cmd.output().unwrap()).ok();

    // a typo names pyproject.toml, the line and the table as it is written there
    s.write(
        "pyproject.toml",
        "[project]\nname = \"ragapp\"\n\n[tool.retort.lint]\nadding-required-feild = \"off\"\n",
    );
    let r = s
        .run_env("migrate-check", &["--offline", "--lint"], &[])
        .code(2);
    assert!(
        r.stderr.contains(
            "pyproject.toml:5: unknown lint rule `adding-required-feild` in [tool.retort.lint]"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn retort_toml_wins_over_pyproject_and_says_so() {
    let s = project();
    s.write(
        "pyproject.toml",
        "[tool.retort.lint]\nadding-required-field = \"off\"\n",
    );
    s.write("retort.toml", "[lint]\nmissing-down = \"error\"\n");
    // retort.toml is read whole: pyproject's level does not apply
    let r = s
        .run_env("migrate-check", &["--offline", "--lint"], &[])
        .code(1);
    assert!(
        r.stdout.contains("error  adding-required-field"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("retort.toml is used and [tool.retort] in pyproject.toml is ignored"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("is ignored").count(), 1, "{}", r.stderr);
}

#[test]
fn filters_in_pyproject_keep_tables_out_of_the_drift_check() {
    let s = project();
    s.run("migrate-up", &[]).ok();
    // a table the application's library manages itself, and the declarative schema without it
    s.db.execute("CREATE TABLE langchain_pg_embedding (id bigint)");
    s.write(
        "schema.sql",
        "CREATE TABLE chunks (id bigint PRIMARY KEY, n bigint NOT NULL);\n",
    );
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout
            .contains("drop table public.langchain_pg_embedding"),
        "{}",
        r.all()
    );
    s.write(
        "pyproject.toml",
        "[tool.retort.filters]\nexclude = [\"langchain_*\"]\n",
    );
    let r = s.run("migrate-check", &[]).ok();
    assert!(
        r.stdout.contains("public.langchain_pg_embedding"),
        "named as ignored: {}",
        r.all()
    );
}
