//! The embedding swap (`migrate-revision --vector-swap`): a chain of revisions run on a
//! populated table with an HNSW index while an application inserts, updates and queries it;
//! interrupted by SIGINT and `kill -9` in the middle of the fill and resumed; no query fails,
//! no row is left without its new value, the check measures the new index, `migrate-up` stops
//! before the contract until `--contract`, and the old column is gone after it. Also the
//! index-only variant, and a check that stops the run.

use crate::common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A random vector of `dims` dimensions near a surface of two parameters (`sin(i·a) +
/// cos(i·b)` plus a little noise), as SQL evaluated once per row of `row`: embeddings lie near
/// a surface of few dimensions, where uniform random vectors of 1536 dimensions are all about
/// equally far apart and no ANN index finds their neighbours.
fn random_vector(dims: usize, row: &str) -> String {
    format!(
        "(SELECT array_agg(sin(i * r.a) + cos(i * r.b) + random() * 0.01) \
            FROM generate_series(1, {dims}) i, \
                 (SELECT random() * 3 AS a, random() * 3 AS b WHERE {row} IS NOT NULL) r)::vector({dims})"
    )
}

/// Revision 001: `chunks(id bigserial primary key, body text, embedding vector(dims))` with
/// `rows` rows and an HNSW cosine index (m = 8, ef_construction = 32).
fn populated(s: &Scenario, rows: usize, dims: usize) {
    s.revision(
        "001",
        "",
        &format!(
            "CREATE EXTENSION IF NOT EXISTS vector;\n\
             CREATE TABLE chunks (id bigserial PRIMARY KEY, body text, embedding vector({dims}));\n\
             INSERT INTO chunks (body, embedding) SELECT 'row ' || g, {} FROM generate_series(1, {rows}) g;\n\
             CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32);\n\
             ANALYZE chunks;",
            random_vector(dims, "g")
        ),
        "DROP TABLE chunks;",
    );
}

/// The application while the swap runs: inserts a row, changes an old embedding and asks a
/// nearest-neighbour query, in a loop, until stopped; counts what it did and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, dims: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, d, f, url) = (
            stop.clone(),
            done.clone(),
            failures.clone(),
            url.to_string(),
        );
        let thread = std::thread::spawn(move || {
            let mut c = connect(&url);
            let v = random_vector(dims, "1");
            let insert = format!("INSERT INTO chunks (body, embedding) VALUES ('new', {v})");
            let update = format!(
                "UPDATE chunks SET embedding = {v} WHERE id = (SELECT (random() * 100)::int + 1)"
            );
            let query = format!("SELECT id FROM chunks ORDER BY embedding <=> {v} LIMIT 5");
            while !s.load(Ordering::SeqCst) {
                for sql in [&insert, &update, &query] {
                    if let Err(e) = c.batch_execute(sql) {
                        f.lock().unwrap().push(format!("{sql}: {e}"));
                    }
                }
                d.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Load {
            stop,
            done,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops it: the rounds it made and its failures.
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        let f = self.failures.lock().unwrap().clone();
        (self.done.load(Ordering::SeqCst), f)
    }
}

/// Whether the server's pgvector has `halfvec` (0.7 and later): PostgreSQL 18's 0.8 has, 16's
/// 0.6 has not (there a half-precision swap is refused, see below).
fn has_halfvec(s: &Scenario) -> bool {
    let v = s
        .db
        .strings("SELECT default_version::text FROM pg_available_extensions WHERE name = 'vector'");
    let parts: Vec<u32> = v[0].split('.').filter_map(|p| p.parse().ok()).collect();
    parts >= vec![0, 7]
}

fn count(s: &Scenario, sql: &str) -> i64 {
    s.db.client().query_one(sql, &[]).unwrap().get(0)
}

/// The ids of the chain, from migrate-revision's `Generating <path> ... done` lines.
fn written(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Generating "))
        .map(|l| {
            let file = l.split(" ... ").next().unwrap();
            let name = std::path::Path::new(file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            name.split('_').next().unwrap().to_string()
        })
        .collect()
}

/// On a pgvector without `halfvec` (before 0.7) the swap says so and writes nothing.
fn halfvec_is_refused(s: &Scenario, dims: &str) {
    let to = format!("halfvec({dims})");
    let r = s.run(
        "migrate-revision",
        &["--vector-swap", "chunks.embedding", "--to", &to],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("has no type halfvec"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(s.migrations()).unwrap().count(),
        1,
        "nothing written"
    );
}

#[test]
fn a_halfvec_swap_runs_under_load_survives_sigint_and_kill_and_contracts_on_request() {
    let s = Scenario::new();
    populated(&s, 2000, 1536);
    s.run("migrate-up", &[]).ok();
    if !has_halfvec(&s) {
        return halfvec_is_refused(&s, "1536");
    }
    let out = s
        .run(
            "migrate-revision",
            &[
                "--vector-swap",
                "chunks.embedding",
                "--to",
                "halfvec(1536)",
                "--batch",
                "50",
            ],
        )
        .ok();
    let ids = written(&out.stdout);
    assert_eq!(
        ids,
        ["002", "003", "004", "005", "006", "007"],
        "{}",
        out.all()
    );
    let history = s.run("migrate-history", &[]).ok().stdout;
    assert!(
        history.contains(
            "001 -> 002, expand: vector swap chunks.embedding vector(1536) -> halfvec(1536)"
        ),
        "{history}"
    );
    assert!(
        history.contains("005 -> 006 (contract), contract (switch): vector swap"),
        "{history}"
    );
    assert!(
        history.contains("006 -> 007 (head) (contract), drop the old column"),
        "{history}"
    );

    let load = Load::start(&s.db.url, 1536);
    // slow ranges, so that the signals land inside the fill
    let slow = ["--backfill-batch-time", "1ms", "--backfill-pause", "30ms"];
    let r = s.spawn("migrate-up", &slow);
    r.wait_for("backfill of chunks.id", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    r.signal("INT");
    let (code, err, _) = r.finish();
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("backfill 003 stopped at chunks.id"), "{err}");
    assert_eq!(s.db.version_rows(), ["002"]);
    let r = s.spawn("migrate-up", &slow);
    r.wait_for("backfill of chunks.id", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    r.signal("KILL");
    let (code, err, _) = r.finish();
    assert_eq!(code, -1, "{err}");
    // resumed: fill, index, check; it stops before the contract and says so
    let run = s.run("migrate-up", &[]).ok();
    assert!(
        run.stderr.contains("contract pending: stopping before 006"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("recall@10"), "{}", run.stderr);
    assert_eq!(s.db.version_rows(), ["005"]);
    // the rows written during the swap have their new value, computed from the old
    let (rounds, failures) = load.finish();
    assert!(rounds > 10, "the load made {rounds} rounds");
    assert!(
        failures.is_empty(),
        "queries failed during the swap: {failures:#?}"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM chunks WHERE embedding_next IS NULL AND embedding IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM chunks WHERE embedding_next IS DISTINCT FROM embedding::halfvec(1536)"),
        0,
        "a new value differs from the old one's cast"
    );
    assert!(count(&s, "SELECT count(*) FROM chunks WHERE body = 'new'") > 10);
    let check = s.run("migrate-check", &[]).ok();
    assert!(
        check.all().contains("contract pending: 006"),
        "{}",
        check.all()
    );
    // a second run without --contract does nothing more
    let again = s.run("migrate-up", &[]).ok();
    assert!(
        again.stderr.contains("contract pending"),
        "{}",
        again.stderr
    );
    assert_eq!(s.db.version_rows(), ["005"]);

    // the application moved: the contract switches the names and drops the old column
    s.run("migrate-up", &["--contract"]).ok();
    assert_eq!(s.db.version_rows(), ["007"]);
    assert_eq!(
        s.db.strings("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped"),
        ["halfvec(1536)"]
    );
    assert_eq!(
        s.db.strings("SELECT pg_get_indexdef('chunks_embedding_idx'::regclass)"),
        ["CREATE INDEX chunks_embedding_idx ON public.chunks USING hnsw (embedding halfvec_cosine_ops) WITH (m='8', ef_construction='32')"]
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'chunks'::regclass"
        ),
        0
    );
    assert!(s.run("migrate-check", &[]).ok().all().contains("OK"));
    // the drop of the old column has no way back
    let down = s.run("migrate-down", &["-1"]);
    assert_eq!(down.code, 2, "{}", down.all());
    assert!(
        down.all().contains("has no '-- migrate:down' section"),
        "{}",
        down.all()
    );
}

#[test]
fn the_switch_goes_back_while_the_old_column_exists() {
    let s = Scenario::new();
    populated(&s, 300, 64);
    s.run("migrate-up", &[]).ok();
    if !has_halfvec(&s) {
        return halfvec_is_refused(&s, "64");
    }
    s.run(
        "migrate-revision",
        &["--vector-swap", "chunks.embedding", "--to", "halfvec(64)"],
    )
    .ok();
    // up to the switch, keeping the old column (a target stops before the drop)
    s.run("migrate-up", &["--contract", "006"]).ok();
    assert_eq!(s.db.version_rows(), ["006"]);
    assert_eq!(
        s.db.strings("SELECT attname::text || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped ORDER BY 1"),
        ["embedding halfvec(64)", "embedding_old vector(64)"]
    );
    s.run("migrate-down", &["005"]).ok();
    assert_eq!(
        s.db.strings("SELECT attname::text || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped ORDER BY 1"),
        ["embedding vector(64)", "embedding_next halfvec(64)"]
    );
    // the trigger is back: a new row gets its new value
    s.db.execute(&format!(
        "INSERT INTO chunks (embedding) VALUES ({})",
        random_vector(64, "1")
    ));
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM chunks WHERE embedding_next IS NULL"
        ),
        0
    );
    // and all the way down
    s.run("migrate-down", &["001"]).ok();
    assert_eq!(count(&s, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding_next' AND NOT attisdropped"), 0);
}

#[test]
fn an_index_only_swap_builds_a_halfvec_expression_index_and_drops_the_old_one_on_contract() {
    let s = Scenario::new();
    populated(&s, 1000, 384);
    s.run("migrate-up", &[]).ok();
    if !has_halfvec(&s) {
        return halfvec_is_refused(&s, "384");
    }
    let out = s
        .run(
            "migrate-revision",
            &[
                "--vector-swap",
                "chunks.embedding",
                "--to",
                "halfvec(384)",
                "--index-only",
            ],
        )
        .ok();
    assert_eq!(written(&out.stdout), ["002", "003", "004"], "{}", out.all());
    let before = count(&s, "SELECT count(*) FROM chunks");
    let run = s.run("migrate-up", &[]).ok();
    assert!(
        run.stderr.contains("through chunks_embedding_idx_half"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("contract pending: stopping before 004"),
        "{}",
        run.stderr
    );
    assert_eq!(count(&s, "SELECT count(*) FROM chunks"), before);
    // a query with the same cast uses it
    let mut c = s.db.client();
    c.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT id FROM chunks ORDER BY embedding::halfvec(384) <=> (SELECT embedding FROM chunks LIMIT 1)::halfvec(384) LIMIT 5",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.join("\n").contains("chunks_embedding_idx_half"),
        "{plan:?}"
    );
    s.run("migrate-up", &["--contract"]).ok();
    assert_eq!(
        s.db.strings("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'chunks'::regclass AND NOT indisprimary"),
        ["chunks_embedding_idx_half"]
    );
    // its down builds the old index again
    s.run("migrate-down", &["-1"]).ok();
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM pg_class WHERE relname = 'chunks_embedding_idx'"
        ),
        1
    );
}

#[test]
fn a_check_below_its_threshold_stops_the_run_unrecorded_and_passes_once_the_search_is_wider() {
    let s = Scenario::new();
    populated(&s, 1000, 32);
    s.revision_with(
        "002",
        "001",
        "-- check: recall chunks.embedding threshold=0.9 k=10 queries=20",
        "-- measured, nothing changed",
        "",
    );
    // hnsw.ef_search = 1 returns one row of the ten asked for
    s.db.execute(&format!(
        "ALTER DATABASE {} SET hnsw.ef_search = 1",
        s.db.name
    ));
    let bad = s.run("migrate-up", &[]);
    assert_eq!(bad.code, 4, "{}", bad.all());
    assert!(
        bad.stderr
            .contains("migrations/002_x.sql:4: the check of revision 002 failed: recall@10 0."),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("hnsw.ef_search = 1); latency")
            && bad.stderr.contains("under the threshold 0.9"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("it is not recorded as applied"),
        "{}",
        bad.stderr
    );
    assert_eq!(s.db.version_rows(), ["001"]);
    s.db.execute(&format!(
        "ALTER DATABASE {} RESET hnsw.ef_search",
        s.db.name
    ));
    let good = s.run("migrate-up", &[]).ok();
    assert!(
        good.stderr.contains("at or above the threshold 0.9"),
        "{}",
        good.stderr
    );
    assert_eq!(s.db.version_rows(), ["002"]);
    // SQL in a check's up section is refused when the scripts load
    s.revision_with(
        "003",
        "002",
        "-- check: recall chunks.embedding",
        "SELECT 1;",
        "",
    );
    let e = s.run("migrate-up", &[]);
    assert_eq!(e.code, 6, "{}", e.all());
    assert!(
        e.stderr
            .contains("003_x.sql:6: SQL in the up section of a check step"),
        "{}",
        e.stderr
    );
}

/// The Python that runs the test model: the repository's virtualenv (psycopg2 in it), else
/// python3 from PATH.
fn python() -> String {
    let venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".to_string()
    }
}

#[test]
fn a_new_model_re_embeds_through_a_worker_under_load_across_sigint_and_kill() {
    let mut s = Scenario::new();
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python");
    s.env.push((
        "PYTHONPATH".into(),
        src.canonicalize().unwrap().display().to_string(),
    ));
    populated(&s, 2000, 384);
    s.run("migrate-up", &[]).ok();
    // the deterministic test model (384 -> 256 dimensions), in the migrations directory so
    // that the checksum covers it
    s.write(
        "migrations/swap_model.py",
        include_str!("../fixtures/swap_model.py"),
    );
    let run = format!("SWAP_DIMS=256 SWAP_DELAY_MS=20 {} swap_model.py", python());
    let out = s
        .run(
            "migrate-revision",
            &[
                "--vector-swap",
                "chunks.embedding",
                "--to",
                "vector(256)",
                "--run",
                &run,
                "--batch",
                "50",
            ],
        )
        .ok();
    let ids = written(&out.stdout);
    assert_eq!(
        ids,
        ["002", "003", "004", "005", "006", "007", "008"],
        "{}",
        out.all()
    );
    let load = Load::start(&s.db.url, 384);
    let slow = ["--backfill-batch-time", "1ms", "--backfill-pause", "20ms"];
    let r = s.spawn("migrate-up", &slow);
    r.wait_for("backfill of chunks.id", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(800));
    r.signal("INT");
    let (code, err, _) = r.finish();
    assert_eq!(code, 130, "{err}");
    assert_eq!(s.db.version_rows(), ["002"], "{err}");
    let r = s.spawn("migrate-up", &slow);
    r.wait_for("backfill of chunks.id", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    r.signal("KILL");
    let (code, err, _) = r.finish();
    assert_eq!(code, -1, "{err}");
    // the application pauses its writes for its deploy; the run resumes the fill, and the
    // catch-up computes the rows inserted and changed meanwhile
    let (rounds, failures) = load.finish();
    assert!(rounds > 5, "the load made {rounds} rounds");
    assert!(
        failures.is_empty(),
        "queries failed during the swap: {failures:#?}"
    );
    let done = s.run("migrate-up", &[]).ok();
    assert!(
        done.stderr
            .contains("contract pending: stopping before 007"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("recall@10"), "{}", done.stderr);
    assert_eq!(s.db.version_rows(), ["006"]);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM chunks WHERE embedding_next IS NULL AND embedding IS NOT NULL"
        ),
        0,
        "rows without a new embedding"
    );
    assert!(count(&s, "SELECT count(*) FROM chunks WHERE body = 'new'") > 5);
    // the same model gives the same vector: a row's new value is the model's of its old one
    let again = count(
        &s,
        "SELECT count(DISTINCT embedding_next::text) FROM chunks WHERE id <= 3",
    );
    assert_eq!(again, 3);
    s.run("migrate-up", &["--contract"]).ok();
    assert_eq!(
        s.db.strings("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname LIKE 'embedding%' AND NOT attisdropped"),
        ["vector(256)"]
    );
    assert_eq!(
        s.db.strings("SELECT pg_get_indexdef('chunks_embedding_idx'::regclass)"),
        ["CREATE INDEX chunks_embedding_idx ON public.chunks USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')"]
    );
}
