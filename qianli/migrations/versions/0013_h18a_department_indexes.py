"""the department's overdue count from two indexes alone (issue 18)

listCases with a department (and every department head's queue) counts the department's overdue
cases: a hash join of the awaiting-letter cases with the department's employees. Both sides read
the table rows for one column (the case's employee_id, the employee's id): 3.6 ms on 50,000
cases. With employee_id in the partial index and id in the department index both are index-only
(0.6 ms).

Revision ID: 0013_h18a_department_indexes
Revises: 0012_h18a_case_tallies
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_h18a_department_indexes'
down_revision = '0012_h18a_case_tallies'
branch_labels = None
depends_on = None

AWAITING = "state = 'awaiting_letter' AND letter_submitted_at IS NULL"


def _recreate(awaiting_columns: list[str], department_columns: list[str]) -> None:
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_awaiting_letter')
        batch_op.create_index('ix_cases_awaiting_letter', awaiting_columns, unique=False,
                              postgresql_where=sa.text(AWAITING), sqlite_where=sa.text(AWAITING))
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.drop_index('ix_employees_company_department')
        batch_op.create_index('ix_employees_company_department', department_columns, unique=False)


def upgrade() -> None:
    _recreate(['company_id', 'created_at', 'id', 'letter_due_date', 'employee_id'], ['company_id', 'department', 'id'])


def downgrade() -> None:
    _recreate(['company_id', 'created_at', 'id', 'letter_due_date'], ['company_id', 'department'])
