//! Long histories: a run whose one transaction would hold more locks than the server's lock
//! table is refused before its first statement, with the way out.
use crate::common::*;

#[test]
fn a_run_too_big_for_the_lock_table_is_refused_before_it_starts() {
    let s = Scenario::new();
    let size: i64 = s.db.strings(
        "SELECT (current_setting('max_locks_per_transaction')::int8 * (current_setting('max_connections')::int8
           + current_setting('autovacuum_max_workers')::int8 + 1 + current_setting('max_worker_processes')::int8
           + current_setting('max_wal_senders')::int8 + current_setting('max_prepared_transactions')::int8))::text",
    )[0]
    .parse()
    .unwrap();
    // 20 revisions of tables with a primary key and a text column: 5 lock entries each
    let per_revision = (size / 5 / 20 + 10) as usize;
    let mut down = String::new();
    for r in 0..20 {
        let rev = format!("r{r:02}");
        let sql: String = (0..per_revision)
            .map(|i| format!("CREATE TABLE t_{r}_{i} (id int PRIMARY KEY, note text);\n"))
            .collect();
        s.revision(&rev, &down, &sql, "SELECT 1;");
        down = rev;
    }

    let r = s.run("migrate-up", &[]).code(2);

    assert!(
        r.stderr.contains("more than the server's lock table holds")
            && r.stderr
                .contains(&format!("({size}: max_locks_per_transaction"))
            && r.stderr.contains("20 revisions")
            && r.stderr.contains("--transaction-per-migration"),
        "{}",
        r.stderr
    );
    assert_eq!(s.db.version_rows(), Vec::<String>::new());
    assert_eq!(s.db.tables(), Vec::<String>::new());
}
