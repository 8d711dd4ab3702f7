"""audit table, reflected users

Revision ID: 0b1c2d3e4f05
Revises: 0b1c2d3e4f04
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0b1c2d3e4f05'
down_revision = '0b1c2d3e4f04'
branch_labels = None
depends_on = None


def upgrade():
    meta = sa.MetaData()
    users = sa.Table("users", meta, autoload_with=op.get_bind())
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("user_id", users.c.id.type, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade():
    op.drop_table("audit")
