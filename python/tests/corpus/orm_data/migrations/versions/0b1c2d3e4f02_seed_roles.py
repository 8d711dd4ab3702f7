"""seed roles with an ORM session

Revision ID: 0b1c2d3e4f02
Revises: 0b1c2d3e4f01
Create Date: 2024-05-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()


class Role(Base):
    __tablename__ = "roles"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50), nullable=False)


revision = '0b1c2d3e4f02'
down_revision = '0b1c2d3e4f01'
branch_labels = None
depends_on = None


def upgrade():
    session = Session(bind=op.get_bind())
    for name in ("admin", "member", "viewer"):
        if session.query(Role).filter_by(name=name).first() is None:
            session.add(Role(name=name))
    session.commit()


def downgrade():
    session = Session(bind=op.get_bind())
    session.query(Role).filter(Role.name.in_(["admin", "member", "viewer"])).delete()
    session.commit()
