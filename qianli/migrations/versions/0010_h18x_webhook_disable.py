"""webhook endpoints disabled after failing for QIANLI_WEBHOOK_DISABLE_AFTER_S, and their audit trail

webhook_endpoints gains failing_since (every attempt since then failed), disabled_at, disabled_reason
(manual / failing) and disabled_by; webhook_endpoint_events is the endpoint's append-only audit trail.

Revision ID: 0010_h18x_webhook_disable
Revises: 0007_h16b_absconding
"""
from alembic import op
import sqlalchemy as sa

import qianli.db
from qianli.migrate import append_only_sql


revision = '0010_h18x_webhook_disable'
down_revision = '0007_h16b_absconding'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', qianli.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('disabled_at', qianli.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('disabled_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('disabled_by', sa.String(length=120), nullable=True))
    op.create_table(
        'webhook_endpoint_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('company_id', sa.String(length=32), nullable=False),
        sa.Column('endpoint_id', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('occurred_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['company_id'], ['companies.id'],
                                name=op.f('fk_webhook_endpoint_events_company_id_companies')),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                                name=op.f('fk_webhook_endpoint_events_endpoint_id_webhook_endpoints')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint_events')),
    )
    with op.batch_alter_table('webhook_endpoint_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_endpoint_events_endpoint', ['endpoint_id', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for stmt in append_only_sql("webhook_endpoint_events"):  # the endpoints' audit trail
            op.execute(stmt)


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoint_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_endpoint_events_endpoint')
    op.drop_table('webhook_endpoint_events')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('disabled_by')
        batch_op.drop_column('disabled_reason')
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('failing_since')
