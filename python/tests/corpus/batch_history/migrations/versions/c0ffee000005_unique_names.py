"""unique flow names per folder

Revision ID: c0ffee000005
Revises: c0ffee000004
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000005'
down_revision = 'c0ffee000004'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    constraints = {c["name"] for c in inspector.get_unique_constraints("flow")}
    with op.batch_alter_table("flow", schema=None) as batch_op:
        if "uq_flow_folder_id" not in constraints:
            batch_op.create_unique_constraint("uq_flow_folder_id", ["folder_id", "name"])


def downgrade():
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.drop_constraint("uq_flow_folder_id", type_="unique")
