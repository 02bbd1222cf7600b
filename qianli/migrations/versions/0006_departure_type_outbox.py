"""departure types on cases and the transactional outbox (issues 15-17)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import qianli.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('departure_type', sa.String(length=20), server_default='resignation',
                                      nullable=False))
    op.create_table('outbox_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=True),
    sa.Column('employee_id', sa.String(length=32), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['resignation_cases.id'], name=op.f('fk_outbox_events_case_id_resignation_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_outbox_events_company_id_companies')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_outbox_events_employee_id_employees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events'))
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_events_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_outbox_events_company_created', ['company_id', 'created_at'], unique=False)
        batch_op.create_index('ix_outbox_events_undispatched', ['dispatched_at', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_undispatched')
        batch_op.drop_index('ix_outbox_events_company_created')
        batch_op.drop_index(batch_op.f('ix_outbox_events_case_id'))
    op.drop_table('outbox_events')
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.drop_column('departure_type')
