"""folders

Revision ID: c0ffee000002
Revises: c0ffee000001
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000002'
down_revision = 'c0ffee000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "folder",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.add_column(sa.Column("folder_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_flow_folder_id_folder"), "folder", ["folder_id"], ["id"])


def downgrade():
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_flow_folder_id_folder"), type_="foreignkey")
        batch_op.drop_column("folder_id")
    op.drop_table("folder")
