"""every user gets a role

Revision ID: 0b1c2d3e4f03
Revises: 0b1c2d3e4f02
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.orm import Session

roles = sa.table("roles", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
users = sa.table("users", sa.column("role_id", sa.Integer()))


revision = '0b1c2d3e4f03'
down_revision = '0b1c2d3e4f02'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    session = Session(bind=bind)
    member = session.execute(sa.select(roles.c.id).where(roles.c.name == "member")).scalar_one()
    session.execute(users.update().where(users.c.role_id.is_(None)).values(role_id=member))
    session.commit()
    op.alter_column("users", "role_id", existing_type=sa.Integer(), nullable=False)


def downgrade():
    op.alter_column("users", "role_id", existing_type=sa.Integer(), nullable=True)
