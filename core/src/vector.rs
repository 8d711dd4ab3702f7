//! pgvector index builds, planned: what a `CREATE INDEX ... USING hnsw/ivfflat` builds on, the
//! memory its graph needs, how long it will take, and the session settings it should run with.
//!
//! An HNSW build is fast while its graph fits in `maintenance_work_mem` and many times slower
//! once it does not, and it builds in parallel only when `max_parallel_maintenance_workers`
//! lets it; the server's defaults (64MB, 2) fit about 25,000 rows of 384 dimensions. So before
//! a vector index build retort reads the rows and dimensions and raises both settings for that
//! statement ([`plan_build`]): memory to what the graph needs, never above
//! `MIGRATE_MAX_MAINTENANCE_WORK_MEM` nor what the server's setting allows, never lower than
//! what the server already has; workers to what the server allows. Settings a script, the
//! connection, the role or the database chose are left alone.
//!
//! The figures are measured, not derived (scripts/measure-vector-builds.py on pgvector 0.6 and
//! 0.8; docs/vector-builds.md has the tables):
//! - the graph: 8 + bytes per element·dims + 32·m + 200 bytes a row (pgvector's notice "hnsw
//!   graph no longer fits into maintenance_work_mem after N tuples" at a known setting, over
//!   dims 8–1024 and m 8–32: within 1 %);
//! - the time: a single-process in-memory build inserts each row with about ef_construction
//!   distance computations per level searched, so seconds ≈ k·rows·ln(rows)·ef_construction·
//!   (dims + c), with k and c fitted on this machine; parallel workers divide it.

use std::time::Duration;

/// The index method of a vector index build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Hnsw,
    Ivfflat,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Hnsw => "hnsw",
            Method::Ivfflat => "ivfflat",
        }
    }
}

/// What a `CREATE INDEX ... USING hnsw|ivfflat (...)` statement builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorBuild {
    /// The table as written (possibly schema-qualified, possibly quoted).
    pub table: String,
    /// The key column (unquoted); for an expression key `(col::halfvec(n))`, the column cast.
    pub column: String,
    pub method: Method,
    /// An expression key's cast: (`halfvec`, n).
    pub cast: Option<(String, i64)>,
    /// `WITH (m = ...)`, `ef_construction`, `lists`, when written.
    pub m: Option<i64>,
    pub ef_construction: Option<i64>,
    pub lists: Option<i64>,
}

impl VectorBuild {
    /// pgvector's defaults where the statement says nothing.
    pub fn m(&self) -> i64 {
        self.m.unwrap_or(16)
    }
    pub fn ef_construction(&self) -> i64 {
        self.ef_construction.unwrap_or(64)
    }
    pub fn lists(&self) -> i64 {
        self.lists.unwrap_or(100)
    }
}

/// Finds the table, key and parameters of a vector index build; `None` for anything else
/// (another method, an expression that is not a plain cast of a column).
pub fn vector_build(sql: &str) -> Option<VectorBuild> {
    let lower = sql.to_ascii_lowercase();
    if !lower.trim_start().starts_with("create") || !lower.contains(" index") {
        return None;
    }
    let (using, method) = [
        ("using hnsw", Method::Hnsw),
        ("using ivfflat", Method::Ivfflat),
    ]
    .into_iter()
    .find_map(|(w, m)| lower.find(w).map(|at| (at, (w, m))))?;
    let on = lower[..using].rfind(" on ")?;
    let mut table = sql[on + 4..using].trim();
    if table.to_ascii_lowercase().starts_with("only ") {
        table = table[5..].trim();
    }
    let rest = sql[using + method.0.len()..].trim_start();
    let inner = rest.strip_prefix('(')?.trim_start();
    let plain =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_.\"".contains(c));
    let (column, cast) = if let Some(expr) = inner.strip_prefix('(') {
        // (col::halfvec(n)) or (col::vector(n))
        let close = expr.find("))")?;
        let body = &expr[..close + 1];
        let (col, ty) = body.split_once("::")?;
        let (ty, n) = ty.trim().strip_suffix(')')?.split_once('(')?;
        let n: i64 = n.trim().parse().ok()?;
        (col.trim(), Some((ty.trim().to_ascii_lowercase(), n)))
    } else {
        let end = inner.find(|c: char| c.is_whitespace() || c == ')' || c == ',')?;
        (&inner[..end], None)
    };
    if !(plain(table) && plain(column)) {
        return None;
    }
    let param = |name: &str| -> Option<i64> {
        let with = lower.rfind("with")?;
        let w = &lower[with..];
        let at = w.find(name)?;
        let after = w[at + name.len()..].trim_start().strip_prefix('=')?;
        let digits: String = after
            .trim_start()
            .trim_start_matches('\'')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some(VectorBuild {
        table: table.to_string(),
        column: column.trim_matches('"').to_string(),
        method: method.1,
        cast,
        m: param("m"),
        ef_construction: param("ef_construction"),
        lists: param("lists"),
    })
}

/// Bytes an element of `typ` takes per dimension (`bit`: an eighth).
pub fn element_bytes(typ: &str) -> f64 {
    match typ {
        "halfvec" => 2.0,
        "bit" => 0.125,
        _ => 4.0,
    }
}

/// The bytes per row of an HNSW graph: 8 + element bytes·dims + 32·m + 200 (measured).
pub fn hnsw_row_bytes(dims: i64, element: f64, m: i64) -> f64 {
    8.0 + element * dims as f64 + 32.0 * m as f64 + 200.0
}

/// Bytes an HNSW graph of `rows` needs in `maintenance_work_mem`.
pub fn hnsw_graph_bytes(rows: f64, dims: i64, element: f64, m: i64) -> f64 {
    rows.max(0.0) * hnsw_row_bytes(dims, element, m)
}

/// Bytes an IVFFlat build needs in `maintenance_work_mem`: the k-means sample (50 rows a list,
/// at most the table) and the centers, which pgvector refuses to start without ("memory
/// required is ... MB").
pub fn ivfflat_bytes(rows: f64, dims: i64, lists: i64) -> f64 {
    let samples = (50.0 * lists as f64).min(rows.max(0.0));
    let vector = 8.0 + 4.0 * dims as f64;
    (samples + 2.0 * lists as f64) * vector * 1.2
}

/// `150MB`, `2GB`: a setting value that holds `bytes`, rounded up.
pub fn setting_for(bytes: f64) -> String {
    let mb = (bytes / (1024.0 * 1024.0)).ceil() as u64;
    if mb >= 1024 && mb.is_multiple_of(1024) {
        format!("{}GB", mb / 1024)
    } else {
        format!("{}MB", mb.max(1))
    }
}

/// A size for people: `1.9 MB`, `8.0 GB`.
pub fn size_text(bytes: f64) -> String {
    let mb = bytes / (1024.0 * 1024.0);
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.1} MB")
    }
}

/// Seconds per rows·ln(rows) of a single-process in-memory HNSW build of 64 dimensions, m = 16,
/// ef_construction = 64, measured on this machine (docs/vector-builds.md).
pub const TIME_PER_UNIT: f64 = 7.0e-5;
/// The per-candidate cost that does not grow with the dimensions, in dimensions (fitted).
pub const TIME_DIMS_OFFSET: f64 = 500.0;
/// How much slower a build gets once its graph no longer fits: it grows with how far the graph
/// outgrows its memory. Measured: 3.7× for a graph of twice the memory (60,000 × 384 with 64MB),
/// 12× for nine times (10,000 × 64 with 1MB); 1.5 × (graph / memory), between 4 and 15.
pub fn overflow_slowdown(rows: f64, fit: f64) -> f64 {
    (1.5 * rows / fit.max(1.0)).clamp(4.0, 15.0)
}

/// The parallel workers PostgreSQL starts for a table of `pages` 8kB pages, as its planner
/// counts them: none under `min_parallel_table_scan_size` (8MB), then one more for each tripling.
pub fn workers_for_table(pages: f64, allowed: i64) -> i64 {
    let threshold = 1024.0;
    if pages < threshold {
        return 0;
    }
    let mut n = 1;
    let mut size = threshold * 3.0;
    while pages >= size && n < allowed {
        n += 1;
        size *= 3.0;
    }
    n.min(allowed.max(0))
}

/// The time an HNSW build should take: in memory with `workers` parallel workers (each on a
/// core of its own, the leader building too), and [`overflow_slowdown`] times slower for the rows
/// past the point where the graph stops fitting in `memory` bytes. Fitted on single-process
/// builds: seconds ≈ [`TIME_PER_UNIT`]·rows·ln(rows)·(m/16)·(ef_construction/64)^0.6·
/// (dims + 500)/564. A figure to plan by (within a factor of 2), not a promise.
pub fn hnsw_build_time(
    rows: f64,
    dims: i64,
    element: f64,
    m: i64,
    ef_construction: i64,
    workers: i64,
    memory: f64,
) -> Duration {
    if rows < 2.0 {
        return Duration::ZERO;
    }
    let unit = |n: f64| n * n.max(2.0).ln();
    let scale = TIME_PER_UNIT
        * (m as f64 / 16.0)
        * (ef_construction as f64 / 64.0).powf(0.6)
        * (dims as f64 + TIME_DIMS_OFFSET)
        / (64.0 + TIME_DIMS_OFFSET);
    let fit = (memory / hnsw_row_bytes(dims, element, m)).min(rows);
    let in_memory = unit(fit) / (1.0 + workers.max(0) as f64);
    let on_disk = (unit(rows) - unit(fit)) * overflow_slowdown(rows, fit);
    Duration::from_secs_f64(scale * (in_memory + on_disk))
}

/// Where a setting's value came from (`pg_settings.source`) decides whether the plan may change
/// it: a value chosen for this session, role or database stays.
pub fn chosen_by_someone(source: &str) -> bool {
    matches!(source, "session" | "client" | "user" | "database")
}

/// What the server says before a build, read on the migration's connection.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildFacts {
    /// `pg_class.reltuples` (negative or zero: never analyzed or empty).
    pub rows: f64,
    /// `pg_class.relpages`: PostgreSQL's planner starts parallel workers by the table's size.
    pub pages: f64,
    pub dims: i64,
    /// `vector`, `halfvec`, `bit`, `sparsevec`.
    pub typ: String,
    /// `maintenance_work_mem` in bytes, and where it came from.
    pub memory: f64,
    pub memory_source: String,
    /// The setting's own maximum (`pg_settings.max_val`), in bytes.
    pub memory_max: f64,
    pub workers: i64,
    pub workers_source: String,
    pub max_worker_processes: i64,
    pub max_parallel_workers: i64,
}

/// The settings a build runs with, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    /// `SET`s to run before the statement (and `RESET` after).
    pub set: Vec<(String, String)>,
    /// One line a decision: what was chosen and why.
    pub reasons: Vec<String>,
    /// Bytes the build needs, and what it will have.
    pub needed: f64,
    pub memory: f64,
    /// The parallel workers PostgreSQL should start for it (by the setting and the table's size).
    pub workers: i64,
    /// The estimated build time (HNSW only).
    pub estimate: Option<Duration>,
}

impl BuildPlan {
    /// An HNSW graph that will not fit in what the build has.
    pub fn overflows(&self, build: &VectorBuild) -> bool {
        build.method == Method::Hnsw && self.needed > self.memory
    }
}

/// The settings for `build` given the server's `facts`, with `cap` bytes at most for
/// `maintenance_work_mem`.
pub fn plan_build(build: &VectorBuild, f: &BuildFacts, cap: f64) -> BuildPlan {
    let element = element_bytes(&f.typ);
    let rows = f.rows.max(0.0);
    let what = match build.method {
        Method::Hnsw => format!(
            "the HNSW graph of {rows:.0} rows x {} dims ({}, m = {})",
            f.dims,
            f.typ,
            build.m()
        ),
        Method::Ivfflat => format!(
            "the IVFFlat build of {rows:.0} rows x {} dims (lists = {})",
            f.dims,
            build.lists()
        ),
    };
    let needed = match build.method {
        Method::Hnsw => hnsw_graph_bytes(rows, f.dims, element, build.m()),
        Method::Ivfflat => ivfflat_bytes(rows, f.dims, build.lists()),
    };
    let mut set = Vec::new();
    let mut reasons = Vec::new();
    let mut memory = f.memory;
    if chosen_by_someone(&f.memory_source) {
        reasons.push(format!(
            "maintenance_work_mem = {} kept (set by the {}); {what} needs about {}",
            size_text(f.memory),
            source_text(&f.memory_source),
            size_text(needed)
        ));
    } else {
        // a tenth more than measured, in whole megabytes
        let want = ((needed * 1.1) / 1_048_576.0).ceil() * 1_048_576.0;
        let bound = cap.min(f.memory_max);
        let chosen = want.min(bound);
        if chosen > f.memory {
            memory = chosen;
            set.push(("maintenance_work_mem".to_string(), setting_for(chosen)));
            reasons.push(if want > bound {
                format!(
                    "maintenance_work_mem = {}: {what} needs about {}, more than the cap ({}{}); the build slows down once the graph outgrows it",
                    setting_for(chosen),
                    size_text(needed),
                    if cap <= f.memory_max { "MIGRATE_MAX_MAINTENANCE_WORK_MEM = " } else { "the server's maximum " },
                    setting_for(bound)
                )
            } else {
                format!(
                    "maintenance_work_mem = {} (server: {}): {what} needs about {}",
                    setting_for(chosen),
                    size_text(f.memory),
                    size_text(needed)
                )
            });
        } else {
            reasons.push(format!(
                "maintenance_work_mem = {} kept (the server's): {what} needs about {}",
                size_text(f.memory),
                size_text(needed)
            ));
        }
    }
    let mut workers = f.workers;
    let allowed = f.max_parallel_workers.min(f.max_worker_processes).max(0);
    if chosen_by_someone(&f.workers_source) {
        reasons.push(format!(
            "max_parallel_maintenance_workers = {} kept (set by the {})",
            f.workers,
            source_text(&f.workers_source)
        ));
    } else if allowed > f.workers {
        workers = allowed;
        set.push((
            "max_parallel_maintenance_workers".to_string(),
            allowed.to_string(),
        ));
        reasons.push(format!(
            "max_parallel_maintenance_workers = {allowed} (server: {}): what max_parallel_workers = {} and max_worker_processes = {} allow; PostgreSQL starts fewer for a small table",
            f.workers, f.max_parallel_workers, f.max_worker_processes
        ));
    } else {
        reasons.push(format!(
            "max_parallel_maintenance_workers = {} kept (the server's; max_parallel_workers = {}, max_worker_processes = {})",
            f.workers, f.max_parallel_workers, f.max_worker_processes
        ));
    }
    let workers = workers_for_table(f.pages, workers);
    let estimate = (build.method == Method::Hnsw).then(|| {
        hnsw_build_time(
            rows,
            f.dims,
            element,
            build.m(),
            build.ef_construction(),
            workers,
            memory,
        )
    });
    BuildPlan {
        set,
        reasons,
        needed,
        memory,
        workers,
        estimate,
    }
}

fn source_text(source: &str) -> &str {
    match source {
        "session" => "script",
        "client" => "connection's options",
        "user" => "role (ALTER ROLE ... SET)",
        "database" => "database (ALTER DATABASE ... SET)",
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_builds_are_recognised_with_their_parameters() {
        let b = vector_build("CREATE INDEX CONCURRENTLY docs_e ON public.docs USING hnsw (embedding vector_l2_ops) WITH (m = 24, ef_construction = 100)").unwrap();
        assert_eq!(
            (b.table.as_str(), b.column.as_str(), b.method),
            ("public.docs", "embedding", Method::Hnsw)
        );
        assert_eq!((b.m(), b.ef_construction(), b.cast), (24, 100, None));
        let b = vector_build("create index on ONLY docs using hnsw (\"Emb\" vector_cosine_ops)")
            .unwrap();
        assert_eq!(
            (b.column.as_str(), b.m(), b.ef_construction()),
            ("Emb", 16, 64)
        );
        let b = vector_build(
            "CREATE INDEX x ON docs USING ivfflat (e vector_ip_ops) WITH (lists = 200)",
        )
        .unwrap();
        assert_eq!((b.method, b.lists()), (Method::Ivfflat, 200));
        let b = vector_build("CREATE INDEX x ON docs USING hnsw ((e::halfvec(3)) halfvec_l2_ops)")
            .unwrap();
        assert_eq!(
            (b.column.as_str(), b.cast),
            ("e", Some(("halfvec".into(), 3)))
        );
        assert_eq!(
            vector_build("CREATE INDEX x ON docs USING btree (id)"),
            None
        );
        assert_eq!(
            vector_build("CREATE INDEX x ON docs USING hnsw ((lower(e)) vector_l2_ops)"),
            None
        );
    }

    #[test]
    fn the_graph_size_is_the_measured_one() {
        // measured on pgvector 0.6 and 0.8 (bytes a row): the formula within 1 %
        for (dims, m, measured) in [
            (8, 16, 747.4),
            (32, 16, 842.1),
            (128, 16, 1230.0),
            (384, 16, 2251.4),
            (1024, 32, 5322.7),
            (8, 8, 493.2),
        ] {
            let est = hnsw_row_bytes(dims, 4.0, m);
            assert!(
                (est / measured - 1.0).abs() < 0.01,
                "{dims} {m}: {est} vs {measured}"
            );
        }
        // 1M x 1536 vector, m = 16: about 6.4 GB
        let b = hnsw_graph_bytes(1_000_000.0, 1536, 4.0, 16);
        assert_eq!(size_text(b), "6.4 GB");
        assert_eq!(setting_for(b), "6547MB");
        assert_eq!(setting_for(2.0 * 1024.0 * 1024.0 * 1024.0), "2GB");
        assert!(hnsw_graph_bytes(10.0, 100, 2.0, 16) < hnsw_graph_bytes(10.0, 100, 4.0, 16));
    }

    fn facts() -> BuildFacts {
        BuildFacts {
            rows: 60_000.0,
            pages: 12_000.0,
            dims: 384,
            typ: "vector".into(),
            memory: 64.0 * 1_048_576.0,
            memory_source: "default".into(),
            memory_max: 2_147_483_647.0 * 1024.0,
            workers: 2,
            workers_source: "default".into(),
            max_worker_processes: 8,
            max_parallel_workers: 8,
        }
    }

    const GB: f64 = 1024.0 * 1024.0 * 1024.0;

    #[test]
    fn a_build_gets_the_memory_its_graph_needs_and_the_workers_the_server_allows() {
        let b = vector_build("CREATE INDEX ON docs USING hnsw (e vector_l2_ops)").unwrap();
        let p = plan_build(&b, &facts(), GB);
        // 60,000 x 2,256 bytes = 129 MB, plus a tenth: 142 MB
        assert_eq!(
            p.set,
            vec![
                ("maintenance_work_mem".to_string(), "142MB".to_string()),
                (
                    "max_parallel_maintenance_workers".to_string(),
                    "8".to_string()
                )
            ]
        );
        assert!(!p.overflows(&b));
        assert_eq!(
            p.reasons[0],
            "maintenance_work_mem = 142MB (server: 64.0 MB): the HNSW graph of 60000 rows x 384 dims (vector, m = 16) needs about 129.1 MB"
        );
        assert!(
            p.reasons[1].contains("max_parallel_workers = 8 and max_worker_processes = 8"),
            "{:?}",
            p.reasons
        );
        // the server's own smaller limits win
        let f = BuildFacts {
            max_parallel_workers: 1,
            ..facts()
        };
        assert_eq!(plan_build(&b, &f, GB).set.len(), 1);
        // never lower than what the server has
        let f = BuildFacts {
            memory: 4.0 * GB,
            ..facts()
        };
        let p = plan_build(&b, &f, GB);
        assert_eq!(p.set[0].0, "max_parallel_maintenance_workers");
        assert!(
            p.reasons[0].contains("kept (the server's)"),
            "{:?}",
            p.reasons
        );
    }

    #[test]
    fn the_cap_bounds_the_memory_and_the_build_is_said_to_outgrow_it() {
        let b = vector_build("CREATE INDEX ON docs USING hnsw (e vector_l2_ops)").unwrap();
        let f = BuildFacts {
            rows: 1_000_000.0,
            dims: 1536,
            ..facts()
        };
        let p = plan_build(&b, &f, GB);
        assert_eq!(
            p.set[0],
            ("maintenance_work_mem".to_string(), "1GB".to_string())
        );
        assert!(p.overflows(&b));
        assert!(
            p.reasons[0].contains(
                "needs about 6.4 GB, more than the cap (MIGRATE_MAX_MAINTENANCE_WORK_MEM = 1GB)"
            ),
            "{:?}",
            p.reasons
        );
        // the estimate counts the slower part past the memory
        let fits = plan_build(&b, &f, 8.0 * GB).estimate.unwrap();
        assert!(p.estimate.unwrap() > fits * 2, "{p:?} {fits:?}");
    }

    #[test]
    fn settings_the_script_role_or_connection_chose_are_kept() {
        let b = vector_build("CREATE INDEX ON docs USING hnsw (e vector_l2_ops)").unwrap();
        for source in ["session", "client", "user", "database"] {
            let f = BuildFacts {
                memory_source: source.into(),
                workers_source: source.into(),
                ..facts()
            };
            let p = plan_build(&b, &f, GB);
            assert!(p.set.is_empty(), "{source}: {p:?}");
            assert!(p.overflows(&b), "64 MB does not hold the graph");
        }
        let f = BuildFacts {
            memory_source: "session".into(),
            ..facts()
        };
        let p = plan_build(&b, &f, GB);
        assert_eq!(p.reasons[0], "maintenance_work_mem = 64.0 MB kept (set by the script); the HNSW graph of 60000 rows x 384 dims (vector, m = 16) needs about 129.1 MB");
    }

    #[test]
    fn an_ivfflat_build_gets_memory_for_its_sample() {
        let b = vector_build(
            "CREATE INDEX ON docs USING ivfflat (e vector_l2_ops) WITH (lists = 1000)",
        )
        .unwrap();
        let f = BuildFacts {
            rows: 1_000_000.0,
            dims: 1536,
            ..facts()
        };
        let p = plan_build(&b, &f, GB);
        // 50,000 sampled vectors of 6 KB, and the centers: about 360 MB
        assert_eq!(
            p.set[0],
            ("maintenance_work_mem".to_string(), "403MB".to_string())
        );
        assert_eq!(p.estimate, None);
    }

    #[test]
    fn the_time_estimate_follows_the_measurements() {
        let t = |rows: f64, dims, m, efc, workers| {
            hnsw_build_time(rows, dims, 4.0, m, efc, workers, f64::MAX).as_secs_f64()
        };
        // measured single-process on pgvector 0.6 (seconds): within a factor of 2
        for (rows, dims, m, efc, measured) in [
            (16_000.0, 64, 16, 64, 9.8),
            (32_000.0, 64, 16, 64, 25.2),
            (8_000.0, 384, 16, 64, 8.8),
            (8_000.0, 64, 8, 64, 2.7),
            (8_000.0, 64, 32, 64, 13.7),
            (8_000.0, 64, 16, 128, 8.4),
        ] {
            let est = t(rows, dims, m, efc, 0);
            assert!(
                (0.5..2.0).contains(&(est / measured)),
                "{rows} {dims} {m} {efc}: {est} vs {measured}"
            );
        }
        assert!(t(60_000.0, 384, 16, 64, 3) < t(60_000.0, 384, 16, 64, 0) / 3.0);
        // 10,000 x 64 with 1MB took 3m35s where 64MB took 17.6 s
        let small = hnsw_build_time(10_000.0, 64, 4.0, 16, 64, 0, 1_048_576.0).as_secs_f64();
        let fits = hnsw_build_time(10_000.0, 64, 4.0, 16, 64, 0, 67_108_864.0).as_secs_f64();
        assert!((8.0..16.0).contains(&(small / fits)), "{small} {fits}");
        // workers: none for a table under 8MB, then one per tripling
        assert_eq!(workers_for_table(1000.0, 8), 0);
        assert_eq!(workers_for_table(12_000.0, 8), 3);
        assert_eq!(workers_for_table(12_000.0, 2), 2);
    }
}
