"""prompts with defaults

Revision ID: 5e6f7a8b9c03
Revises: 5e6f7a8b9c02
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
import datetime
from sqlalchemy.dialects import postgresql


revision = '5e6f7a8b9c03'
down_revision = '5e6f7a8b9c02'
branch_labels = None
depends_on = None


def upgrade():
    prompts = op.create_table(
        "prompt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("config", postgresql.JSONB(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
    )
    op.bulk_insert(prompts, [
        {"id": 1, "name": "default", "config": {"temperature": 0.2, "stop": None},
         "tags": ["system", "default"], "since": datetime.date(2024, 5, 2)},
    ])


def downgrade():
    op.drop_table("prompt")
