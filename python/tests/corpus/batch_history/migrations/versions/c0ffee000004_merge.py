"""merge folders and description

Revision ID: c0ffee000004
Revises: c0ffee000002, c0ffee000003
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c0ffee000004'
down_revision = ('c0ffee000002', 'c0ffee000003')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
