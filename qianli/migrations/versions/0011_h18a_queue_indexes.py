"""indexes for listCases' department and search filters (issue 18)

The department filter counted a department's cases by hashing all of the company's cases (11 ms
on 50,000); with (employee_id, company_id) PostgreSQL starts from the department's employees and
counts their cases from the index alone (about 1 ms). The name / employee-number search
(LIKE '%...%') scanned every employee; GIN trigram indexes answer it from the index (PostgreSQL;
on SQLite empty partial indexes keep the schema the same as the models'). The single-column
index on employee_id is replaced by the composite one (same leading column).

Revision ID: 0011_h18a_queue_indexes
Revises: 0010_h18x_webhook_disable
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_h18a_queue_indexes'
down_revision = '0010_h18x_webhook_disable'
branch_labels = None
depends_on = None

TRIGRAM = (("ix_employees_name_trgm", "name"), ("ix_employees_no_trgm", "employee_no"))


def upgrade() -> None:
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_employee_company', ['employee_id', 'company_id'], unique=False)
        batch_op.drop_index('ix_resignation_cases_employee_id')
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for name, column in TRIGRAM:
            op.create_index(name, "employees", [column], sqlite_where=sa.text("0"))
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema = bind.execute(sa.text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                                  "WHERE e.extname = 'pg_trgm'")).scalar_one()
    for name, column in TRIGRAM:
        op.execute(f'CREATE INDEX {name} ON employees USING gin ({column} "{schema}".gin_trgm_ops)')


def downgrade() -> None:
    for name, _column in TRIGRAM:
        op.drop_index(name, table_name="employees")
    with op.batch_alter_table('resignation_cases', schema=None) as batch_op:
        batch_op.create_index('ix_resignation_cases_employee_id', ['employee_id'], unique=False)
        batch_op.drop_index('ix_cases_employee_company')
