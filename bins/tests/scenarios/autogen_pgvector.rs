//! `migrate-revision --autogenerate` with pgvector: the RAG applications' cases (a vector(1536) column, an
//! HNSW index with vector_cosine_ops and m / ef_construction, changing m, changing the
//! opclass, changing the dimension of an empty column), ivfflat, and halfvec / sparsevec
//! according to the pgvector version installed on the test server.

use crate::autogen_support::*;

const BASE: &str = "CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, embedding vector(384));";

fn with_hnsw(with: &str, opclass: &str) -> String {
    format!("{BASE}\nCREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding {opclass}) WITH ({with});")
}

#[test]
fn add_a_vector_1536_column_and_an_hnsw_index() {
    let s = with_base(BASE);
    let (up, down) = generate_one(
        &s,
        &format!("{BASE}\nALTER TABLE items ADD COLUMN embedding_large vector(1536);\nCREATE INDEX items_large_hnsw ON items USING hnsw (embedding_large vector_cosine_ops) WITH (m = 16, ef_construction = 64);"),
        &[],
    );
    has(
        &up,
        "ALTER TABLE public.items ADD COLUMN embedding_large public.vector(1536)",
    );
    has(&up, "CREATE INDEX items_large_hnsw ON public.items USING hnsw (embedding_large public.vector_cosine_ops) WITH (m = 16, ef_construction = 64)");
    let hz = hazards_before(&up, "CREATE INDEX items_large_hnsw");
    assert!(
        hz.iter()
            .any(|h| h.contains("builds an index") && h.contains("hnsw")),
        "{hz:?}"
    );
    has(&down, "DROP INDEX public.items_large_hnsw");
    has(
        &down,
        "ALTER TABLE public.items DROP COLUMN embedding_large",
    );
    converges(&s);
}

#[test]
fn a_new_table_with_a_vector_column_and_its_index_gets_no_index_hazard() {
    let s = with_base("CREATE EXTENSION IF NOT EXISTS vector;");
    let (up, _) = generate_one(
        &s,
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE docs (id int PRIMARY KEY, e vector(1536));
         CREATE INDEX docs_e ON docs USING hnsw (e vector_cosine_ops) WITH (m = 16, ef_construction = 64);",
        &[],
    );
    has(&up, "CREATE TABLE public.docs ( id integer NOT NULL, e public.vector(1536), CONSTRAINT docs_pkey PRIMARY KEY (id) )");
    has(&up, "CREATE INDEX docs_e ON public.docs USING hnsw (e public.vector_cosine_ops) WITH (m = 16, ef_construction = 64)");
    assert!(
        hazards_before(&up, "CREATE INDEX docs_e").is_empty(),
        "{up}"
    );
    converges(&s);
}

#[test]
fn changing_m_drops_and_recreates_the_index() {
    let s = with_base(&with_hnsw(
        "m = 16, ef_construction = 64",
        "vector_cosine_ops",
    ));
    let (up, down) = generate_one(
        &s,
        &with_hnsw("m = 32, ef_construction = 64", "vector_cosine_ops"),
        &[],
    );
    assert_eq!(
        statements(&up),
        [
            "DROP INDEX public.items_embedding_hnsw",
            "CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding public.vector_cosine_ops) WITH (m = 32, ef_construction = 64)"
        ],
        "{up}"
    );
    has(&down, "CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding public.vector_cosine_ops) WITH (m = 16, ef_construction = 64)");
    // no --allow-unsafe: a plain DROP INDEX takes a brief lock, a warning (docs/lint.md)
    converges(&s);
}

#[test]
fn with_parameters_compare_as_a_map() {
    let s = with_base(&with_hnsw(
        "m = 16, ef_construction = 64",
        "vector_cosine_ops",
    ));
    let r = autogen(
        &s,
        &with_hnsw("ef_construction = 64, m = 16", "vector_cosine_ops"),
        &[],
    )
    .ok();
    assert!(r.stdout.contains("No changes"), "{}", r.all());
    assert!(generated(&s).is_empty());
}

#[test]
fn changing_the_opclass_drops_and_recreates_the_index() {
    let s = with_base(&with_hnsw("m = 16", "vector_cosine_ops"));
    let (up, down) = generate_one(&s, &with_hnsw("m = 16", "vector_l2_ops"), &[]);
    assert_eq!(
        statements(&up),
        [
            "DROP INDEX public.items_embedding_hnsw",
            "CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding public.vector_l2_ops) WITH (m = 16)"
        ]
    );
    has(&down, "CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding public.vector_cosine_ops) WITH (m = 16)");
    // no --allow-unsafe: a plain DROP INDEX takes a brief lock, a warning (docs/lint.md)
    converges(&s);
}

#[test]
fn changing_the_dimension_of_an_empty_column_uses_a_cast() {
    let s = with_base(&with_hnsw("m = 16", "vector_cosine_ops"));
    let schema = with_hnsw("m = 16", "vector_cosine_ops").replace("vector(384)", "vector(768)");
    let (up, down) = generate_one(&s, &schema, &[]);
    has(&up, "ALTER TABLE public.items ALTER COLUMN embedding TYPE public.vector(768) USING embedding::public.vector(768)");
    let hz = hazards_before(&up, "ALTER TABLE public.items ALTER COLUMN embedding TYPE");
    assert!(
        hz.iter().any(|h| h.contains("rewrites the table")),
        "{hz:?}"
    );
    assert!(
        hz.iter()
            .any(|h| h.contains("vectors of the old dimension")),
        "{hz:?}"
    );
    // the HNSW index is rebuilt by the type change itself: not dropped
    assert!(!up.contains("DROP INDEX"), "{up}");
    has(&down, "ALTER TABLE public.items ALTER COLUMN embedding TYPE public.vector(384) USING embedding::public.vector(384)");
    converges(&s);
}

#[test]
fn ivfflat_lists_and_default_opclass() {
    let s = with_base(BASE);
    let (up, _) = generate_one(
        &s,
        &format!(
            "{BASE}\nCREATE INDEX items_ivf ON items USING ivfflat (embedding) WITH (lists = 100);"
        ),
        &[],
    );
    has(
        &up,
        "CREATE INDEX items_ivf ON public.items USING ivfflat (embedding) WITH (lists = 100)",
    );
    converges(&s);
}

#[test]
fn halfvec_and_sparsevec_follow_the_installed_pgvector_version() {
    let s = with_base(BASE);
    let (major, minor) = pgvector_version(&s);
    let schema = format!("{BASE}\nALTER TABLE items ADD COLUMN h halfvec(768);\nALTER TABLE items ADD COLUMN sp sparsevec(30000);\nCREATE INDEX items_h ON items USING hnsw (h halfvec_cosine_ops);");
    if (major, minor) >= (0, 7) {
        let (up, down) = generate_one(&s, &schema, &[]);
        has(
            &up,
            "ALTER TABLE public.items ADD COLUMN h public.halfvec(768)",
        );
        has(
            &up,
            "ALTER TABLE public.items ADD COLUMN sp public.sparsevec(30000)",
        );
        has(
            &up,
            "CREATE INDEX items_h ON public.items USING hnsw (h public.halfvec_cosine_ops)",
        );
        has(&down, "ALTER TABLE public.items DROP COLUMN sp");
        converges(&s);
    } else {
        // pgvector < 0.7 has no halfvec: schema.sql fails to load, with its line, and nothing
        // is written.
        let r = autogen(&s, &schema, &[]).code(2);
        assert!(r.stderr.contains("schema.sql:3:"), "{}", r.stderr);
        assert!(
            r.stderr.contains("type \"halfvec\" does not exist"),
            "{}",
            r.stderr
        );
        assert!(generated(&s).is_empty());
    }
}

/// pgvector 0.7's types with their indexes: halfvec (HNSW and IVFFlat), sparsevec (HNSW),
/// bit (Hamming and Jaccard) and a binary quantization expression index over a vector column.
fn quantized(h: &str, hops: &str, sp_with: &str, bops: &str, bq_with: &str) -> String {
    // the second shape also widens the sparse and bit columns
    let (sp, b) = if h == "768" { (1000, 64) } else { (2000, 128) };
    format!(
        "{BASE}
ALTER TABLE items ADD COLUMN h halfvec({h});
ALTER TABLE items ADD COLUMN sp sparsevec({sp});
ALTER TABLE items ADD COLUMN b bit({b});
CREATE INDEX items_h_hnsw ON items USING hnsw (h {hops}) WITH (m = 16);
CREATE INDEX items_h_ivf ON items USING ivfflat (h halfvec_l2_ops) WITH (lists = 10);
CREATE INDEX items_sp_hnsw ON items USING hnsw (sp sparsevec_l2_ops) WITH ({sp_with});
CREATE INDEX items_b_hnsw ON items USING hnsw (b {bops});
CREATE INDEX items_bq ON items USING hnsw ((binary_quantize(embedding)::bit(384)) bit_hamming_ops) WITH ({bq_with});"
    )
}

/// Generates, applies, checks, then goes down one revision and up again: the revision converges
/// both ways on the real database (autogenerate validated both directions on a shadow already).
#[track_caller]
fn converges_up_and_down(s: &crate::common::Scenario) {
    converges_up_and_down_with(s, &[]);
}

fn converges_up_and_down_with(s: &crate::common::Scenario, up_args: &[&str]) {
    converges_with(s, up_args);
    s.run("migrate-down", &[]).ok();
    converges_with(s, up_args);
}

#[test]
fn halfvec_sparsevec_bit_and_binary_quantization_indexes_and_their_changes() {
    let s = with_base(BASE);
    let first = quantized(
        "768",
        "halfvec_cosine_ops",
        "m = 16",
        "bit_hamming_ops",
        "m = 16",
    );
    if pgvector_version(&s) < (0, 7) {
        // pgvector 0.6 has no halfvec, and no HNSW opclass for bit: schema.sql fails to load,
        // naming the line, and nothing is written.
        let r = autogen(&s, &first, &[]).code(2);
        assert!(
            r.stderr.contains("schema.sql:3:")
                && r.stderr.contains("type \"halfvec\" does not exist"),
            "{}",
            r.stderr
        );
        let bq = format!("{BASE}\nCREATE INDEX items_bq ON items USING hnsw ((binary_quantize(embedding)::bit(384)) bit_hamming_ops);");
        let r = autogen(&s, &bq, &[]).code(2);
        assert!(r.stderr.contains("schema.sql:3:"), "{}", r.stderr);
        assert!(
            r.stderr.contains("binary_quantize") || r.stderr.contains("bit_hamming_ops"),
            "{}",
            r.stderr
        );
        assert!(generated(&s).is_empty());
        return;
    }
    let (up, down) = generate_one(&s, &first, &[]);
    has(
        &up,
        "ALTER TABLE public.items ADD COLUMN h public.halfvec(768)",
    );
    has(
        &up,
        "ALTER TABLE public.items ADD COLUMN sp public.sparsevec(1000)",
    );
    has(&up, "ALTER TABLE public.items ADD COLUMN b bit(64)");
    has(&up, "CREATE INDEX items_h_hnsw ON public.items USING hnsw (h public.halfvec_cosine_ops) WITH (m = 16)");
    has(&up, "CREATE INDEX items_h_ivf ON public.items USING ivfflat (h public.halfvec_l2_ops) WITH (lists = 10)");
    has(&up, "CREATE INDEX items_sp_hnsw ON public.items USING hnsw (sp public.sparsevec_l2_ops) WITH (m = 16)");
    has(
        &up,
        "CREATE INDEX items_b_hnsw ON public.items USING hnsw (b public.bit_hamming_ops)",
    );
    has(&up, "CREATE INDEX items_bq ON public.items USING hnsw (((public.binary_quantize(embedding))::bit(384)) public.bit_hamming_ops) WITH (m = 16)");
    has(&down, "DROP INDEX public.items_bq");
    has(&down, "ALTER TABLE public.items DROP COLUMN b");
    converges_up_and_down(&s);

    // Each changes: halfvec's dimension and opclass, sparsevec's dimension and WITH, bit's
    // length and opclass, the quantized index's WITH.
    let second = quantized(
        "512",
        "halfvec_ip_ops",
        "m = 24",
        "bit_jaccard_ops",
        "m = 16, ef_construction = 100",
    );
    autogen(&s, &second, &[]).ok();
    let files = generated(&s);
    assert_eq!(files.len(), 2, "{files:?}");
    let (up, down) = sections(&files[1].1);
    has(&up, "ALTER TABLE public.items ALTER COLUMN h TYPE public.halfvec(512) USING h::public.halfvec(512)");
    let hz = hazards_before(&up, "ALTER TABLE public.items ALTER COLUMN h TYPE");
    assert!(
        hz.iter()
            .any(|h| h.contains("vectors of the old dimension")),
        "{hz:?}"
    );
    has(&up, "ALTER TABLE public.items ALTER COLUMN sp TYPE public.sparsevec(2000) USING sp::public.sparsevec(2000)");
    has(
        &up,
        "ALTER TABLE public.items ALTER COLUMN b TYPE bit(128) USING b::bit(128)",
    );
    has(&up, "CREATE INDEX items_h_hnsw ON public.items USING hnsw (h public.halfvec_ip_ops) WITH (m = 16)");
    has(&up, "CREATE INDEX items_sp_hnsw ON public.items USING hnsw (sp public.sparsevec_l2_ops) WITH (m = 24)");
    has(
        &up,
        "CREATE INDEX items_b_hnsw ON public.items USING hnsw (b public.bit_jaccard_ops)",
    );
    has(&up, "CREATE INDEX items_bq ON public.items USING hnsw (((public.binary_quantize(embedding))::bit(384)) public.bit_hamming_ops) WITH (m = 16, ef_construction = 100)");
    for ix in ["items_h_hnsw", "items_sp_hnsw", "items_b_hnsw", "items_bq"] {
        has(&up, &format!("DROP INDEX public.{ix}"));
    }
    // the IVFFlat index on h is rebuilt by the type change itself
    assert!(!up.contains("DROP INDEX public.items_h_ivf"), "{up}");
    has(&down, "ALTER TABLE public.items ALTER COLUMN h TYPE public.halfvec(768) USING h::public.halfvec(768)");
    has(
        &down,
        "CREATE INDEX items_b_hnsw ON public.items USING hnsw (b public.bit_hamming_ops)",
    );
    // no --allow-unsafe: the plain DROP INDEX of the four rebuilt indexes is a brief lock (a
    // warning), and items is empty (the rewrites and builds are out of the gate's scope)
    converges_up_and_down(&s);
}

#[test]
fn a_vector_column_quantized_to_halfvec_with_an_expression_index() {
    let s = with_base(BASE);
    if pgvector_version(&s) < (0, 7) {
        let r = autogen(&s, &format!("{BASE}\nCREATE INDEX items_half ON items USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops);"), &[]).code(2);
        assert!(
            r.stderr.contains("schema.sql:3:") && r.stderr.contains("halfvec"),
            "{}",
            r.stderr
        );
        return;
    }
    let (up, _) = generate_one(
        &s,
        &format!("{BASE}\nCREATE INDEX items_half ON items USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops);"),
        &[],
    );
    has(&up, "CREATE INDEX items_half ON public.items USING hnsw (((embedding)::public.halfvec(384)) public.halfvec_cosine_ops)");
    converges_up_and_down(&s);
}

#[test]
fn hazards_say_what_the_application_feels_with_the_tables_size() {
    let s = with_base(BASE);
    s.run("migrate-up", &[]).ok();
    s.db.execute(
        "INSERT INTO items (body) SELECT 'chunk ' || i FROM generate_series(1, 2500) i; ANALYZE items;",
    );
    let schema = format!("{BASE}\nCREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);\nALTER TABLE items ADD COLUMN tenant int NOT NULL DEFAULT 1;");
    // --blocking: the plain build, in the main revision (by default it would go to a
    // concurrent revision, items holding rows)
    let r = autogen(&s, &schema, &["--blocking"]).ok();
    let (up, _) = sections(&generated(&s)[0].1);
    let hz = hazards_before(&up, "CREATE INDEX items_embedding_hnsw");
    assert_eq!(
        hz,
        ["-- hazard: builds an index: reads go on; writes to public.items (INSERT, UPDATE, DELETE) wait until the hnsw index is built (about 2,500 rows)"],
        "{up}"
    );
    assert!(
        r.stderr
            .contains("wait until the hnsw index is built (about 2,500 rows)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("warning: 1 index build on an existing table blocks writes to it while it runs; --concurrently moves it into a revision of its own as CREATE INDEX CONCURRENTLY (transactional: false); with --blocking, the lint gate refuses"),
        "{}",
        r.stderr
    );
    // a constant default is a brief lock whatever the size
    let hz = hazards_before(&up, "ALTER TABLE public.items ADD COLUMN tenant");
    assert_eq!(
        hz,
        ["-- hazard: ACCESS EXCLUSIVE lock: reads and writes of public.items wait, briefly (behind any query already running on it)"]
    );
}

/// items with an HNSW index (m = 16), applied, holding 3,000 rows (not analyzed: autogenerate
/// and the gate both look for rows themselves).
fn populated_items() -> crate::common::Scenario {
    let s = with_base(&format!(
        "{SMALL}\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 16);"
    ));
    s.run("migrate-up", &[]).ok();
    s.db.execute(
        "INSERT INTO items (body, e) SELECT 'chunk ' || i, array_fill((i % 97)::real / 97, ARRAY[16])::vector FROM generate_series(1, 3000) i",
    );
    s
}

const SMALL: &str = "CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, e vector(16));";

#[test]
fn an_index_change_on_a_populated_table_is_written_in_the_form_the_gate_accepts() {
    for (what, index) in [
        ("m", "USING hnsw (e vector_cosine_ops) WITH (m = 32)"),
        ("opclass", "USING hnsw (e vector_l2_ops) WITH (m = 16)"),
        (
            "hnsw -> ivfflat",
            "USING ivfflat (e vector_cosine_ops) WITH (lists = 10)",
        ),
    ] {
        let s = populated_items();
        let schema = format!("{SMALL}\nCREATE INDEX items_e ON items {index};");
        let r = autogen(&s, &schema, &[]).ok();
        assert!(
            !r.stderr.contains("--concurrently moves"),
            "{what}: {}",
            r.stderr
        );
        // one revision: nothing is left for a transactional one
        let files = generated(&s);
        assert_eq!(files.len(), 1, "{what}: {files:?}");
        assert!(
            files[0].1.contains("-- transactional: false\n"),
            "{what}: {}",
            files[0].1
        );
        let (up, _) = sections(&files[0].1);
        let st = statements(&up);
        assert_eq!(st.len(), 3, "{what}: {up}");
        assert!(
            st[0].starts_with("CREATE INDEX CONCURRENTLY items_e_new ON public.items"),
            "{what}: {up}"
        );
        assert_eq!(
            st[1..],
            [
                "DROP INDEX CONCURRENTLY public.items_e",
                "ALTER INDEX public.items_e_new RENAME TO items_e"
            ],
            "{what}: {up}"
        );
        // the lint of the database it was generated against: no error-level finding
        let r = s
            .run("migrate-check", &["--lint", "--format", "json"])
            .code(1); // pending
        let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(doc["lint"]["errors"], 0, "{what}: {doc}");
        // up (no --allow-unsafe), no drift, down, up again
        converges(&s);
        assert_eq!(
            s.db.strings("SELECT count(*)::text FROM items"),
            ["3000"],
            "{what}"
        );
        let def =
            s.db.strings("SELECT indexdef FROM pg_indexes WHERE indexname = 'items_e'");
        assert_eq!(def.len(), 1, "{what}: {def:?}");
    }
}

#[test]
fn blocking_writes_the_plain_form_which_the_gate_refuses_on_rows() {
    let s = populated_items();
    let schema = format!(
        "{SMALL}\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 32);"
    );
    let r = autogen(&s, &schema, &["--blocking"]).ok();
    assert!(r.stderr.contains("with --blocking"), "{}", r.stderr);
    let files = generated(&s);
    assert_eq!(files.len(), 1, "{files:?}");
    let (up, _) = sections(&files[0].1);
    assert_eq!(
        statements(&up),
        [
            "DROP INDEX public.items_e",
            "CREATE INDEX items_e ON public.items USING hnsw (e public.vector_cosine_ops) WITH (m = 32)"
        ],
        "{up}"
    );
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr.contains("vector-index-not-concurrent"),
        "{}",
        r.stderr
    );
    // on an empty table nothing moves: the plain form is what the gate accepts there
    let s = with_base(&format!(
        "{SMALL}\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 16);"
    ));
    s.run("migrate-up", &[]).ok();
    generate_one(&s, &schema, &[]);
    converges(&s);
}

#[test]
fn a_column_type_change_on_a_populated_table_is_written_as_a_vector_swap_or_said_to_need_one() {
    let s = populated_items();
    if pgvector_version(&s) >= (0, 7) {
        // to halfvec with its operator class: the values derive from the old ones in SQL, so
        // the safe form is the swap chain, which the gate accepts on this database
        let schema = format!(
            "{}\nCREATE INDEX items_e ON items USING hnsw (e halfvec_cosine_ops) WITH (m = 16);",
            SMALL.replace("e vector(16)", "e halfvec(16)")
        );
        let r = autogen(&s, &schema, &[]).ok();
        assert!(
            r.stderr.contains("vector swap: public.items.e on a table with rows, written as 6 revisions (002 to 007)"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("lint gate refuses"), "{}", r.stderr);
        let files = generated(&s);
        assert_eq!(files.len(), 6, "{files:?}");
        assert!(
            files[0].1.contains("ADD COLUMN e_next halfvec(16)"),
            "{}",
            files[0].1
        );
        assert!(
            files[1].1.contains("-- backfill: items.id batch=1000"),
            "{}",
            files[1].1
        );
        assert!(
            files[2]
                .1
                .contains("CREATE INDEX CONCURRENTLY items_e_next"),
            "{}",
            files[2].1
        );
        let r = s.run("migrate-up", &[]).ok();
        assert!(
            r.stderr.contains("contract pending: stopping before 006"),
            "{}",
            r.stderr
        );
        s.run("migrate-up", &["--contract"]).ok();
        // no drift left: the database is what schema.sql says, every row kept
        let check = s.run("migrate-check", &[]).ok();
        assert!(check.stdout.contains("OK"), "{}", check.all());
        assert_eq!(
            s.db.strings("SELECT count(*)::text FROM items WHERE e IS NOT NULL"),
            ["3000"]
        );
        // --blocking opts out: the plain ALTER COLUMN ... TYPE, which the gate refuses on rows
        let s = populated_items();
        autogen(&s, &schema, &["--blocking"]).ok();
        assert_eq!(generated(&s).len(), 1);
        let r = s.run("migrate-up", &[]).code(7);
        assert!(
            r.stderr.contains("vector-column-type-change"),
            "{}",
            r.stderr
        );
    }
    // a new dimension: SQL cannot compute the new embeddings; autogenerate writes the plain
    // form, says at once that the gate refuses it, and points to the swap with a program
    let s = populated_items();
    let schema = format!(
        "{}\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 16);",
        SMALL.replace("e vector(16)", "e vector(32)")
    );
    let r = autogen(&s, &schema, &[]).ok();
    assert!(
        r.stderr.contains("warning: migrate-up's lint gate refuses this on the database (exit 7 without --allow-unsafe): migrations/002_auto.sql:")
            && r.stderr.contains("vector-column-type-change"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "migrate-revision --vector-swap public.items.e --to 'vector(32)' --run '<command>'"
        ),
        "{}",
        r.stderr
    );
    // retort's vector rule says more than squawk's generic one about the same statement
    assert!(!r.stderr.contains("changing-column-type"), "{}", r.stderr);
    let r = s.run("migrate-up", &[]).code(7);
    assert!(
        r.stderr.contains("vector-column-type-change"),
        "{}",
        r.stderr
    );
    // an index change alone says nothing of the kind: its concurrent form passes
    let s = populated_items();
    let r = autogen(
        &s,
        &format!("{SMALL}\nCREATE INDEX items_e ON items USING hnsw (e vector_cosine_ops) WITH (m = 24);"),
        &[],
    )
    .ok();
    assert!(!r.stderr.contains("lint gate refuses"), "{}", r.stderr);
}
