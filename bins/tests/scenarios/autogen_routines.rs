//! Functions, procedures and triggers in autogenerate and drift: the RAG schema's triggers that
//! keep `updated_at` and a `tsvector` column current, a changed body (`CREATE OR REPLACE`), a
//! changed result (dropped and created again, with its triggers), a function a column default
//! calls (created before the table) and a SQL function that reads a table (created after it).

use crate::autogen_support::*;

const DOCS: &str = "CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, tsv tsvector, updated_at timestamptz NOT NULL DEFAULT now());";

const TRIGGERS: &str = "
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END $$;
CREATE FUNCTION docs_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.tsv := to_tsvector('english', NEW.body);
  RETURN NEW;
END $$;
CREATE TRIGGER docs_touch BEFORE UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER docs_tsv BEFORE INSERT OR UPDATE OF body ON docs FOR EACH ROW EXECUTE FUNCTION docs_tsv();";

#[test]
fn triggers_keeping_updated_at_and_tsvector_current_are_generated_and_work() {
    let s = with_base(DOCS);
    let (up, down) = generate_one(&s, &format!("{DOCS}{TRIGGERS}"), &[]);
    let st = statements(&up);
    let pos = |p: &str| {
        st.iter()
            .position(|x| x.starts_with(p))
            .unwrap_or_else(|| panic!("no {p} in {up}"))
    };
    assert!(pos("CREATE OR REPLACE FUNCTION public.touch()") < pos("CREATE TRIGGER docs_touch"));
    assert!(pos("CREATE OR REPLACE FUNCTION public.docs_tsv()") < pos("CREATE TRIGGER docs_tsv"));
    has(&up, "CREATE TRIGGER docs_touch BEFORE UPDATE ON public.docs FOR EACH ROW EXECUTE FUNCTION public.touch()");
    has(&up, "CREATE TRIGGER docs_tsv BEFORE INSERT OR UPDATE OF body ON public.docs FOR EACH ROW EXECUTE FUNCTION public.docs_tsv()");
    assert!(
        !up.contains("not compared"),
        "functions and triggers are compared now:\n{up}"
    );
    let sd = statements(&down);
    let dpos = |p: &str| {
        sd.iter()
            .position(|x| x == p)
            .unwrap_or_else(|| panic!("no {p} in {down}"))
    };
    assert!(dpos("DROP TRIGGER docs_touch ON public.docs") < dpos("DROP FUNCTION public.touch()"));
    assert!(dpos("DROP TRIGGER docs_tsv ON public.docs") < dpos("DROP FUNCTION public.docs_tsv()"));
    converges(&s);

    // the triggers really run
    s.db.execute("INSERT INTO docs (id, body, updated_at) VALUES (1, 'cats purr', '2000-01-01')");
    s.db.execute("UPDATE docs SET body = 'dogs bark' WHERE id = 1");
    assert_eq!(
        s.db.strings("SELECT tsv::text || ' ' || (updated_at > '2001-01-01')::text FROM docs"),
        ["'bark':2 'dog':1 true"]
    );
    // and the way down removes them
    s.run("migrate-down", &[]).ok();
    assert!(s
        .db
        .strings("SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal")
        .is_empty());
    assert!(s
        .db
        .strings("SELECT proname::text FROM pg_proc WHERE proname IN ('touch', 'docs_tsv')")
        .is_empty());
}

#[test]
fn a_changed_body_is_replaced_in_place_and_a_changed_result_recreates_with_its_triggers() {
    let base = format!("{DOCS}{TRIGGERS}
CREATE FUNCTION doc_count() RETURNS integer LANGUAGE sql AS $$ SELECT count(*)::int FROM public.docs $$;");
    let s = with_base(&base);
    // the body of touch() changes: CREATE OR REPLACE, no trigger touched
    let schema = base.replace(
        "NEW.updated_at := clock_timestamp();",
        "NEW.updated_at := now();",
    );
    let (up, down) = generate_one(&s, &schema, &[]);
    // (the body holds ";\n": the sections are read as text here)
    assert_eq!(up.matches("CREATE OR REPLACE FUNCTION").count(), 1, "{up}");
    assert!(
        up.contains("CREATE OR REPLACE FUNCTION public.touch()")
            && up.contains("NEW.updated_at := now();"),
        "{up}"
    );
    assert!(
        !up.contains("DROP") && !up.contains("TRIGGER docs_touch"),
        "{up}"
    );
    assert!(
        down.contains("CREATE OR REPLACE FUNCTION public.touch()")
            && down.contains("clock_timestamp()"),
        "{down}"
    );
    converges(&s);

    // the result type of doc_count() changes: dropped and created again
    let schema2 = schema.replace(
        "doc_count() RETURNS integer LANGUAGE sql AS $$ SELECT count(*)::int",
        "doc_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*)",
    );
    let r = autogen(&s, &schema2, &[]).ok();
    let files = generated(&s);
    let (up, down) = sections(&files.last().unwrap().1);
    let st = statements(&up);
    assert_eq!(
        st[0], "DROP FUNCTION public.doc_count()",
        "{up}\n{}",
        r.stderr
    );
    assert!(
        st[1].starts_with("CREATE OR REPLACE FUNCTION public.doc_count()")
            && st[1].contains("RETURNS bigint"),
        "{up}"
    );
    assert!(statements(&down)[1].contains("RETURNS integer"), "{down}");
    converges(&s);
}

#[test]
fn a_function_a_default_calls_comes_before_its_table_and_one_reading_a_table_after_it() {
    let s = with_base("CREATE EXTENSION IF NOT EXISTS vector;");
    let schema = "CREATE EXTENSION IF NOT EXISTS vector;
CREATE FUNCTION new_code() RETURNS text LANGUAGE sql AS $$ SELECT 'c-' || md5(random()::text) $$;
CREATE TABLE chunks (id int PRIMARY KEY, code text NOT NULL DEFAULT new_code(), embedding vector(3));
CREATE FUNCTION match_chunks(q vector(3), k int) RETURNS SETOF chunks LANGUAGE sql STABLE AS $$
  SELECT * FROM chunks ORDER BY embedding <=> q LIMIT k
$$;";
    let (up, down) = generate_one(&s, schema, &[]);
    let st = statements(&up);
    let pos = |p: &str| {
        st.iter()
            .position(|x| x.starts_with(p))
            .unwrap_or_else(|| panic!("no {p} in {up}"))
    };
    assert!(
        pos("CREATE OR REPLACE FUNCTION public.new_code()") < pos("CREATE TABLE public.chunks")
    );
    assert!(
        pos("CREATE TABLE public.chunks")
            < pos("CREATE OR REPLACE FUNCTION public.match_chunks(q public.vector, k integer)")
    );
    let sd = statements(&down);
    assert_eq!(
        sd,
        [
            // it returns the table's rows: it goes first
            "DROP FUNCTION public.match_chunks(public.vector,integer)",
            "DROP TABLE public.chunks",
            "DROP FUNCTION public.new_code()"
        ],
        "{down}"
    );
    converges(&s);
    s.db.execute("INSERT INTO chunks (id, embedding) VALUES (1, '[1,0,0]'), (2, '[0,1,0]')");
    assert_eq!(
        s.db.strings("SELECT id::text FROM match_chunks('[0,1,0]', 1)"),
        ["2"]
    );
}

#[test]
fn drift_in_functions_and_triggers_is_reported_as_what_would_repair_it() {
    let s = with_base(&format!("{DOCS}{TRIGGERS}"));
    s.write("schema.sql", &format!("{DOCS}{TRIGGERS}"));
    s.run("migrate-up", &[]).ok();
    s.db.execute("DROP TRIGGER docs_touch ON docs; CREATE FUNCTION stray() RETURNS int LANGUAGE sql AS 'SELECT 1';");
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout
            .contains("create trigger docs_touch on public.docs")
            && r.stdout.contains("drop function public.stray()"),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("not compared"), "{}", r.all());

    // schema.sql ahead of the migrations: the advice to autogenerate is sound now
    let s = with_base(DOCS);
    s.write("schema.sql", &format!("{DOCS}{TRIGGERS}"));
    s.run("migrate-up", &[]).ok();
    let r = s.run("migrate-check", &[]).code(1);
    assert!(
        r.stdout.contains("create function public.touch()")
            && r.stdout.contains("run migrate-revision --autogenerate"),
        "{}",
        r.all()
    );
    let r = autogen(&s, &format!("{DOCS}{TRIGGERS}"), &[]).ok();
    assert!(!r.stdout.contains("No changes"), "{}", r.all());
    converges(&s);
}
