"""flow description

Revision ID: c0ffee000003
Revises: c0ffee000001
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000003'
down_revision = 'c0ffee000001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.alter_column("name", existing_type=sa.String(), type_=sa.String(255))


def downgrade():
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(255), type_=sa.String())
        batch_op.drop_column("description")
