"""display name from email

Revision ID: 0b1c2d3e4f04
Revises: 0b1c2d3e4f03
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0b1c2d3e4f04'
down_revision = '0b1c2d3e4f03'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("display_name", sa.String(255), nullable=True))
    conn = op.get_bind()
    for user_id, email in conn.execute(sa.text("SELECT id, email FROM users")).fetchall():
        conn.execute(sa.text("UPDATE users SET display_name = :n WHERE id = :i"),
                     {"n": email.split("@")[0], "i": user_id})


def downgrade():
    op.drop_column("users", "display_name")
