"""case_tallies: an employee's department change updates the tally rows in one global order (issue 18)

The trigger function of 0012 moved an employee's counts group by group (old department, then new),
while the case trigger orders its two rows by key: two transactions could lock the same two tally
rows in opposite orders and deadlock. The function now updates every row it touches sorted by
(company, department, state, departure type). PostgreSQL only (SQLite has one writer).

Revision ID: 0014_h18a_tally_lock_order
Revises: 0013_h18a_department_indexes
"""
from alembic import op


revision = '0014_h18a_tally_lock_order'
down_revision = '0013_h18a_department_indexes'
branch_labels = None
depends_on = None

FUNCTION = """CREATE OR REPLACE FUNCTION qianli_case_tally_employees() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        r record;
    BEGIN
        IF NEW.department IS DISTINCT FROM OLD.department THEN
            FOR r IN SELECT * FROM (
                         SELECT company_id, coalesce(OLD.department, '') AS department, state, departure_type,
                                -count(*)::integer AS k
                         FROM resignation_cases WHERE employee_id = NEW.id GROUP BY company_id, state, departure_type
                         UNION ALL
                         SELECT company_id, coalesce(NEW.department, ''), state, departure_type, count(*)::integer
                         FROM resignation_cases WHERE employee_id = NEW.id GROUP BY company_id, state, departure_type
                     ) moves ORDER BY company_id, department, state, departure_type LOOP
                PERFORM qianli_case_tally_add(r.company_id, r.department, r.state, r.departure_type, r.k);
            END LOOP;
        END IF;
        RETURN NULL;
    END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    pass  # the earlier body is equivalent in effect; only its lock order differs
