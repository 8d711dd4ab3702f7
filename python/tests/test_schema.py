"""The SQLAlchemy schema provider on models written the way RAG applications write them; its SQL
applied with psql to a real PostgreSQL with pgvector."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import PYTHON_SRC, psql, query

MODELS = '''
import enum
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Index, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Status(enum.Enum):
    pending = "pending"
    indexed = "indexed"
    failed = "failed"


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_uri: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[Status] = mapped_column(Enum(Status, name="document_status"), default=Status.pending)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    chunks: Mapped[list["Chunk"]] = relationship(back_populates="document")


class Chunk(Base):
    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    content: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[float]] = mapped_column(Vector(1536))
    document: Mapped[Document] = relationship(back_populates="chunks")

    __table_args__ = (
        Index(
            "chunks_embedding_hnsw_idx", "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("chunks_unembedded_idx", "document_id", postgresql_where=text("embedding IS NULL")),
    )
'''


def write_app(root, models=MODELS, name="models.py"):
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / name).write_text(textwrap.dedent(models))


def provide(root, *args):
    """`python -m retort_migrate.schema ...` in the application's directory, as retort's
    --schema-command runs it."""
    env = dict(os.environ, PYTHONPATH=str(PYTHON_SRC))
    return subprocess.run([sys.executable, "-m", "retort_migrate.schema", *args], cwd=root,
                          capture_output=True, text=True, env=env)


def statements(sql: str):
    assert sql.endswith(";\n")
    return [s.strip().rstrip(";") for s in sql.strip().split(";\n\n")]


def test_rag_models_come_out_as_ordered_postgresql_ddl(tmp_path):
    write_app(tmp_path)
    out = provide(tmp_path, "app.models")
    assert out.returncode == 0, out.stderr
    st = statements(out.stdout)
    assert st[0] == "CREATE EXTENSION IF NOT EXISTS vector"
    assert st[1] == "CREATE TYPE document_status AS ENUM ('pending', 'indexed', 'failed')"
    assert st[2].startswith("CREATE TABLE documents (")
    assert "status document_status NOT NULL" in st[2]
    assert "UNIQUE (source_uri)" in st[2]
    assert st[3].startswith("CREATE TABLE chunks (")
    assert "embedding vector(1536) NOT NULL" in st[3]
    assert "FOREIGN KEY(document_id) REFERENCES documents (id) ON DELETE CASCADE" in st[3]
    indexes = st[4:]
    assert "CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)" in indexes
    assert "CREATE INDEX chunks_unembedded_idx ON chunks (document_id) WHERE embedding IS NULL" in indexes
    assert "CREATE INDEX ix_chunks_document_id ON chunks (document_id)" in indexes
    assert len(indexes) == 3
    assert out.stdout.endswith(";\n")


def test_its_output_is_valid_sql_for_postgresql_with_pgvector(tmp_path, database):
    write_app(tmp_path)
    out = provide(tmp_path, "app.models:Base")
    assert out.returncode == 0, out.stderr
    applied = psql(database, out.stdout)
    assert applied.returncode == 0, applied.stderr
    (indexdef,) = query(database, "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx'")[0]
    assert indexdef == ("CREATE INDEX chunks_embedding_hnsw_idx ON public.chunks USING hnsw "
                        "(embedding vector_cosine_ops) WITH (m='16', ef_construction='64')")
    assert query(database, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'") == [("vector(1536)",)]
    assert query(database, "SELECT enum_range(NULL::document_status)::text") == [("{pending,indexed,failed}",)]


def test_a_metadata_object_can_be_named(tmp_path):
    write_app(tmp_path, """
        from sqlalchemy import Column, Integer, MetaData, Table, Text
        metadata = MetaData()
        settings = Table("server_settings", metadata, Column("key", Text, primary_key=True),
                         Column("value", Text, nullable=False))
    """)
    out = provide(tmp_path, "app.models:metadata")
    assert out.returncode == 0, out.stderr
    assert statements(out.stdout)[0].startswith("CREATE TABLE server_settings (")
    assert "vector" not in out.stdout  # no pgvector type, no extension


def test_two_metadata_in_one_module_is_an_error_listing_both(tmp_path):
    write_app(tmp_path, """
        from sqlalchemy import MetaData
        from sqlalchemy.orm import DeclarativeBase

        class Base(DeclarativeBase):
            pass

        class Document(Base):
            __tablename__ = "documents"
            from sqlalchemy import Column, Integer
            id = Column(Integer, primary_key=True)

        analytics_metadata = MetaData()
    """)
    out = provide(tmp_path, "app.models")
    assert out.returncode == 2
    assert out.stdout == ""
    assert "error: app.models has 2 different MetaData: app.models:Base, app.models:analytics_metadata" \
        in out.stderr
    assert "hint: name the one to use, e.g. python -m retort_migrate.schema app.models:Base" in out.stderr


def test_a_module_that_is_not_there_is_named(tmp_path):
    out = provide(tmp_path, "app.modles")
    assert out.returncode == 2
    assert "error: no module 'app.modles' importable from" in out.stderr
    assert "hint: run from your project's directory" in out.stderr


def test_a_module_that_raises_on_import_gives_file_and_line(tmp_path):
    write_app(tmp_path, """
        import os
        DIM = int(os.environ["EMBEDDING_DIM"])
    """)
    out = provide(tmp_path, "app.models")
    assert out.returncode == 3
    assert "error: importing app.models failed (app/models.py:3): KeyError: 'EMBEDDING_DIM'" in out.stderr


def test_an_attribute_that_is_no_metadata_is_refused(tmp_path):
    write_app(tmp_path)
    out = provide(tmp_path, "app.models:Status")
    assert out.returncode == 2
    metaclass = type(enum.Enum).__name__  # EnumType (EnumMeta before Python 3.11)
    assert f"error: app.models:Status is a {metaclass}, not a MetaData" in out.stderr
    out = provide(tmp_path, "app.models:Basee")
    assert out.returncode == 2 and "app.models has no attribute 'Basee'" in out.stderr
