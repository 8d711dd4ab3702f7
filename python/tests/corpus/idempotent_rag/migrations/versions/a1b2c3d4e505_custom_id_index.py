"""index custom_id if missing

Revision ID: a1b2c3d4e505
Revises: a1b2c3d4e504
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'a1b2c3d4e505'
down_revision = 'a1b2c3d4e504'
branch_labels = None
depends_on = None


def upgrade():
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("embeddings")}
    if "ix_embeddings_custom_id" not in indexes:
        op.create_index("ix_embeddings_custom_id", "embeddings", ["collection_id", "custom_id"], unique=True)


def downgrade():
    op.drop_index("ix_embeddings_custom_id", table_name="embeddings")
