"""indicators: payments, ratings, feedback, work files; the appointment without the extension

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import engine.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('paid_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', engine.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_kpi', ['dossier_id', 'online', 'amount'], unique=False)

    op.create_table('ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('rating', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('rated_at', engine.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dossier_id')
    )
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ratings_rated_at'), ['rated_at'], unique=False)

    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('sender_name', sa.String(length=255), nullable=False),
    sa.Column('sender_contact', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('received_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('due_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('handling_at', engine.models.UTCDateTime(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', engine.models.UTCDateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.id'], ),
    sa.ForeignKeyConstraint(['handled_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index('ix_feedback_unit_due', ['unit_id', 'due_at'], unique=False)

    op.create_table('work_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('electronic', sa.Boolean(), nullable=False),
    sa.Column('created_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', engine.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('work_files', schema=None) as batch_op:
        batch_op.create_index('ix_work_files_unit_created', ['unit_id', 'created_at', 'electronic'], unique=False)

    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unextended_due_at', engine.models.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_dossiers_finished_at', ['finished_at'], unique=False)

    with op.batch_alter_table('dossier_documents', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_documents_kpi', ['dossier_id', 'component_code', 'reused'], unique=False)

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index('ix_documents_kpi', ['source_dossier_id', 'kind'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_kpi')

    with op.batch_alter_table('dossier_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_documents_kpi')

    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_index('ix_dossiers_finished_at')
        batch_op.drop_column('unextended_due_at')

    with op.batch_alter_table('work_files', schema=None) as batch_op:
        batch_op.drop_index('ix_work_files_unit_created')
    op.drop_table('work_files')

    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_unit_due')
        batch_op.drop_index(batch_op.f('ix_feedback_dossier_id'))
    op.drop_table('feedback')

    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ratings_rated_at'))
    op.drop_table('ratings')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_kpi')
    op.drop_table('payments')
