"""hnsw index on embeddings

Revision ID: a1b2c3d4e503
Revises: a1b2c3d4e502
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'a1b2c3d4e503'
down_revision = 'a1b2c3d4e502'
branch_labels = None
depends_on = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_embeddings_embedding_hnsw", "embeddings", ["embedding"],
            postgresql_using="hnsw", postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"}, postgresql_concurrently=True,
        )


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_embeddings_embedding_hnsw", table_name="embeddings", postgresql_concurrently=True)
