"""The Alembic exporter on Alembic projects written the way RAG applications write them: real
Alembic, SQLAlchemy and pgvector, each revision rendered in Alembic's offline mode."""

from __future__ import annotations

import os
import re
import sys

import pytest

from conftest import AlembicProject, psql, query, revision_file

BASELINE, SETTINGS, API_KEYS, TAGS = "3f1a9c2e7b10", "8d2e4b6a1c20", "c47e0a9d3b30", "5b9f1e2c4d40"
MERGE, TOUCH, CONCURRENT, BATCH = "e0a3c5d7f950", "71c2d4e6a860", "9a4b6c8d0e70", "2c6d8e0f1a80"
BACKFILL, AUDIT = "d81e3f5a7b90", "aa11bb22cc01"


def write_rag_history(p: AlembicProject) -> None:
    """baseline -> settings -> {api keys (an enum), tags (branch 'tags')} -> merge -> a $$
    trigger function -> a concurrent HNSW index -> a batch operation -> a data backfill through
    op.get_bind(); and a second root 'audit' that depends on settings."""
    p.add("3f1a9c2e7b10_baseline.py", revision_file(
        BASELINE, None, "baseline: documents and chunks with embeddings",
        imports="from pgvector.sqlalchemy import Vector",
        upgrade="""
            op.execute("CREATE EXTENSION IF NOT EXISTS vector")
            op.create_table(
                "documents",
                sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
                sa.Column("title", sa.Text(), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            )
            op.create_table(
                "chunks",
                sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
                sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
                sa.Column("content", sa.Text(), nullable=False),
                sa.Column("embedding", Vector(384), nullable=True),
            )
            op.create_index(
                "chunks_embedding_hnsw_idx", "chunks", ["embedding"],
                postgresql_using="hnsw",
                postgresql_with={"m": 16, "ef_construction": 64},
                postgresql_ops={"embedding": "vector_cosine_ops"},
            )
        """,
        downgrade="""
            op.drop_index("chunks_embedding_hnsw_idx", table_name="chunks")
            op.drop_table("chunks")
            op.drop_table("documents")
        """))
    p.add("8d2e4b6a1c20_settings.py", revision_file(
        SETTINGS, BASELINE, "server settings",
        imports="from sqlalchemy.dialects import postgresql",
        upgrade="""
            op.create_table(
                "server_settings",
                sa.Column("key", sa.Text(), primary_key=True),
                sa.Column("value", postgresql.JSONB(), nullable=False),
            )
            op.bulk_insert(
                sa.table("server_settings", sa.column("key", sa.Text()), sa.column("value", sa.Text())),
                [{"key": "embedding_model", "value": '{"name": "all-MiniLM-L6-v2", "dim": 384}'}],
            )
        """,
        downgrade='op.drop_table("server_settings")'))
    p.add("c47e0a9d3b30_api_keys.py", revision_file(
        API_KEYS, SETTINGS, "api keys with a scope enum",
        upgrade="""
            op.create_table(
                "api_keys",
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("name", sa.Text(), nullable=False),
                sa.Column("key_hash", sa.Text(), nullable=False),
                sa.Column("scope", sa.Enum("read", "write", "admin", name="key_scope"), nullable=False),
                sa.UniqueConstraint("key_hash"),
            )
        """,
        downgrade="""
            op.drop_table("api_keys")
            sa.Enum(name="key_scope").drop(op.get_bind(), checkfirst=False)
        """))
    p.add("5b9f1e2c4d40_tags.py", revision_file(
        TAGS, SETTINGS, "document tags", branch_labels=("tags",),
        upgrade="""
            op.create_table(
                "document_tags",
                sa.Column("document_id", sa.BigInteger(), nullable=False),
                sa.Column("tag", sa.Text(), nullable=False),
                sa.PrimaryKeyConstraint("document_id", "tag"),
            )
            op.create_foreign_key(None, "document_tags", "documents", ["document_id"], ["id"])
        """,
        downgrade='op.drop_table("document_tags")'))
    p.add("e0a3c5d7f950_merge.py", revision_file(
        MERGE, (API_KEYS, TAGS), "merge api keys and tags", upgrade="pass"))
    p.add("71c2d4e6a860_touch_updated_at.py", revision_file(
        TOUCH, MERGE, "updated_at trigger on documents",
        upgrade='''
            op.add_column("documents", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
            op.execute("""
                CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    NEW.updated_at := now();  -- a ';' inside the body
                    RETURN NEW;
                END;
                $$;
            """)
            op.execute("CREATE TRIGGER documents_touch BEFORE UPDATE ON documents "
                       "FOR EACH ROW EXECUTE FUNCTION touch_updated_at()")
        ''',
        downgrade="""
            op.execute("DROP TRIGGER documents_touch ON documents")
            op.execute("DROP FUNCTION touch_updated_at()")
            op.drop_column("documents", "updated_at")
        """))
    p.add("9a4b6c8d0e70_concurrent_index.py", revision_file(
        CONCURRENT, TOUCH, "index chunks by document concurrently",
        upgrade="""
            with op.get_context().autocommit_block():
                op.create_index("ix_chunks_document_id", "chunks", ["document_id"],
                                postgresql_concurrently=True)
        """,
        downgrade="""
            with op.get_context().autocommit_block():
                op.drop_index("ix_chunks_document_id", table_name="chunks",
                              postgresql_concurrently=True)
        """))
    p.add("2c6d8e0f1a80_batch_language.py", revision_file(
        BATCH, CONCURRENT, "chunk language",
        upgrade="""
            with op.batch_alter_table("chunks") as batch_op:
                batch_op.add_column(sa.Column("language", sa.Text(), server_default="en", nullable=False))
                batch_op.create_unique_constraint(None, ["document_id", "content"])
        """,
        downgrade="""
            with op.batch_alter_table("chunks") as batch_op:
                batch_op.drop_constraint("uq_chunks_document_id", type_="unique")
                batch_op.drop_column("language")
        """))
    p.add("d81e3f5a7b90_backfill_titles.py", revision_file(
        BACKFILL, BATCH, "backfill empty titles",
        upgrade="""
            conn = op.get_bind()
            rows = conn.execute(sa.text("SELECT id FROM documents WHERE title = ''")).fetchall()
            for (doc_id,) in rows:
                conn.execute(sa.text("UPDATE documents SET title = :t WHERE id = :i"),
                             {"t": f"document {doc_id}", "i": doc_id})
        """))
    p.add("aa11bb22cc01_audit.py", revision_file(
        AUDIT, None, "audit log", branch_labels=("audit",), depends_on=SETTINGS,
        upgrade="""
            op.create_table(
                "audit_events",
                sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
                sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
                sa.Column("event", sa.Text(), nullable=False),
            )
        """,
        downgrade='op.drop_table("audit_events")'))


@pytest.fixture
def rag_history(alembic_project):
    write_rag_history(alembic_project)
    code, doc, stderr = alembic_project.export("--config", "alembic.ini")
    assert code == 0, (doc, stderr)
    assert doc["ok"] is True
    return alembic_project, doc, {r["revision"]: r for r in doc["revisions"]}


def test_the_history_comes_out_base_first_with_its_graph(rag_history):
    _, doc, revs = rag_history
    order = [r["revision"] for r in doc["revisions"]]
    assert sorted(order) == sorted([BASELINE, SETTINGS, API_KEYS, TAGS, MERGE, TOUCH,
                                    CONCURRENT, BATCH, BACKFILL, AUDIT])
    # every revision comes after its parents and its dependencies
    for r in doc["revisions"]:
        for parent in r["down_revision"] + r["depends_on"]:
            assert order.index(parent) < order.index(r["revision"]), (parent, r["revision"])
    assert doc["heads"] == sorted([BACKFILL, AUDIT])
    assert revs[MERGE]["down_revision"] == [API_KEYS, TAGS]
    assert revs[BASELINE]["down_revision"] == []
    assert revs[TAGS]["branch_labels"] == ["tags"]
    assert revs[AUDIT]["branch_labels"] == ["audit"]
    assert revs[AUDIT]["depends_on"] == [SETTINGS]
    assert revs[SETTINGS]["branch_labels"] == [] and revs[SETTINGS]["depends_on"] == []
    assert revs[BASELINE]["message"] == "baseline: documents and chunks with embeddings"
    assert revs[BASELINE]["create_date"] == "2025-03-04 10:11:12.345678"
    assert revs[BASELINE]["path"] == "migrations/versions/3f1a9c2e7b10_baseline.py"
    assert revs[MERGE]["upgrade_sql"] == "" and revs[MERGE]["downgrade_sql"] == ""
    assert doc["target_metadata"] is True and doc["version_table"] == "alembic_version"
    # the password of alembic.ini's URL appears nowhere
    assert "s3cret-pw" not in json_text(doc)


def json_text(doc) -> str:
    import json

    return json.dumps(doc)


def test_pgvector_columns_and_hnsw_indexes_render_as_postgresql_runs_them(rag_history):
    _, _, revs = rag_history
    up = revs[BASELINE]["upgrade_sql"]
    statements = [s.strip() for s in up.split(";\n\n")]
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS vector"
    assert statements[1].startswith("CREATE TABLE documents (")
    assert statements[2].startswith("CREATE TABLE chunks (")
    assert "embedding vector(384)," in statements[2]
    assert "FOREIGN KEY(document_id) REFERENCES documents (id) ON DELETE CASCADE" in statements[2]
    # the application's naming convention, read from env.py's target_metadata
    assert "CONSTRAINT fk_chunks_document_id_documents FOREIGN KEY" in statements[2]
    assert "CONSTRAINT pk_chunks PRIMARY KEY (id)" in statements[2]
    assert statements[3] == ("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw "
                             "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);")
    assert len(statements) == 4
    assert revs[BASELINE]["downgrade_sql"] == (
        "DROP INDEX chunks_embedding_hnsw_idx;\n\nDROP TABLE chunks;\n\nDROP TABLE documents;")
    for r in revs.values():
        for sql in (r["upgrade_sql"] or "", r["downgrade_sql"] or ""):
            assert "alembic_version" not in sql
            assert "BEGIN;" not in sql.split("\n") and "COMMIT;" not in sql.split("\n")


def test_enums_bulk_inserts_and_naming_conventions(rag_history):
    _, _, revs = rag_history
    up = revs[API_KEYS]["upgrade_sql"]
    assert up.startswith("CREATE TYPE key_scope AS ENUM ('read', 'write', 'admin');")
    assert "scope key_scope NOT NULL" in up
    assert "CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)" in up
    # sa.Enum(...).drop(op.get_bind()) is DDL, which offline mode renders
    assert revs[API_KEYS]["downgrade_sql"] == "DROP TABLE api_keys;\n\nDROP TYPE key_scope;"
    assert revs[API_KEYS]["unconverted"] is False
    # bulk_insert with literal values
    assert ("INSERT INTO server_settings (key, value) VALUES ('embedding_model', "
            "'{\"name\": \"all-MiniLM-L6-v2\", \"dim\": 384}');") in revs[SETTINGS]["upgrade_sql"]
    assert ("ALTER TABLE document_tags ADD CONSTRAINT fk_document_tags_document_id_documents "
            "FOREIGN KEY(document_id) REFERENCES documents (id);") in revs[TAGS]["upgrade_sql"]


def test_dollar_quoted_functions_keep_their_body_and_one_terminator(rag_history):
    _, _, revs = rag_history
    up = revs[TOUCH]["upgrade_sql"]
    assert up.startswith("ALTER TABLE documents ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE;")
    assert "NEW.updated_at := now();  -- a ';' inside the body" in up
    assert re.search(r"END;\n *\$\$;\n\nCREATE TRIGGER documents_touch BEFORE UPDATE", up)
    assert ";;" not in up
    assert revs[TOUCH]["transactional"] is True


def test_an_autocommit_block_makes_the_revision_non_transactional(rag_history):
    _, _, revs = rag_history
    r = revs[CONCURRENT]
    assert r["transactional"] is False
    assert r["upgrade_sql"] == "CREATE INDEX CONCURRENTLY ix_chunks_document_id ON chunks (document_id);"
    assert r["downgrade_sql"] == "DROP INDEX CONCURRENTLY ix_chunks_document_id;"
    assert r["warnings"] == []
    assert all(revs[x]["transactional"] for x in (BASELINE, SETTINGS, BATCH, AUDIT))


def test_batch_operations_render_as_plain_alter_table_on_postgresql(rag_history):
    _, _, revs = rag_history
    assert revs[BATCH]["upgrade_sql"] == (
        "ALTER TABLE chunks ADD COLUMN language TEXT DEFAULT 'en' NOT NULL;\n\n"
        "ALTER TABLE chunks ADD CONSTRAINT uq_chunks_document_id UNIQUE (document_id, content);")
    assert revs[BATCH]["downgrade_sql"] == (
        "ALTER TABLE chunks DROP CONSTRAINT uq_chunks_document_id;\n\n"
        "ALTER TABLE chunks DROP COLUMN language;")


def test_a_data_migration_through_get_bind_is_unconverted_with_its_line(rag_history):
    project, _, revs = rag_history
    r = revs[BACKFILL]
    assert r["unconverted"] is True
    assert r["upgrade_sql"] is None
    line = project.line_of("d81e3f5a7b90_backfill_titles.py", "rows = conn.execute(")
    bind_line = project.line_of("d81e3f5a7b90_backfill_titles.py", "conn = op.get_bind()")
    assert r["file"] == "migrations/versions/d81e3f5a7b90_backfill_titles.py"
    assert r["line"] == line
    assert bind_line < line
    assert r["reason"] == f"upgrade() reads rows through op.get_bind() (line {line})"
    assert r["problems"][0]["code"].startswith("rows = conn.execute(")
    assert r["upgrade_source"].startswith("def upgrade() -> None:\n    conn = op.get_bind()")
    assert "UPDATE documents SET title" in r["upgrade_source"]
    # its downgrade() (pass) converts: only the upgrade is the problem
    assert r["downgrade_sql"] == "" and len(r["problems"]) == 1


def test_values_without_a_sqlalchemy_literal_renderer_become_postgresql_literals(
        alembic_project, database):
    """JSONB, arrays, UUIDs, dates and timestamps in op.bulk_insert and in
    op.execute(table.insert().values(...)): the SQL says them with the casts PostgreSQL needs,
    and the rows read back are the values."""
    alembic_project.add("0001_seed.py", revision_file(
        "0001", None, "seed settings",
        imports="import datetime, uuid\nfrom sqlalchemy.dialects import postgresql",
        upgrade="""
            op.create_table(
                "settings",
                sa.Column("id", sa.Uuid(), primary_key=True),
                sa.Column("value", postgresql.JSONB()),
                sa.Column("raw", sa.JSON()),
                sa.Column("tags", postgresql.ARRAY(sa.Text())),
                sa.Column("dims", postgresql.ARRAY(sa.Integer())),
                sa.Column("since", sa.Date()),
                sa.Column("at", sa.DateTime(timezone=True)),
            )
            settings = sa.table("settings", sa.column("id", sa.Uuid()),
                                sa.column("value", postgresql.JSONB()), sa.column("raw", sa.JSON()),
                                sa.column("tags", postgresql.ARRAY(sa.Text())),
                                sa.column("dims", postgresql.ARRAY(sa.Integer())),
                                sa.column("since", sa.Date()),
                                sa.column("at", sa.DateTime(timezone=True)))
            op.bulk_insert(settings, [{
                "id": uuid.UUID("7d7c3b5e-4a3f-4f2e-9b0c-1a2b3c4d5e6f"),
                "value": {"id": None, "name": "it's", "dims": [384, 768]},
                "raw": ["a", 1], "tags": ["x", "y's"], "dims": [],
                "since": datetime.date(2024, 2, 29),
                "at": datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc),
            }])
            op.execute(settings.insert().values(
                id=uuid.UUID("00000000-0000-0000-0000-000000000002"), value={"k": True},
                tags=[], since=datetime.date(2025, 1, 1)))
        """))
    code, doc, _ = alembic_project.export()
    assert code == 0, doc
    (r,) = doc["revisions"]
    assert r["unconverted"] is False, r["reason"]
    sql = r["upgrade_sql"]
    assert """'{"id": null, "name": "it''s", "dims": [384, 768]}'::JSONB""" in sql
    assert "ARRAY['x', 'y''s']::TEXT[]" in sql and "ARRAY[]::INTEGER[]" in sql
    out = psql(database, sql)
    assert out.returncode == 0, out.stderr
    rows = query(database, "SELECT id::text, value->>'name', value->'id', raw::text, tags, dims, "
                           "since::text, at = '2024-02-29 12:30+00' FROM settings ORDER BY since")
    assert rows[0] == ("7d7c3b5e-4a3f-4f2e-9b0c-1a2b3c4d5e6f", "it's", None, '["a", 1]',
                       ["x", "y's"], [], "2024-02-29", True)
    assert rows[1][0] == "00000000-0000-0000-0000-000000000002" and rows[1][4] == []


def test_refusals_say_what_the_revision_does_with_its_line(alembic_project):
    """In strict terms: what a revision does with the live database, in its author's words."""
    alembic_project.add("0001_inspect.py", revision_file(
        "0001", None, "idempotent table",
        upgrade="""
            inspector = sa.inspect(op.get_bind())
            if not inspector.has_table("documents"):
                op.create_table("documents", sa.Column("id", sa.Integer(), primary_key=True))
        """))
    alembic_project.add("0002_reflect.py", revision_file(
        "0002", "0001", "reflect",
        upgrade="""
            meta = sa.MetaData()
            meta.reflect(bind=op.get_bind())
        """))
    alembic_project.add("0003_orm.py", revision_file(
        "0003", "0002", "orm data migration", imports="from sqlalchemy.orm import Session",
        upgrade="""
            session = Session(bind=op.get_bind())
            docs = sa.table("documents", sa.column("id"))
            for row in session.execute(sa.select(docs.c.id)):
                pass
        """))
    code, doc, _ = alembic_project.export()
    assert code == 0, doc
    r = {x["revision"]: x for x in doc["revisions"]}
    line = alembic_project.line_of
    assert r["0001"]["reason"] == ("upgrade() inspects the live schema (line %d)"
                                   % line("0001_inspect.py", "sa.inspect("))
    assert r["0002"]["reason"] == ("upgrade() reflects tables (line %d)"
                                   % line("0002_reflect.py", "meta.reflect("))
    assert r["0003"]["reason"] == ("upgrade() opens an ORM session (line %d)"
                                   % line("0003_orm.py", "session.execute("))
    assert not any("OfflineBind" in x["reason"] or "_sa_instance_state" in x["reason"]
                   for x in doc["revisions"])


def test_the_exported_sql_runs_on_postgresql_with_pgvector_up_and_down(rag_history, database):
    """Every converted body, in the exporter's order, through psql into a real database; then
    every downgrade in reverse: the schema is there, then gone."""
    _, doc, _ = rag_history
    runnable = [r for r in doc["revisions"] if not r["unconverted"]]
    for r in runnable:
        out = psql(database, r["upgrade_sql"])
        assert out.returncode == 0, (r["revision"], out.stderr)
    tables = {t for (t,) in query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"documents", "chunks", "server_settings", "api_keys", "document_tags",
                      "audit_events"}
    (indexdef,) = query(database, "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx'")[0]
    assert "USING hnsw (embedding vector_cosine_ops) WITH (m='16', ef_construction='64')" in indexdef
    assert query(database, "SELECT value->>'dim' FROM server_settings") == [("384",)]
    for r in reversed(runnable):
        out = psql(database, r["downgrade_sql"])
        assert out.returncode == 0, (r["revision"], out.stderr)
    assert query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    assert query(database, "SELECT typname FROM pg_type WHERE typname = 'key_scope'") == []


# ---- errors -----------------------------------------------------------------------------------


def test_no_alembic_ini_is_a_usage_error_that_says_where_to_run(alembic_project):
    code, doc, _ = alembic_project.export("--config", "elsewhere/alembic.ini")
    assert code == 2
    assert doc["ok"] is False
    assert doc["error"]["code"] == "no_config"
    assert doc["error"]["message"] == "no Alembic configuration at elsewhere/alembic.ini"
    assert "--config" in doc["error"]["hint"]


def test_an_unknown_section_lists_the_ones_there_are(alembic_project):
    code, doc, _ = alembic_project.export("--name", "tenant_db")
    assert code == 2 and doc["error"]["code"] == "no_section"
    assert "has no [tenant_db] section" in doc["error"]["message"]
    assert "alembic" in doc["error"]["hint"] and "--name" in doc["error"]["hint"]


def test_a_python_without_alembic_is_told_which_python_and_what_to_install(alembic_project):
    # the same interpreter without its site-packages: Alembic is not importable there
    code, doc, _ = run_without_site(alembic_project)
    assert code == 2 and doc["error"]["code"] == "alembic_missing"
    assert os.path.normpath(sys.executable) in doc["error"]["message"]
    assert "pip install alembic" in doc["error"]["hint"]


def run_without_site(project: AlembicProject):
    import json
    import subprocess

    from conftest import EXPORTER

    out = subprocess.run([sys.executable, "-S", str(EXPORTER)], cwd=project.root,
                         capture_output=True, text=True)
    return out.returncode, json.loads(out.stdout), out.stderr


def test_a_broken_env_py_names_the_file_and_line(alembic_project):
    write_rag_history(alembic_project)
    env_py = alembic_project.root / "migrations" / "env.py"
    text = env_py.read_text().replace(
        "target_metadata = Base.metadata",
        "target_metadata = Base.metadata\nSETTINGS = {}\nDATABASE_URL = SETTINGS['DATABASE_URL']")
    env_py.write_text(text)
    line = text.splitlines().index("DATABASE_URL = SETTINGS['DATABASE_URL']") + 1
    code, doc, _ = alembic_project.export()
    assert code == 3
    err = doc["error"]
    assert err["code"] == "env_py_failed"
    assert err["message"] == "env.py failed in offline mode: KeyError: 'DATABASE_URL'"
    assert err["file"] == "migrations/env.py" and err["line"] == line
    assert "--skip-env" in err["hint"]
    # --skip-env renders anyway, without the application's naming convention
    code, doc, _ = alembic_project.export("--skip-env")
    assert code == 0 and doc["target_metadata"] is False
    baseline = next(r for r in doc["revisions"] if r["revision"] == BASELINE)
    assert "fk_chunks_document_id_documents" not in baseline["upgrade_sql"]
    assert "FOREIGN KEY(document_id) REFERENCES documents (id)" in baseline["upgrade_sql"]


def test_a_revision_that_does_not_import_is_named(alembic_project):
    alembic_project.add("0001_broken.py", revision_file(
        "0001", None, "broken", imports="from ragapp.embeddings import EMBEDDING_DIM",
        upgrade="pass"))
    code, doc, _ = alembic_project.export()
    assert code == 3 and doc["error"]["code"] == "script_load_failed"
    assert "No module named 'ragapp.embeddings'" in doc["error"]["message"]
    assert doc["error"]["file"] == "migrations/versions/0001_broken.py"
    assert doc["error"]["line"] == alembic_project.line_of("0001_broken.py", "from ragapp.embeddings")


def test_a_cycle_is_rejected_as_alembic_rejects_it(alembic_project):
    alembic_project.add("0001_a.py", revision_file("0001", "0002", "a", upgrade="pass"))
    alembic_project.add("0002_b.py", revision_file("0002", "0001", "b", upgrade="pass"))
    code, doc, _ = alembic_project.export()
    assert code == 3 and doc["error"]["code"] == "revision_graph"
    assert doc["error"]["message"].startswith("Alembic rejects the revision graph:")
    assert "0001" in doc["error"]["message"] and "0002" in doc["error"]["message"]
    assert "down_revision" in doc["error"]["hint"]


def test_a_missing_down_revision_is_rejected_naming_it(alembic_project):
    alembic_project.add("0001_a.py", revision_file("0001", None, "a", upgrade="pass"))
    alembic_project.add("0003_c.py", revision_file("0003", "0002", "c", upgrade="pass"))
    code, doc, _ = alembic_project.export()
    assert code == 3 and doc["error"]["code"] == "revision_graph"
    assert "Revision 0002 referenced from 0002 -> 0003" in doc["error"]["message"]
    assert "is not present" in doc["error"]["message"]


def test_what_converts_but_needs_a_look_is_warned_about(alembic_project):
    """An irreversible downgrade, a body that branches on is_offline_mode(), and a concurrent
    index outside an autocommit block."""
    alembic_project.add("0001_search.py", revision_file(
        "0001", None, "search settings",
        imports="from alembic import context",
        upgrade="""
            if context.is_offline_mode():
                op.execute("UPDATE documents SET title = trim(title)")
            else:
                op.get_bind().execute(sa.text("UPDATE documents SET title = trim(title)"))
            op.create_index("ix_documents_title", "documents", ["title"], postgresql_concurrently=True)
        """,
        downgrade='raise NotImplementedError("trimming cannot be undone")'))
    code, doc, _ = alembic_project.export()
    assert code == 0
    (r,) = doc["revisions"]
    assert r["unconverted"] is False
    assert r["upgrade_sql"] == ("UPDATE documents SET title = trim(title);\n\n"
                                "CREATE INDEX CONCURRENTLY ix_documents_title ON documents (title);")
    assert r["downgrade_sql"] is None
    offline_line = alembic_project.line_of("0001_search.py", "if context.is_offline_mode():")
    raise_line = alembic_project.line_of("0001_search.py", "raise NotImplementedError")
    assert r["warnings"] == [
        f"upgrade() asks context.is_offline_mode() on line {offline_line}: this SQL is its "
        "offline branch; check that it does what the online branch does",
        "upgrade() runs a CONCURRENTLY statement outside op.get_context().autocommit_block(): "
        "PostgreSQL refuses it inside a transaction",
        f"downgrade() raises NotImplementedError (line {raise_line}): the revision cannot be "
        "downgraded",
    ]
