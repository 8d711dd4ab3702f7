"""titles from first message

Revision ID: 5e6f7a8b9c04
Revises: 5e6f7a8b9c03
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '5e6f7a8b9c04'
down_revision = '5e6f7a8b9c03'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT DISTINCT ON (session_id) session_id, content FROM chat_message "
        "ORDER BY session_id, id")).fetchall()
    for session_id, content in rows:
        conn.execute(sa.text("UPDATE chat_session SET title = :t WHERE id = :i AND title IS NULL"),
                     {"t": content[:80], "i": session_id})


def downgrade():
    pass
