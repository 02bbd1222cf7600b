"""offboarding templates, tasks and task reminders (issue 15)

Revision ID: 0008_h15t_offboarding
Revises: 0007_h17a_alumni
"""
from alembic import op
import sqlalchemy as sa
import qianli.db


revision = '0008_h15t_offboarding'
down_revision = '0007_h17a_alumni'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('offboarding_templates',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('departure_type', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_offboarding_templates_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offboarding_templates')),
    sa.UniqueConstraint('company_id', 'departure_type', 'version', name='uq_offboarding_templates_company_type_version')
    )
    with op.batch_alter_table('offboarding_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offboarding_templates_company_id'), ['company_id'], unique=False)

    op.create_table('offboarding_tasks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('employee_id', sa.String(length=32), nullable=False),
    sa.Column('item_key', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('departure_type', sa.String(length=32), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('group', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_role', sa.String(length=16), nullable=True),
    sa.Column('owner_user_id', sa.String(length=32), nullable=True),
    sa.Column('owner_department', sa.String(length=100), nullable=True),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('day_kind', sa.String(length=16), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('completed_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=120), nullable=True),
    sa.Column('completed_by_name', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('cancelled_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.String(length=120), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('escalated_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['resignation_cases.id'], name=op.f('fk_offboarding_tasks_case_id_resignation_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_offboarding_tasks_company_id_companies')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_offboarding_tasks_document_id_documents')),
    sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_offboarding_tasks_employee_id_employees')),
    sa.ForeignKeyConstraint(['owner_user_id'], ['hr_users.id'], name=op.f('fk_offboarding_tasks_owner_user_id_hr_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offboarding_tasks')),
    sa.UniqueConstraint('case_id', 'item_key', name='uq_offboarding_tasks_case_item')
    )
    with op.batch_alter_table('offboarding_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offboarding_tasks_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_offboarding_tasks_company_status', ['company_id', 'status', 'due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_offboarding_tasks_owner_user_id'), ['owner_user_id'], unique=False)

    op.create_table('offboarding_task_reminders',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('recipient_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', qianli.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['resignation_cases.id'], name=op.f('fk_offboarding_task_reminders_case_id_resignation_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_offboarding_task_reminders_company_id_companies')),
    sa.ForeignKeyConstraint(['recipient_id'], ['hr_users.id'], name=op.f('fk_offboarding_task_reminders_recipient_id_hr_users')),
    sa.ForeignKeyConstraint(['task_id'], ['offboarding_tasks.id'], name=op.f('fk_offboarding_task_reminders_task_id_offboarding_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offboarding_task_reminders')),
    sa.UniqueConstraint('task_id', 'recipient_id', 'day', 'kind', name='uq_offboarding_task_reminders_once')
    )
    with op.batch_alter_table('offboarding_task_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offboarding_task_reminders_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_offboarding_task_reminders_status', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_offboarding_task_reminders_task_id'), ['task_id'], unique=False)

    with op.batch_alter_table('hr_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_roles', sa.JSON(), server_default='[]', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('hr_users', schema=None) as batch_op:
        batch_op.drop_column('task_roles')

    with op.batch_alter_table('offboarding_task_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offboarding_task_reminders_task_id'))
        batch_op.drop_index('ix_offboarding_task_reminders_status')
        batch_op.drop_index(batch_op.f('ix_offboarding_task_reminders_case_id'))

    op.drop_table('offboarding_task_reminders')
    with op.batch_alter_table('offboarding_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offboarding_tasks_owner_user_id'))
        batch_op.drop_index('ix_offboarding_tasks_company_status')
        batch_op.drop_index(batch_op.f('ix_offboarding_tasks_case_id'))

    op.drop_table('offboarding_tasks')
    with op.batch_alter_table('offboarding_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offboarding_templates_company_id'))

    op.drop_table('offboarding_templates')
