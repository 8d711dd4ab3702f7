"""add custom_id to embeddings

Revision ID: a1b2c3d4e502
Revises: a1b2c3d4e501
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'a1b2c3d4e502'
down_revision = 'a1b2c3d4e501'
branch_labels = None
depends_on = None


def upgrade():
    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("embeddings")]
    if "custom_id" not in columns:
        op.add_column("embeddings", sa.Column("custom_id", sa.String(), nullable=True))


def downgrade():
    op.drop_column("embeddings", "custom_id")
