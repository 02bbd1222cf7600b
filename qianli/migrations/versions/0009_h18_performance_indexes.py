"""indexes for the HR case queue at scale (issue 18)

listCases on 50,000 cases sorted the whole company on every request; these let it read two
short index ranges (overdue cases, then the newest others) and filter by arrival date and
department without a scan.

Revision ID: 0009_h18_perf_indexes
Revises: 0007_h16a_attendance
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_h18_perf_indexes'
down_revision = '0007_h16a_attendance'
branch_labels = None
depends_on = None

AWAITING = "state = 'awaiting_letter' AND letter_submitted_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_company_created', ['company_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_awaiting_letter', ['company_id', 'created_at', 'id', 'letter_due_date'], unique=False,
                              postgresql_where=sa.text(AWAITING), sqlite_where=sa.text(AWAITING))
        batch_op.create_index('ix_cases_company_arrival', ['company_id', 'arrival_date'], unique=False)
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.create_index('ix_employees_company_department', ['company_id', 'department'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.drop_index('ix_employees_company_department')
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_company_arrival')
        batch_op.drop_index('ix_cases_awaiting_letter')
        batch_op.drop_index('ix_cases_company_created')
