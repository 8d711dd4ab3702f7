"""tool role

Revision ID: 5e6f7a8b9c02
Revises: 5e6f7a8b9c01
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '5e6f7a8b9c02'
down_revision = '5e6f7a8b9c01'
branch_labels = None
depends_on = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE message_role ADD VALUE IF NOT EXISTS 'tool'")


def downgrade():
    raise NotImplementedError("enum values cannot be removed")
