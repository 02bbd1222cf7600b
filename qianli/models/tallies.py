"""Stored case counts: the exact totals of the HR queue (listCases) without counting the cases per request.

``case_tallies`` holds, per company, employee department, state and departure type, how many
cases there are. Database triggers keep it (``CASE_TALLY_SQL``): every insert and delete of a
case, every change of its state, departure type or employee, and every department change of an
employee moves the counts in the same transaction, so a committed tally is always the count of
the committed cases (PostgreSQL: the case trigger reads the employee's department ``FOR SHARE``,
so a concurrent department change waits for it or is waited for; the two rows of a move are
updated in one order whatever the direction, so opposite moves cannot deadlock). The app never
writes it. A TRUNCATE of the cases bypasses row triggers: ``qianli db recount-cases`` rebuilds it.

The page's total of a queue filtered by state, departure type and department (or a department
head's scope) is then a sum over a handful of rows instead of a count over every case of the
company (50,000 cases: 2 ms of PostgreSQL per request, 11 ms with the department filter).
"""

from __future__ import annotations

from sqlalchemy import DDL, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from qianli.db import Base

__all__ = ["CaseTally", "CASE_TALLY_SQL", "CASE_TALLY_REBUILD_SQL", "EMPLOYEE_DEPARTMENT_FUNCTION"]


class CaseTally(Base):
    """Cases per (company, employee department, state, departure type); kept by triggers only."""

    __tablename__ = "case_tallies"
    company_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(32), primary_key=True)
    departure_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


_UPSERT = ("INSERT INTO case_tallies (company_id, department, state, departure_type, n) VALUES ({v}) "
           "ON CONFLICT (company_id, department, state, departure_type) DO UPDATE SET n = case_tallies.n + {d}")

# An employee's department change moves their cases' counts: every tally row it touches is updated in one
# global order (company, department, state, departure type), as the case trigger orders its two rows, so
# two transactions moving counts cannot wait on each other's rows in opposite orders (migration 0014).
EMPLOYEE_DEPARTMENT_FUNCTION = """CREATE OR REPLACE FUNCTION qianli_case_tally_employees() RETURNS trigger
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

_PG = [
    """CREATE OR REPLACE FUNCTION qianli_case_tally_add(c text, d text, s text, t text, delta integer) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO case_tallies (company_id, department, state, departure_type, n)
        VALUES (c, coalesce(d, ''), s, t, delta)
        ON CONFLICT (company_id, department, state, departure_type) DO UPDATE SET n = case_tallies.n + EXCLUDED.n;
    END $$""",
    """CREATE OR REPLACE FUNCTION qianli_case_tally_cases() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        old_dept text := '';
        new_dept text := '';
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            SELECT coalesce(department, '') INTO old_dept FROM employees WHERE id = OLD.employee_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT coalesce(department, '') INTO new_dept FROM employees WHERE id = NEW.employee_id FOR SHARE;
        END IF;
        IF TG_OP = 'INSERT' THEN
            PERFORM qianli_case_tally_add(NEW.company_id, new_dept, NEW.state, NEW.departure_type, 1);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM qianli_case_tally_add(OLD.company_id, old_dept, OLD.state, OLD.departure_type, -1);
        ELSIF (OLD.company_id, coalesce(old_dept, ''), OLD.state, OLD.departure_type)
              IS DISTINCT FROM (NEW.company_id, coalesce(new_dept, ''), NEW.state, NEW.departure_type) THEN
            IF (OLD.company_id, coalesce(old_dept, ''), OLD.state, OLD.departure_type)
               < (NEW.company_id, coalesce(new_dept, ''), NEW.state, NEW.departure_type) THEN
                PERFORM qianli_case_tally_add(OLD.company_id, old_dept, OLD.state, OLD.departure_type, -1);
                PERFORM qianli_case_tally_add(NEW.company_id, new_dept, NEW.state, NEW.departure_type, 1);
            ELSE
                PERFORM qianli_case_tally_add(NEW.company_id, new_dept, NEW.state, NEW.departure_type, 1);
                PERFORM qianli_case_tally_add(OLD.company_id, old_dept, OLD.state, OLD.departure_type, -1);
            END IF;
        END IF;
        RETURN NULL;
    END $$""",
    EMPLOYEE_DEPARTMENT_FUNCTION,
    "DROP TRIGGER IF EXISTS trg_case_tally ON resignation_cases",
    "CREATE TRIGGER trg_case_tally AFTER INSERT OR DELETE OR UPDATE OF company_id, employee_id, state, departure_type "
    "ON resignation_cases FOR EACH ROW EXECUTE FUNCTION qianli_case_tally_cases()",
    "DROP TRIGGER IF EXISTS trg_case_tally_department ON employees",
    "CREATE TRIGGER trg_case_tally_department AFTER UPDATE OF department ON employees "
    "FOR EACH ROW EXECUTE FUNCTION qianli_case_tally_employees()",
]

_DEPT = "coalesce((SELECT department FROM employees WHERE id = {r}.employee_id), '')"
_SQLITE = [
    "DROP TRIGGER IF EXISTS trg_case_tally_insert",
    "CREATE TRIGGER trg_case_tally_insert AFTER INSERT ON resignation_cases BEGIN "
    + _UPSERT.format(v=f"NEW.company_id, {_DEPT.format(r='NEW')}, NEW.state, NEW.departure_type, 1", d="1") + "; END",
    "DROP TRIGGER IF EXISTS trg_case_tally_delete",
    "CREATE TRIGGER trg_case_tally_delete AFTER DELETE ON resignation_cases BEGIN "
    + _UPSERT.format(v=f"OLD.company_id, {_DEPT.format(r='OLD')}, OLD.state, OLD.departure_type, -1", d="-1") + "; END",
    "DROP TRIGGER IF EXISTS trg_case_tally_update",
    "CREATE TRIGGER trg_case_tally_update AFTER UPDATE OF company_id, employee_id, state, departure_type "
    "ON resignation_cases WHEN OLD.company_id IS NOT NEW.company_id OR OLD.employee_id IS NOT NEW.employee_id "
    "OR OLD.state IS NOT NEW.state OR OLD.departure_type IS NOT NEW.departure_type BEGIN "
    + _UPSERT.format(v=f"OLD.company_id, {_DEPT.format(r='OLD')}, OLD.state, OLD.departure_type, -1", d="-1") + "; "
    + _UPSERT.format(v=f"NEW.company_id, {_DEPT.format(r='NEW')}, NEW.state, NEW.departure_type, 1", d="1") + "; END",
    "DROP TRIGGER IF EXISTS trg_case_tally_department",
    "CREATE TRIGGER trg_case_tally_department AFTER UPDATE OF department ON employees "
    "WHEN OLD.department IS NOT NEW.department BEGIN "
    "INSERT INTO case_tallies (company_id, department, state, departure_type, n) "
    "SELECT company_id, coalesce(NEW.department, ''), state, departure_type, count(*) FROM resignation_cases "
    "WHERE employee_id = NEW.id GROUP BY company_id, state, departure_type "
    "ON CONFLICT (company_id, department, state, departure_type) DO UPDATE SET n = case_tallies.n + excluded.n; "
    "INSERT INTO case_tallies (company_id, department, state, departure_type, n) "
    "SELECT company_id, coalesce(OLD.department, ''), state, departure_type, -count(*) FROM resignation_cases "
    "WHERE employee_id = NEW.id GROUP BY company_id, state, departure_type "
    "ON CONFLICT (company_id, department, state, departure_type) DO UPDATE SET n = case_tallies.n + excluded.n; END",
]

CASE_TALLY_SQL = {"postgresql": _PG, "sqlite": _SQLITE}
"""The triggers that keep ``case_tallies``, per dialect (the migration and create_all run them)."""

CASE_TALLY_REBUILD_SQL = [
    "DELETE FROM case_tallies",
    "INSERT INTO case_tallies (company_id, department, state, departure_type, n) "
    "SELECT c.company_id, coalesce(e.department, ''), c.state, c.departure_type, count(*) "
    "FROM resignation_cases c LEFT JOIN employees e ON e.id = c.employee_id "
    "GROUP BY c.company_id, coalesce(e.department, ''), c.state, c.departure_type",
]
"""Recount every tally from the cases (the migration's backfill; ``qianli db recount-cases``)."""

# create_all (tests, development) installs the triggers once every table exists.
for _dialect, _statements in CASE_TALLY_SQL.items():
    for _sql in _statements:
        event.listen(Base.metadata, "after_create", DDL(_sql).execute_if(dialect=_dialect))
