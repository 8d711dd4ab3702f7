"""default collection

Revision ID: a1b2c3d4e504
Revises: a1b2c3d4e503
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
import uuid
from sqlalchemy.dialects import postgresql


revision = 'a1b2c3d4e504'
down_revision = 'a1b2c3d4e503'
branch_labels = None
depends_on = None


def upgrade():
    collections = sa.table(
        "collections",
        sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
        sa.column("metadata", postgresql.JSONB()),
    )
    op.bulk_insert(collections, [
        {"id": uuid.UUID("00000000-0000-4000-8000-000000000001"), "name": "default",
         "metadata": {"id": None, "hnsw:space": "cosine", "dims": [384]}},
    ])


def downgrade():
    op.execute("DELETE FROM collections WHERE id = '00000000-0000-4000-8000-000000000001'")
