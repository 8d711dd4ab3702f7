//! Scenarios: creating revisions, checking, history output, and bad script files.
use crate::common::*;

#[test]
fn revisions_are_numbered_and_chained() {
    let s = Scenario::new();
    let r = s
        .run_env("migrate-revision", &["-m", "create users"], &[])
        .ok();
    assert!(r.stdout.contains("001_create_users.sql"), "{}", r.stdout);
    s.run_env("migrate-revision", &["-m", "add email"], &[])
        .ok();
    let text = std::fs::read_to_string(s.migrations().join("002_add_email.sql")).unwrap();
    assert!(
        text.starts_with(
            "-- revision: 002\n-- down_revision: 001\n-- message: add email\n-- created: "
        ),
        "{text}"
    );
    assert!(text.contains("-- migrate:up") && text.contains("-- migrate:down"));
    // a non-transactional revision is marked as such
    s.run_env(
        "migrate-revision",
        &["-m", "index", "--non-transactional"],
        &[],
    )
    .ok();
    let text = std::fs::read_to_string(s.migrations().join("003_index.sql")).unwrap();
    assert!(text.contains("-- transactional: false"), "{text}");
    // no message and no terminal: an error, and no file
    let r = s.run_env("migrate-revision", &[], &[]).code(2);
    assert!(r.stderr.contains("-m"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(s.migrations()).unwrap().count(), 3);
    // ids that Alembic's VARCHAR(32) cannot hold, or with reserved characters, are refused
    let r = s
        .run_env(
            "migrate-revision",
            &["-m", "x", "--rev-id", &"a".repeat(33)],
            &[],
        )
        .code(2);
    assert!(r.stderr.contains("32"), "{}", r.stderr);
    s.run_env("migrate-revision", &["-m", "x", "--rev-id", "a-b"], &[])
        .code(2);
    let r = s
        .run_env("migrate-revision", &["-m", "x", "--random-id"], &[])
        .ok();
    assert!(r.stdout.contains("_x.sql"));
}

/// The 12-hex id of the file `migrate-revision` reported writing (`migrations/<id>_<slug>.sql`).
fn written_id(stdout: &str, slug: &str) -> String {
    let end = stdout
        .find(&format!("_{slug}.sql"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let id = &stdout[stdout[..end].rfind('/').unwrap() + 1..end];
    assert!(
        id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a hex id: {id} ({stdout})"
    );
    id.to_string()
}

#[test]
fn new_revisions_follow_an_imported_histories_hex_ids() {
    let s = Scenario::new();
    // what migrate-import writes for an Alembic history
    s.revision(
        "4b1e0c9a7d21",
        "",
        "CREATE TABLE a (id int);",
        "DROP TABLE a;",
    );
    s.revision(
        "2f1c8e6b3a90",
        "4b1e0c9a7d21",
        "CREATE TABLE b (id int);",
        "DROP TABLE b;",
    );
    let r = s
        .run_env("migrate-revision", &["-m", "add titles"], &[])
        .ok();
    let first = written_id(&r.stdout, "add_titles");
    assert!(!s.migrations().join("001_add_titles.sql").exists());
    let text =
        std::fs::read_to_string(s.migrations().join(format!("{first}_add_titles.sql"))).unwrap();
    assert!(text.contains("-- down_revision: 2f1c8e6b3a90"), "{text}");
    // a branch, and its merge: hex too
    let r = s
        .run_env(
            "migrate-revision",
            &["-m", "side", "--head", "2f1c8e6b3a90", "--splice"],
            &[],
        )
        .ok();
    let side = written_id(&r.stdout, "side");
    let r = s
        .run_env(
            "migrate-revision",
            &["--merge", "heads", "-m", "merge"],
            &[],
        )
        .ok();
    let merge = written_id(&r.stdout, "merge");
    let text = std::fs::read_to_string(s.migrations().join(format!("{merge}_merge.sql"))).unwrap();
    assert!(
        text.contains(&format!("-- down_revision: {first}, {side}"))
            || text.contains(&format!("-- down_revision: {side}, {first}")),
        "{text}"
    );
    s.run_env("migrate-check", &["--offline"], &[]).ok();
    // retort.toml fixes the choice
    s.write("retort.toml", "[revision]\nids = \"sequential\"\n");
    let r = s.run_env("migrate-revision", &["-m", "numbered"], &[]).ok();
    assert!(r.stdout.contains("001_numbered.sql"), "{}", r.stdout);
    s.write("retort.toml", "[revision]\nids = \"uuid\"\n");
    let r = s.run_env("migrate-revision", &["-m", "x"], &[]).code(2);
    assert!(
        r.stderr
            .contains("retort.toml:2: `ids` must be \"hex\" or \"sequential\""),
        "{}",
        r.stderr
    );
}

#[test]
fn several_heads_need_head_or_merge() {
    let s = Scenario::new();
    s.run_env("migrate-revision", &["-m", "root"], &[]).ok();
    s.run_env("migrate-revision", &["-m", "two"], &[]).ok();
    // branching from a non-head needs --splice
    let r = s
        .run_env("migrate-revision", &["-m", "side", "--head", "001"], &[])
        .code(2);
    assert!(r.stderr.contains("--splice"), "{}", r.stderr);
    s.run_env(
        "migrate-revision",
        &["-m", "side", "--head", "001", "--splice"],
        &[],
    )
    .ok();
    let r = s.run_env("migrate-revision", &["-m", "next"], &[]).code(2);
    assert!(
        r.stderr.contains("Multiple heads") && r.stderr.contains("--merge heads"),
        "{}",
        r.stderr
    );
    let r = s.run_env("migrate-check", &["--offline"], &[]).code(1);
    assert!(r.stdout.contains("multiple_heads"), "{}", r.stdout);
    s.run_env(
        "migrate-check",
        &["--offline", "--allow-multiple-heads"],
        &[],
    )
    .ok();
    s.run_env(
        "migrate-revision",
        &["--merge", "heads", "-m", "merge"],
        &[],
    )
    .ok();
    let text = std::fs::read_to_string(s.migrations().join("004_merge.sql")).unwrap();
    assert!(text.contains("-- down_revision: 002, 003"), "{text}");
    s.run_env("migrate-check", &["--offline"], &[]).ok();
    // a new root
    s.run_env(
        "migrate-revision",
        &["-m", "other root", "--head", "base"],
        &[],
    )
    .ok();
    let text = std::fs::read_to_string(s.migrations().join("005_other_root.sql")).unwrap();
    assert!(!text.contains("down_revision"), "{text}");
}

#[test]
fn check_exit_codes_tell_problems_from_connection_failures() {
    let s = Scenario::with_example();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("pending") && r.stdout.contains("4 revisions pending"),
        "{}",
        r.stdout
    );
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &[]).ok();
    assert!(r.stdout.starts_with("OK"), "{}", r.stdout);
    s.run_env(
        "migrate-check",
        &[],
        &[("DATABASE_URL", "postgresql://u:p@127.0.0.1:1/x")],
    )
    .code(3);
    s.run("migrate-check", &["--no-such-flag"]).code(2);
    s.run_env("migrate-check", &["--offline"], &[]).ok();
}

#[test]
fn history_current_and_branches_in_alembics_formats() {
    let s = Scenario::new();
    s.revision("1a2b3c4d5e6f", "", "SELECT 1;", "SELECT 1;");
    s.revision("2b3c4d5e6f70", "1a2b3c4d5e6f", "SELECT 1;", "SELECT 1;");
    s.revision("3c4d5e6f7081", "2b3c4d5e6f70", "SELECT 1;", "SELECT 1;");
    s.revision("4d5e6f708192", "2b3c4d5e6f70", "SELECT 1;", "SELECT 1;");
    s.revision(
        "5e6f708192a3",
        "3c4d5e6f7081, 4d5e6f708192",
        "SELECT 1;",
        "SELECT 1;",
    );
    let r = s.run_env("migrate-history", &[], &[]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "3c4d5e6f7081, 4d5e6f708192 -> 5e6f708192a3 (head) (mergepoint), rev 5e6f708192a3"
    );
    assert_eq!(
        lines[3],
        "1a2b3c4d5e6f -> 2b3c4d5e6f70 (branchpoint), rev 2b3c4d5e6f70"
    );
    assert_eq!(lines[4], "<base> -> 1a2b3c4d5e6f, rev 1a2b3c4d5e6f");
    assert_eq!(lines.len(), 5);
    let r = s.run_env("migrate-history", &["--branches"], &[]).ok();
    assert_eq!(r.stdout, "2b3c4d5e6f70 (branchpoint)\n             -> 3c4d5e6f7081\n             -> 4d5e6f708192\n\n");
    s.run("migrate-up", &["3c4d"]).ok();
    let r = s.run("migrate-history", &["--indicate-current"]).ok();
    assert!(
        r.stdout
            .contains("2b3c4d5e6f70 -> 3c4d5e6f7081 (current), rev 3c4d5e6f7081"),
        "{}",
        r.stdout
    );
    let r = s.run("migrate-current", &[]).ok();
    assert_eq!(r.stdout, "3c4d5e6f7081\n");
    let r = s.run("migrate-history", &["-v", "--show", "5e6f"]).ok();
    assert!(
        r.stdout.contains("Rev: 5e6f708192a3 (head) (mergepoint)")
            && r.stdout.contains("Merges: 3c4d5e6f7081, 4d5e6f708192"),
        "{}",
        r.stdout
    );
    let r = s.run_env("migrate-history", &["-r", "2b3c:3c4d"], &[]).ok();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[test]
fn three_mistakes_in_two_scripts_are_reported_in_one_run() {
    let s = Scenario::new();
    s.revision(
        "4b1e0c9a7d21",
        "",
        "CREATE TABLE a (id int);",
        "DROP TABLE a;",
    );
    // a misspelt key and a bad value in one script
    s.write(
        "migrations/2f1c8e6b3a90_b.sql",
        "-- revision: 2f1c8e6b3a90\n-- down_revision: 4b1e0c9a7d21\n-- mesage: b\n-- transactional: no\n\n-- migrate:up\nSELECT 1;\n",
    );
    // a typo'd parent in another
    s.write(
        "migrations/9c3d5e7f1a2b_c.sql",
        "-- revision: 9c3d5e7f1a2b\n-- down_revision: 2f1c8e6b3a09\n\n-- migrate:up\nSELECT 1;\n",
    );
    for bin in ["migrate-up", "migrate-history"] {
        let r = s.run(bin, &[]).code(6);
        assert!(
            r.stderr.contains("3 problems in the migration scripts"),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(
                "2f1c8e6b3a90_b.sql:3: unknown header key 'mesage' (did you mean 'message'?)"
            ),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(
                "2f1c8e6b3a90_b.sql:4: transactional must be 'true' or 'false', not 'no'"
            ),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("9c3d5e7f1a2b_c.sql:2: revision 9c3d5e7f1a2b has down_revision '2f1c8e6b3a09', but no revision has that id (did you mean '2f1c8e6b3a90'?)"),
            "{bin}: {}",
            r.stderr
        );
    }
    let r = s.run("migrate-check", &["--offline"]).code(1);
    assert!(r.stdout.contains("3 problems"), "{}", r.stdout);
    assert_eq!(s.db.tables(), Vec::<String>::new());
}

#[test]
fn broken_scripts_are_reported_with_file_and_line_and_change_nothing() {
    let s = Scenario::new();
    s.revision("r1", "", "CREATE TABLE t (id int);", "DROP TABLE t;");
    s.write(
        "migrations/r2_typo.sql",
        "-- revision: r2\n-- down_revison: r1\n\n-- migrate:up\nSELECT 1;\n",
    );
    let r = s.run("migrate-up", &[]).code(6);
    assert!(
        r.stderr.contains("r2_typo.sql:2") && r.stderr.contains("down_revison"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.tables(), Vec::<String>::new());
    // duplicate ids name both files
    s.write(
        "migrations/r2_typo.sql",
        "-- revision: r1\n\n-- migrate:up\nSELECT 1;\n",
    );
    let r = s.run_env("migrate-check", &["--offline"], &[]).code(1);
    assert!(
        r.stdout.contains("r1_x.sql") && r.stdout.contains("r2_typo.sql"),
        "{}",
        r.stdout
    );
    // a missing parent
    s.write(
        "migrations/r2_typo.sql",
        "-- revision: r2\n-- down_revision: nope\n\n-- migrate:up\nSELECT 1;\n",
    );
    let r = s.run("migrate-up", &[]).code(6);
    assert!(
        r.stderr.contains("r2_typo.sql") && r.stderr.contains("nope"),
        "{}",
        r.stderr
    );
    // a cycle
    s.write(
        "migrations/r2_typo.sql",
        "-- revision: r2\n-- down_revision: r3\n\n-- migrate:up\nSELECT 1;\n",
    );
    s.write(
        "migrations/r3_x.sql",
        "-- revision: r3\n-- down_revision: r2\n\n-- migrate:up\nSELECT 1;\n",
    );
    let r = s.run("migrate-up", &[]).code(6);
    assert!(r.stderr.contains("cycle"), "{}", r.stderr);
    // not UTF-8
    std::fs::remove_file(s.migrations().join("r3_x.sql")).unwrap();
    std::fs::write(
        s.migrations().join("r2_typo.sql"),
        b"-- revision: r2\n-- down_revision: r1\n\n-- migrate:up\nSELECT '\xff';\n",
    )
    .unwrap();
    let r = s.run("migrate-up", &[]).code(6);
    assert!(
        r.stderr.contains("r2_typo.sql:5") && r.stderr.contains("UTF-8"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.tables(), Vec::<String>::new());
    // a missing up section
    std::fs::write(
        s.migrations().join("r2_typo.sql"),
        "-- revision: r2\n-- down_revision: r1\n",
    )
    .unwrap();
    let r = s.run("migrate-up", &[]).code(6);
    assert!(
        r.stderr.contains("r2_typo.sql") && r.stderr.contains("migrate:up"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("panicked"), "{}", r.all());
}

/// A script the binary's user cannot read stops everything, named; it is not skipped. Run
/// as an unprivileged user, so the permissions hold when the tests run as root.
#[test]
fn an_unreadable_script_is_reported_and_nothing_runs() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scenario::new();
    s.revision("r1", "", "CREATE TABLE t1 (id int);", "DROP TABLE t1;");
    s.revision("r2", "r1", "CREATE TABLE t2 (id int);", "DROP TABLE t2;");
    let r2 = s.migrations().join("r2_x.sql");
    std::fs::set_permissions(&r2, std::fs::Permissions::from_mode(0o000)).unwrap();
    let r = s.run_unprivileged("migrate-up", &[]).code(10); // an I/O error (docs/exit-codes.md)
    assert!(
        r.stderr
            .contains("migrations/r2_x.sql: cannot read the file: Permission denied")
            && r.stderr.contains("check the file's permissions"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.tables(), Vec::<String>::new(), "not even r1 ran");
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    // readable again, the same user applies both: it was the permissions
    std::fs::set_permissions(&r2, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.run_unprivileged("migrate-up", &[]).ok();
    assert_eq!(s.db.tables(), vec!["t1", "t2"]);
}

#[test]
fn logging_is_controlled_by_quiet_verbose_and_rust_log() {
    let s = Scenario::with_example();
    let r = s.run("migrate-up", &["001", "-q"]).ok();
    assert_eq!(r.stderr, "", "-q prints no progress lines");
    let r = s.run("migrate-up", &["002"]).ok();
    assert!(
        r.stderr
            .contains("INFO  [retort] Running upgrade 001 -> 002"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("done 002 in "),
        "each step's duration: {}",
        r.stderr
    );
    let r = s
        .run_env(
            "migrate-up",
            &["003"],
            &[("DATABASE_URL", &s.db.url), ("RUST_LOG", "retort=warn")],
        )
        .ok();
    assert_eq!(r.stderr, "", "RUST_LOG overrides the default level");
    // never any terminal colour codes
    let r = s
        .run_env(
            "migrate-up",
            &["nope"],
            &[("DATABASE_URL", &s.db.url), ("NO_COLOR", "1")],
        )
        .code(2);
    assert!(!r.all().contains('\u{1b}'), "{}", r.all());
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn revision_head_label_at_head_merge_dedup_and_section_comments() {
    let s = Scenario::new();
    let rev = |args: &[&str]| s.run_env("migrate-revision", args, &[]).ok();
    let read = |name: &str| std::fs::read_to_string(s.migrations().join(name)).unwrap();
    rev(&["-m", "root"]);
    rev(&["-m", "feat", "--branch-label", "feat"]);
    rev(&["-m", "more", "--non-transactional"]);
    // LABEL@head is the branch's head (003), not the revision declaring the label (002)
    rev(&["-m", "next", "--head", "feat@head"]);
    assert!(
        read("004_next.sql").contains("-- down_revision: 003\n"),
        "{}",
        read("004_next.sql")
    );
    // several heads under the label: refused, saying so
    rev(&["-m", "side", "--head", "002", "--splice"]);
    let r = s
        .run_env("migrate-revision", &["-m", "x", "--head", "feat@head"], &[])
        .code(2);
    assert!(r.stderr.contains("several revisions"), "{}", r.stderr);
    // a head named twice (once through `heads`) is listed once
    rev(&["-m", "merge", "--merge", "heads", "005"]);
    let merge = read("006_merge.sql");
    assert!(merge.contains("-- down_revision: 004, 005\n"), "{merge}");
    s.run_env("migrate-check", &["--offline"], &[]).ok();
    // new hand-written sections say what goes in them; a merge's stay empty
    let root = read("001_root.sql");
    assert!(
        root.ends_with(
            "-- migrate:up\n-- SQL that applies the change\n\n-- migrate:down\n\
             -- SQL that reverts it (leave only this comment if nothing needs reverting)\n"
        ),
        "{root}"
    );
    assert!(
        merge.ends_with("-- migrate:up\n\n-- migrate:down\n"),
        "{merge}"
    );
    // comment-only sections run (transactional or not), both ways
    s.run("migrate-up", &["heads"]).ok();
    assert_eq!(s.db.version_rows(), vec!["006"]);
    s.run("migrate-down", &["base", "--yes"]).ok();
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
}

#[test]
fn history_heads_branches_and_show_as_json() {
    let s = Scenario::new();
    s.revision("a1", "", "SELECT 1;", "SELECT 1;");
    s.revision_with("b1", "a1", "-- branch_labels: feat\n", "SELECT 1;", "");
    s.revision("c1", "a1", "SELECT 1;", "SELECT 1;");
    let json = |args: &[&str]| -> serde_json::Value {
        let r = s.run_env("migrate-history", args, &[]).ok();
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    };
    let v = json(&["--heads", "--format", "json"]);
    assert_eq!(v["version"], 1);
    let heads: Vec<&str> = v["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_str().unwrap())
        .collect();
    assert_eq!(heads, ["b1", "c1"]);
    assert_eq!(
        v["revisions"][0]["branch_labels"],
        serde_json::json!(["feat"])
    );
    assert_eq!(v["revisions"][0]["is_head"], true);
    let v = json(&["--branches", "--format", "json"]);
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "branches": [{"revision": "a1", "children": ["b1", "c1"]}]})
    );
    let v = json(&["--show", "feat@head", "--format", "json"]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["revision"], "b1");
    assert_eq!(v["down_revisions"], serde_json::json!(["a1"]));
    assert_eq!(v["message"], "rev b1");
    // the text forms are unchanged
    let r = s.run_env("migrate-history", &["--heads"], &[]).ok();
    assert_eq!(r.stdout, "b1 (feat) (head)\nc1 (head)\n");
}

#[test]
fn history_line_without_message_has_no_trailing_comma() {
    let s = Scenario::new();
    s.write(
        "migrations/a_x.sql",
        "-- revision: a\n-- message:\n\n-- migrate:up\nSELECT 1;\n",
    );
    let r = s.run_env("migrate-history", &[], &[]).ok();
    assert_eq!(r.stdout, "<base> -> a (head)\n");
}

#[test]
fn hints_for_a_missing_directory_and_reserved_ids() {
    let s = Scenario::new();
    let r = s
        .run_env("migrate-history", &["--dir", "nope"], &[])
        .code(2);
    assert!(
        r.stderr.contains("mkdir") && r.stderr.contains("MIGRATIONS_DIR"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("migrate-init"), "{}", r.stderr);
    // `current` is a history-range keyword: not an id
    let r = s
        .run_env("migrate-revision", &["-m", "x", "--rev-id", "current"], &[])
        .code(2);
    assert!(r.stderr.contains("reserved"), "{}", r.stderr);
    // the hint states the rule that was applied
    let r = s
        .run_env("migrate-revision", &["-m", "x", "--rev-id", "a+b"], &[])
        .code(2);
    assert!(
        r.stderr.contains("'+'") && r.stderr.contains("whitespace"),
        "{}",
        r.stderr
    );
    let r = s
        .run_env("migrate-revision", &["-m", "x", "--rev-id", "a#b"], &[])
        .ok();
    assert!(r.stdout.contains("a#b_x.sql"), "{}", r.stdout);
}

#[test]
fn checksum_covers_transactional_and_parents_of_an_applied_script() {
    let s = Scenario::new();
    s.revision("r1", "", "CREATE TABLE t (id int);", "DROP TABLE t;");
    s.revision(
        "r2",
        "r1",
        "CREATE INDEX t_id ON t (id);",
        "DROP INDEX t_id;",
    );
    s.run("migrate-up", &[]).ok();
    let path = s.migrations().join("r2_x.sql");
    let original = std::fs::read_to_string(&path).unwrap();
    // the message is not part of it
    std::fs::write(&path, original.replace("rev r2", "index on t")).unwrap();
    s.run("migrate-check", &[]).ok();
    // switching to non-transactional is noticed
    std::fs::write(
        &path,
        original.replace("-- migrate:up", "-- transactional: false\n-- migrate:up"),
    )
    .unwrap();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(r.stdout.contains("checksum_mismatch"), "{}", r.stdout);
    let r = s.run("migrate-up", &[]).code(7);
    assert!(r.stderr.contains("r2_x.sql"), "{}", r.stderr);
    std::fs::write(&path, &original).unwrap();
    s.run("migrate-check", &[]).ok();
}

/// Sets the file's modification time an hour back: a script that has settled (the header
/// index does not keep files modified in the last seconds).
fn settle(path: &std::path::Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

#[test]
fn history_and_current_keep_a_header_index_that_follows_every_edit() {
    let s = Scenario::new();
    s.revision("001", "", "CREATE TABLE a (id int);", "DROP TABLE a;");
    s.revision("002", "001", "CREATE TABLE b (id int);", "DROP TABLE b;");
    for rev in ["001", "002"] {
        settle(&s.migrations().join(format!("{rev}_x.sql")));
    }
    s.run("migrate-up", &[]).ok();
    let index_dir = s.path(".cache/retort");
    let r = s.run("migrate-history", &[]).ok();
    assert_eq!(
        r.stdout,
        "001 -> 002 (head), rev 002\n<base> -> 001, rev 001\n"
    );
    let index: Vec<_> = std::fs::read_dir(&index_dir).unwrap().collect();
    assert_eq!(index.len(), 1, "one index for the migrations directory");
    let text = std::fs::read_to_string(index[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains("\"002_x.sql\""), "{text}");
    // an edit (here: the message) is seen at once, also by migrate-current
    let path = s.migrations().join("002_x.sql");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("-- message: rev 002", "-- message: the b table");
    std::fs::write(&path, edited).unwrap();
    let r = s.run("migrate-history", &[]).ok();
    assert!(
        r.stdout.starts_with("001 -> 002 (head), the b table\n"),
        "{}",
        r.stdout
    );
    let r = s.run("migrate-current", &["--detail"]).ok();
    assert!(r.stdout.contains("the b table"), "{}", r.stdout);
    // a script broken after it was indexed fails as without the index
    std::fs::write(
        &path,
        "-- revision: 002\n-- down_revison: 001\n\n-- migrate:up\n",
    )
    .unwrap();
    let r = s.run("migrate-history", &[]).code(6);
    assert!(r.stderr.contains("002_x.sql:2"), "{}", r.stderr);
    // MIGRATE_CACHE_DIR=off: no index written
    std::fs::remove_dir_all(&index_dir).unwrap();
    std::fs::write(
        &path,
        "-- revision: 002\n-- down_revision: 001\n\n-- migrate:up\nSELECT 1;\n",
    )
    .unwrap();
    let url = s.db.url.clone();
    s.run_env(
        "migrate-current",
        &[],
        &[("DATABASE_URL", &url), ("MIGRATE_CACHE_DIR", "off")],
    )
    .ok();
    assert!(!index_dir.exists());
}

#[test]
fn docs_commands_md_shows_each_binarys_help_as_it_is() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/commands.md"))
        .unwrap();
    for bin in COMMANDS {
        let out = std::process::Command::new(bin_path(bin))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        let section = doc
            .split(&format!("\n## {bin}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("docs/commands.md has no section {bin}"));
        let block = section
            .split("```text\n")
            .nth(1)
            .and_then(|b| b.split("\n```\n").next())
            .unwrap();
        assert_eq!(
            block,
            help.trim_end(),
            "docs/commands.md's {bin} --help is out of date"
        );
    }
}
