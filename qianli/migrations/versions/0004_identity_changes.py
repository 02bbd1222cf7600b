"""identity history (phone changes, WeChat rebinding, face references) and face provenance

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import qianli.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_changes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('employee_id', sa.String(length=32), nullable=False),
    sa.Column('factor', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('old_value', sa.String(length=64), nullable=False),
    sa.Column('new_value', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=500), nullable=False),
    sa.Column('notify_openid', sa.String(length=128), nullable=True),
    sa.Column('notices', sa.JSON(), nullable=False),
    sa.Column('notice_results', sa.JSON(), nullable=False),
    sa.Column('usable_from', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.String(length=120), nullable=True),
    sa.Column('objected_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('objected_by', sa.String(length=120), nullable=True),
    sa.Column('objection', sa.String(length=500), nullable=False),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_identity_changes_company_id_companies')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_identity_changes_employee_id_employees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_changes'))
    )
    op.create_index('ix_identity_changes_employee', 'identity_changes', ['company_id', 'employee_id', 'created_at'], unique=False)
    op.create_index('ix_identity_changes_notify_openid', 'identity_changes', ['notify_openid'], unique=False)
    with op.batch_alter_table('face_enrolments') as batch:
        batch.add_column(sa.Column('employee_confirmed_at', qianli.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('provider_ref', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('face_enrolments') as batch:
        batch.drop_column('provider_ref')
        batch.drop_column('employee_confirmed_at')
    op.drop_index('ix_identity_changes_notify_openid', table_name='identity_changes')
    op.drop_index('ix_identity_changes_employee', table_name='identity_changes')
    op.drop_table('identity_changes')
