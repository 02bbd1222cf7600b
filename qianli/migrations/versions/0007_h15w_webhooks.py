"""outbound webhooks, access revocation and confirmations, WeCom userids (issue 15, h15w)

Revision ID: 0007_h15w_webhooks
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import qianli.db


revision = '0007_h15w_webhooks'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('secret_enc', sa.Text(), nullable=False),
    sa.Column('previous_secret_enc', sa.Text(), nullable=True),
    sa.Column('previous_secret_until', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('secret_rotated_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_webhook_endpoints_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_company_id'), ['company_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('endpoint_id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=True),
    sa.Column('msg_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_webhook_deliveries_company_id_companies')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('event_id', 'endpoint_id', name='uq_webhook_deliveries_event_endpoint'),
    sa.UniqueConstraint('msg_id', name=op.f('uq_webhook_deliveries_msg_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_company_created', ['company_id', 'created_at'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('access_revocations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('employee_id', sa.String(length=32), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('due_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.Column('sent_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['resignation_cases.id'], name=op.f('fk_access_revocations_case_id_resignation_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_access_revocations_company_id_companies')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_access_revocations_employee_id_employees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_revocations')),
    sa.UniqueConstraint('case_id', name=op.f('uq_access_revocations_case_id'))
    )
    with op.batch_alter_table('access_revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_revocations_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_access_revocations_due', ['status', 'due_at'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('started_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('response_excerpt', sa.Text(), nullable=True),
    sa.Column('next_retry_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_webhook_attempts_company_id_companies')),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
    sa.UniqueConstraint('delivery_id', 'attempt', name='uq_webhook_attempts_delivery_attempt')
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('revocation_confirmations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('revocation_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('system', sa.String(length=100), nullable=False),
    sa.Column('endpoint_id', sa.String(length=32), nullable=True),
    sa.Column('expected', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('confirmed_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_via', sa.String(length=120), nullable=True),
    sa.Column('alerted_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['resignation_cases.id'], name=op.f('fk_revocation_confirmations_case_id_resignation_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_revocation_confirmations_company_id_companies')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_revocation_confirmations_endpoint_id_webhook_endpoints')),
    sa.ForeignKeyConstraint(['revocation_id'], ['access_revocations.id'], name=op.f('fk_revocation_confirmations_revocation_id_access_revocations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_confirmations')),
    sa.UniqueConstraint('revocation_id', 'system', name='uq_revocation_confirmations_system')
    )
    with op.batch_alter_table('revocation_confirmations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_confirmations_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_revocation_confirmations_open', ['status', 'alerted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_revocation_confirmations_revocation_id'), ['revocation_id'], unique=False)

    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))

    with op.batch_alter_table('hr_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('hr_users', schema=None) as batch_op:
        batch_op.drop_column('wecom_userid')

    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.drop_column('wecom_userid')

    with op.batch_alter_table('revocation_confirmations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_confirmations_revocation_id'))
        batch_op.drop_index('ix_revocation_confirmations_open')
        batch_op.drop_index(batch_op.f('ix_revocation_confirmations_company_id'))

    op.drop_table('revocation_confirmations')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_id'))

    op.drop_table('webhook_attempts')
    with op.batch_alter_table('access_revocations', schema=None) as batch_op:
        batch_op.drop_index('ix_access_revocations_due')
        batch_op.drop_index(batch_op.f('ix_access_revocations_company_id'))

    op.drop_table('access_revocations')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id'))
        batch_op.drop_index('ix_webhook_deliveries_due')
        batch_op.drop_index('ix_webhook_deliveries_company_created')
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_case_id'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_company_id'))

    op.drop_table('webhook_endpoints')
    # ### end Alembic commands ###
