//! `migrate-revision --autogenerate`: one test per object kind and change. Each checks the
//! generated SQL; convergence (up gives schema.sql's schema, down gives the replay back) is
//! checked by the binary's own validation (a failed validation exits 4 and writes nothing),
//! and for several by applying the revision and running migrate-check.

use crate::autogen_support::*;

#[test]
fn schemas_and_extensions_are_created_and_dropped() {
    let s = with_base("SELECT 1;");
    let (up, down) = generate_one(
        &s,
        "CREATE SCHEMA app;\nCOMMENT ON SCHEMA app IS 'the app';\nCREATE EXTENSION vector;\n",
        &[],
    );
    has(&up, "CREATE SCHEMA app");
    has(&up, "COMMENT ON SCHEMA app IS 'the app'");
    has(
        &up,
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public",
    );
    has(&down, "DROP EXTENSION vector");
    has(&down, "DROP SCHEMA app");
    converges(&s);
}

#[test]
fn enum_types_are_created_and_values_added_with_their_position() {
    let s = with_base(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');\nCREATE TABLE t (id int PRIMARY KEY, m mood);",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TYPE mood AS ENUM ('angry', 'sad', 'ok', 'happy', 'ecstatic');\nCREATE TYPE color AS ENUM ('red');\nCREATE TABLE t (id int PRIMARY KEY, m mood);",
        &[],
    );
    has(&up, "CREATE TYPE public.color AS ENUM ('red')");
    has(&up, "ALTER TYPE public.mood ADD VALUE 'angry' BEFORE 'sad'");
    has(&up, "ALTER TYPE public.mood ADD VALUE 'ok' AFTER 'sad'");
    has(
        &up,
        "ALTER TYPE public.mood ADD VALUE 'ecstatic' AFTER 'happy'",
    );
    // Down: values cannot be removed in place: the recreate recipe.
    has(&down, "ALTER TYPE public.mood RENAME TO mood_retort_old");
    has(&down, "CREATE TYPE public.mood AS ENUM ('sad', 'happy')");
    has(
        &down,
        "ALTER TABLE public.t ALTER COLUMN m TYPE public.mood USING m::text::public.mood",
    );
    has(&down, "DROP TYPE public.mood_retort_old");
    has(&down, "DROP TYPE public.color");
    converges(&s);
}

#[test]
fn enum_value_removed_by_the_recreate_recipe_keeps_defaults_and_arrays() {
    let s = with_base(
        "CREATE TYPE st AS ENUM ('a', 'b', 'c');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'a', tags st[]);",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TYPE st AS ENUM ('a', 'c');\nCREATE TABLE t (id int PRIMARY KEY, s st NOT NULL DEFAULT 'a', tags st[]);",
        &[],
    );
    let stmts = statements(&up);
    let expected = [
        "ALTER TYPE public.st RENAME TO st_retort_old",
        "CREATE TYPE public.st AS ENUM ('a', 'c')",
        "ALTER TABLE public.t ALTER COLUMN s DROP DEFAULT",
        "ALTER TABLE public.t ALTER COLUMN s TYPE public.st USING s::text::public.st",
        "ALTER TABLE public.t ALTER COLUMN s SET DEFAULT 'a'::public.st",
        "ALTER TABLE public.t ALTER COLUMN tags TYPE public.st[] USING tags::text[]::public.st[]",
        "DROP TYPE public.st_retort_old",
    ];
    assert_eq!(stmts, expected, "{up}");
    assert!(
        hazards_before(&up, "ALTER TABLE public.t ALTER COLUMN s TYPE")
            .iter()
            .any(|h| h.contains("fails if a row of public.t holds a value removed"))
    );
    // Down adds 'b' back in place.
    has(&down, "ALTER TYPE public.st ADD VALUE 'b' AFTER 'a'");
    converges(&s);
}

#[test]
fn sequences_with_options_and_ownership() {
    let s = with_base("CREATE SEQUENCE s1;\nCREATE TABLE t (id int PRIMARY KEY);");
    let (up, down) = generate_one(
        &s,
        "CREATE SEQUENCE s1 INCREMENT BY 10 CACHE 5;\nCREATE SEQUENCE s2 AS integer START WITH 100;\nCREATE TABLE t (id int PRIMARY KEY, n bigserial);",
        &[],
    );
    has(&up, "ALTER SEQUENCE public.s1 AS bigint INCREMENT BY 10 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 5 NO CYCLE");
    has(&up, "CREATE SEQUENCE public.s2 AS integer START WITH 100");
    // a serial column is written as written, not as sequence + nextval + OWNED BY
    has(&up, "ALTER TABLE public.t ADD COLUMN n bigserial");
    assert!(!up.contains("t_n_seq"), "{up}");
    has(&down, "DROP SEQUENCE public.s2");
    // The serial sequence goes with its column.
    assert!(!down.contains("DROP SEQUENCE public.t_n_seq"), "{down}");
    converges(&s);

    // A sequence that is not exactly serial's (its own options) keeps the long form.
    let s = with_base("CREATE TABLE t (id int PRIMARY KEY);");
    let (up, _) = generate_one(
        &s,
        "CREATE TABLE t (id int PRIMARY KEY, n bigserial);\nALTER SEQUENCE t_n_seq CACHE 20;\nCREATE TABLE u (id serial PRIMARY KEY, k smallserial);",
        &[],
    );
    has(&up, "CREATE SEQUENCE public.t_n_seq CACHE 20");
    has(&up, "ALTER TABLE public.t ADD COLUMN n bigint DEFAULT nextval('public.t_n_seq'::regclass) NOT NULL");
    has(&up, "ALTER SEQUENCE public.t_n_seq OWNED BY public.t.n");
    has(
        &up,
        "CREATE TABLE public.u ( id serial, k smallserial, CONSTRAINT u_pkey PRIMARY KEY (id) )",
    );
    converges(&s);
}

#[test]
fn tables_are_created_with_everything_and_dropped() {
    let s = with_base("CREATE TABLE old (id int);");
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (
            id bigint GENERATED ALWAYS AS IDENTITY (START WITH 7) PRIMARY KEY,
            name text COLLATE \"C\" NOT NULL DEFAULT 'x',
            n int GENERATED ALWAYS AS (id * 2) STORED,
            CONSTRAINT name_len CHECK (length(name) < 100)
        );
        CREATE UNLOGGED TABLE cache (k text PRIMARY KEY);",
        &[],
    );
    has(
        &up,
        "CREATE TABLE public.t ( id bigint GENERATED ALWAYS AS IDENTITY (START WITH 7), name text COLLATE pg_catalog.\"C\" DEFAULT 'x'::text NOT NULL, n integer GENERATED ALWAYS AS (id * 2) STORED, CONSTRAINT name_len CHECK (length(name) < 100), CONSTRAINT t_pkey PRIMARY KEY (id) )",
    );
    has(&up, "CREATE UNLOGGED TABLE public.cache ( k text NOT NULL, CONSTRAINT cache_pkey PRIMARY KEY (k) )");
    has(&up, "DROP TABLE public.old");
    assert!(hazards_before(&up, "DROP TABLE public.old")[0].starts_with("-- hazard: deletes data"));
    has(&down, "CREATE TABLE public.old ( id integer )");
    has(&down, "DROP TABLE public.t");
    converges(&s);
}

#[test]
fn column_changes_type_default_not_null_identity_generated_collation() {
    let s = with_base(
        "CREATE TABLE t (id int PRIMARY KEY, a int DEFAULT 1, b text, c int, d int GENERATED BY DEFAULT AS IDENTITY, e int, g int GENERATED ALWAYS AS (id + 1) STORED, h text, gone text);",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (id int PRIMARY KEY, a bigint DEFAULT 2, b text NOT NULL, c int GENERATED ALWAYS AS IDENTITY, d int, e int DEFAULT 5, g int GENERATED ALWAYS AS (id + 2) STORED, h text COLLATE \"C\", added numeric(10,2) NOT NULL DEFAULT 0);",
        &[],
    );
    has(&up, "ALTER TABLE public.t DROP COLUMN gone");
    assert!(hazards_before(&up, "ALTER TABLE public.t DROP COLUMN gone")
        .iter()
        .any(|h| h.starts_with("-- hazard: deletes data")));
    has(
        &up,
        "ALTER TABLE public.t ADD COLUMN added numeric(10,2) DEFAULT 0 NOT NULL",
    );
    // type change: default dropped first, USING, default set after
    let st = statements(&up);
    let i = st
        .iter()
        .position(|x| x == "ALTER TABLE public.t ALTER COLUMN a DROP DEFAULT")
        .expect("drop default");
    assert_eq!(
        st[i + 1],
        "ALTER TABLE public.t ALTER COLUMN a TYPE bigint USING a::bigint"
    );
    assert_eq!(
        st[i + 2],
        "ALTER TABLE public.t ALTER COLUMN a SET DEFAULT 2"
    );
    let hz = hazards_before(&up, "ALTER TABLE public.t ALTER COLUMN a TYPE bigint");
    assert!(
        hz.iter()
            .any(|h| h.starts_with("-- hazard: rewrites the table")),
        "{hz:?}"
    );
    has(&up, "ALTER TABLE public.t ALTER COLUMN b SET NOT NULL");
    has(&up, "ALTER TABLE public.t ALTER COLUMN c SET NOT NULL");
    has(
        &up,
        "ALTER TABLE public.t ALTER COLUMN c ADD GENERATED ALWAYS AS IDENTITY",
    );
    has(&up, "ALTER TABLE public.t ALTER COLUMN d DROP IDENTITY");
    has(&up, "ALTER TABLE public.t ALTER COLUMN e SET DEFAULT 5");
    // a generated column's expression cannot change in place: dropped and added
    has(&up, "ALTER TABLE public.t DROP COLUMN g");
    has(
        &up,
        "ALTER TABLE public.t ADD COLUMN g integer GENERATED ALWAYS AS (id + 2) STORED",
    );
    has(
        &up,
        "ALTER TABLE public.t ALTER COLUMN h TYPE text COLLATE pg_catalog.\"C\"",
    );
    has(
        &down,
        "ALTER TABLE public.t ALTER COLUMN h TYPE text COLLATE pg_catalog.\"default\"",
    );
    has(
        &down,
        "ALTER TABLE public.t ALTER COLUMN a TYPE integer USING a::integer",
    );
    has(
        &down,
        "ALTER TABLE public.t ALTER COLUMN d ADD GENERATED BY DEFAULT AS IDENTITY",
    );
    has(&down, "ALTER TABLE public.t ALTER COLUMN b DROP NOT NULL");
    converges(&s);
}

#[test]
fn constraints_primary_unique_check_exclusion_and_not_valid() {
    let s = with_base(
        "CREATE TABLE t (id int NOT NULL, code text, n int, during tstzrange, CONSTRAINT old_u UNIQUE (code));
         ALTER TABLE t ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID;",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (id int NOT NULL, code text, n int, during tstzrange,
            CONSTRAINT t_pkey PRIMARY KEY (id),
            CONSTRAINT t_code_key UNIQUE (code),
            CONSTRAINT n_pos CHECK (n > 0),
            CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&));
         -- NOT VALID is ignored inside CREATE TABLE (PostgreSQL validates at once): use ALTER
         ALTER TABLE t ADD CONSTRAINT n_small CHECK (n < 1000) NOT VALID;",
        &[],
    );
    has(
        &up,
        "ALTER TABLE public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id)",
    );
    assert!(
        hazards_before(&up, "ALTER TABLE public.t ADD CONSTRAINT t_pkey")[0]
            .starts_with("-- hazard: builds an index")
    );
    // the same unique constraint under another name is renamed, not rebuilt
    has(
        &up,
        "ALTER TABLE public.t RENAME CONSTRAINT old_u TO t_code_key",
    );
    has(
        &up,
        "ALTER TABLE public.t ADD CONSTRAINT n_small CHECK (n < 1000) NOT VALID",
    );
    has(&up, "ALTER TABLE public.t VALIDATE CONSTRAINT n_pos");
    has(
        &up,
        "ALTER TABLE public.t ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)",
    );
    // back to NOT VALID: dropped and added NOT VALID
    has(&down, "ALTER TABLE public.t DROP CONSTRAINT n_pos");
    has(
        &down,
        "ALTER TABLE public.t ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID",
    );
    has(&down, "ALTER TABLE public.t DROP CONSTRAINT t_pkey");
    converges(&s);
}

#[test]
fn check_expressions_come_out_as_written_where_the_catalogs_form_simplifies_safely() {
    let s = with_base("CREATE TABLE docs (id int, status text, kind varchar(10), price numeric);");
    let (up, _) = generate_one(
        &s,
        "CREATE TABLE docs (id int, status text, kind varchar(10), price numeric,
            CONSTRAINT status_ok CHECK (status IN ('draft', 'it''s live')),
            CONSTRAINT kind_ok CHECK (kind IN ('pdf', 'html')),
            CONSTRAINT price_ok CHECK (price > 0 AND price < 1e6));",
        &[],
    );
    has(&up, "ALTER TABLE public.docs ADD CONSTRAINT status_ok CHECK (status IN ('draft', 'it''s live'))");
    has(
        &up,
        "ALTER TABLE public.docs ADD CONSTRAINT kind_ok CHECK (kind IN ('pdf', 'html'))",
    );
    // casts the catalog added to numbers stay: removing them is not always the same check
    has(&up, "ALTER TABLE public.docs ADD CONSTRAINT price_ok CHECK ((price > (0)::numeric) AND (price < '1000000'::numeric))");
    converges(&s);
}

#[test]
fn foreign_keys_are_added_after_every_table_and_dropped_before() {
    let s = with_base("CREATE TABLE parent (id int PRIMARY KEY);");
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE parent (id int PRIMARY KEY, child_id int);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE);
         ALTER TABLE parent ADD CONSTRAINT parent_child_fk FOREIGN KEY (child_id) REFERENCES child (id) NOT VALID;",
        &[],
    );
    let st = statements(&up);
    let create = st
        .iter()
        .position(|x| x.starts_with("CREATE TABLE public.child"))
        .unwrap();
    let fk1 = st
        .iter()
        .position(|x| x.contains("ADD CONSTRAINT child_parent_id_fkey"))
        .unwrap();
    let fk2 = st
        .iter()
        .position(|x| x.contains("ADD CONSTRAINT parent_child_fk"))
        .unwrap();
    assert!(create < fk1 && create < fk2, "{up}");
    has(&up, "ALTER TABLE public.child ADD CONSTRAINT child_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.parent(id) ON DELETE CASCADE");
    has(&up, "ALTER TABLE public.parent ADD CONSTRAINT parent_child_fk FOREIGN KEY (child_id) REFERENCES public.child(id) NOT VALID");
    let dst = statements(&down);
    let drop_fk = dst
        .iter()
        .position(|x| x.contains("DROP CONSTRAINT parent_child_fk"))
        .unwrap();
    let drop_t = dst
        .iter()
        .position(|x| x == "DROP TABLE public.child")
        .unwrap();
    assert!(drop_fk < drop_t, "{down}");
    converges(&s);
}

#[test]
fn foreign_key_cycles_between_new_tables() {
    let s = with_base("SELECT 1;");
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE a (id int PRIMARY KEY, b_id int);
         CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id));
         ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES b (id);",
        &[],
    );
    let st = statements(&up);
    assert!(st[0].starts_with("CREATE TABLE public.a ("), "{up}");
    assert!(st[1].starts_with("CREATE TABLE public.b ("), "{up}");
    assert_eq!(
        st[2],
        "ALTER TABLE public.a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES public.b(id)"
    );
    assert_eq!(st[3], "ALTER TABLE public.b ADD CONSTRAINT b_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id)");
    assert_eq!(
        statements(&down),
        [
            "ALTER TABLE public.a DROP CONSTRAINT a_b_fk",
            "ALTER TABLE public.b DROP CONSTRAINT b_a_id_fkey",
            "DROP TABLE public.b",
            "DROP TABLE public.a"
        ]
    );
    converges(&s);
}

#[test]
fn indexes_of_every_kind_partial_expression_include_and_parameters() {
    let s = with_base(
        "CREATE TABLE t (id int PRIMARY KEY, body text, tags text[], at timestamptz, k int);
         CREATE INDEX t_k ON t (k);
         CREATE INDEX t_body_old ON t (body);",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (id int PRIMARY KEY, body text, tags text[], at timestamptz, k int);
         CREATE INDEX t_k ON t (k) WITH (fillfactor = 70);
         CREATE INDEX t_body ON t (body);
         CREATE INDEX t_lower ON t (lower(body)) INCLUDE (id) WHERE body IS NOT NULL;
         CREATE INDEX t_tags ON t USING gin (tags);
         CREATE INDEX t_at ON t USING brin (at) WITH (pages_per_range = 16);
         CREATE INDEX t_k_hash ON t USING hash (k);
         CREATE UNIQUE INDEX t_k_desc ON t (k DESC NULLS LAST);",
        &[],
    );
    // same definition, other name: renamed
    has(&up, "ALTER INDEX public.t_body_old RENAME TO t_body");
    // WITH parameters changed: dropped and created
    has(&up, "DROP INDEX public.t_k");
    has(
        &up,
        "CREATE INDEX t_k ON public.t USING btree (k) WITH (fillfactor = 70)",
    );
    has(&up, "CREATE INDEX t_lower ON public.t USING btree (lower(body)) INCLUDE (id) WHERE (body IS NOT NULL)");
    has(&up, "CREATE INDEX t_tags ON public.t USING gin (tags)");
    has(
        &up,
        "CREATE INDEX t_at ON public.t USING brin (at) WITH (pages_per_range = 16)",
    );
    has(&up, "CREATE INDEX t_k_hash ON public.t USING hash (k)");
    has(
        &up,
        "CREATE UNIQUE INDEX t_k_desc ON public.t USING btree (k DESC NULLS LAST)",
    );
    let hz = hazards_before(&up, "CREATE INDEX t_tags");
    assert!(
        hz.iter()
            .any(|h| h.starts_with("-- hazard: builds an index")),
        "{hz:?}"
    );
    has(&down, "CREATE INDEX t_k ON public.t USING btree (k)");
    has(&down, "ALTER INDEX public.t_body RENAME TO t_body_old");
    // no --allow-unsafe: a plain DROP INDEX takes a brief lock, a warning (docs/lint.md)
    converges(&s);
}

#[test]
fn comments_on_tables_columns_and_indexes() {
    let s = with_base("CREATE TABLE t (id int, n int);\nCOMMENT ON COLUMN t.n IS 'old';\nCREATE INDEX t_n ON t (n);");
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (id int, n int);
         COMMENT ON TABLE t IS 'things';
         COMMENT ON COLUMN t.id IS 'it''s the id';
         CREATE INDEX t_n ON t (n);
         COMMENT ON INDEX t_n IS 'by n';",
        &[],
    );
    has(&up, "COMMENT ON TABLE public.t IS 'things'");
    has(&up, "COMMENT ON COLUMN public.t.id IS 'it''s the id'");
    has(&up, "COMMENT ON COLUMN public.t.n IS NULL");
    has(&up, "COMMENT ON INDEX public.t_n IS 'by n'");
    has(&down, "COMMENT ON TABLE public.t IS NULL");
    has(&down, "COMMENT ON COLUMN public.t.n IS 'old'");
    converges(&s);
}

#[test]
fn views_and_materialized_views_are_recreated_with_their_dependents() {
    let s = with_base(
        "CREATE TABLE t (id int PRIMARY KEY, n int);
         CREATE VIEW v AS SELECT id, n FROM t;
         CREATE VIEW vv AS SELECT id FROM v;
         CREATE MATERIALIZED VIEW mv AS SELECT id, n FROM t;
         CREATE UNIQUE INDEX mv_id ON mv (id);",
    );
    let (up, down) = generate_one(
        &s,
        "CREATE TABLE t (id int PRIMARY KEY, n bigint);
         CREATE VIEW v AS SELECT id, n FROM t;
         CREATE VIEW vv AS SELECT id FROM v;
         CREATE MATERIALIZED VIEW mv AS SELECT id, n FROM t;
         CREATE UNIQUE INDEX mv_id ON mv (id);
         CREATE VIEW counted AS SELECT count(*) AS c FROM t;",
        &[],
    );
    let st = statements(&up);
    let pos = |p: &str| {
        st.iter()
            .position(|x| x == p || x.starts_with(&format!("{p} ")))
            .unwrap_or_else(|| panic!("no {p} in {up}"))
    };
    // dependents dropped first, the column changed, then recreated in dependency order
    assert!(pos("DROP VIEW public.vv") < pos("DROP VIEW public.v"));
    assert!(pos("DROP VIEW public.v") < pos("ALTER TABLE public.t ALTER COLUMN n TYPE bigint"));
    assert!(
        pos("DROP MATERIALIZED VIEW public.mv")
            < pos("ALTER TABLE public.t ALTER COLUMN n TYPE bigint")
    );
    assert!(
        pos("ALTER TABLE public.t ALTER COLUMN n TYPE bigint") < pos("CREATE VIEW public.v AS")
    );
    assert!(pos("CREATE VIEW public.v AS") < pos("CREATE VIEW public.vv AS"));
    assert!(
        pos("CREATE MATERIALIZED VIEW public.mv AS")
            < pos("CREATE UNIQUE INDEX mv_id ON public.mv")
    );
    has(
        &up,
        "CREATE VIEW public.counted AS SELECT count(*) AS c FROM public.t",
    );
    has(&down, "DROP VIEW public.counted");
    converges(&s);
}

#[test]
fn objects_not_handled_are_reported_by_name() {
    let s = with_base("CREATE TABLE t (id int, at timestamptz);");
    let r = autogen(
        &s,
        "CREATE TABLE t (id int, at timestamptz, n int);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at = now(); RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
         ALTER TABLE t ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON t USING (id > 0);
         CREATE DOMAIN posint AS int CHECK (VALUE > 0);",
        &[],
    )
    .ok();
    for name in [
        "policy own on public.t",
        "row level security public.t",
        "domain public.posint",
    ] {
        assert!(
            r.stderr
                .contains(&format!("{name} (only in the schema file)")),
            "{name}:\n{}",
            r.stderr
        );
    }
    let files = generated(&s);
    let (up, _) = sections(&files[0].1);
    assert!(
        up.contains(
            "-- not compared (write it by hand): policy own on public.t (only in schema.sql)"
        ),
        "{up}"
    );
    has(&up, "ALTER TABLE public.t ADD COLUMN n integer");
    // functions and triggers are compared (autogen_routines)
    assert!(
        r.stderr.contains("create function public.touch()")
            && r.stderr.contains("create trigger t_touch on public.t"),
        "{}",
        r.stderr
    );
}
