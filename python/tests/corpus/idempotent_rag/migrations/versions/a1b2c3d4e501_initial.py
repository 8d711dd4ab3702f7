"""initial schema

Revision ID: a1b2c3d4e501
Revises: 
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql


revision = 'a1b2c3d4e501'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("collections"):
        op.create_table(
            "collections",
            sa.Column("id", sa.Uuid(), primary_key=True),
            sa.Column("name", sa.String(255), nullable=False, unique=True),
            sa.Column("metadata", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        )
    if not inspector.has_table("embeddings"):
        op.create_table(
            "embeddings",
            sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
            sa.Column("collection_id", sa.Uuid(), sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
            sa.Column("document", sa.Text()),
            sa.Column("embedding", Vector(384)),
        )


def downgrade():
    op.drop_table("embeddings")
    op.drop_table("collections")
