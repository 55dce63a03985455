"""units: the place name (địa danh) official documents are dated at

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units') as batch:
        batch.add_column(sa.Column('place', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('units') as batch:
        batch.drop_column('place')
