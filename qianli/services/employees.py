"""Employees of the roster: creation with encrypted personal data, lookups by keyed hash."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.errors import Conflict, InvalidInput, NotFound
from qianli.crypto import normalize_phone
from qianli.models import Employee
from qianli.runtime import Runtime

__all__ = ["PHONE_RE", "create_employee", "employee_phone", "employee_national_id", "find_employee",
           "set_personal_data", "erase_phone", "PHONE_ERASED"]

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def _aad(emp: Employee, column: str) -> str:
    return f"employees.{column}:{emp.company_id}:{emp.employee_no}"  # decrypt_phone spells it out too


def set_personal_data(rt: Runtime, emp: Employee, *, phone: str | None = None, national_id: str | None = None) -> None:
    """Encrypt (AES-256-GCM, bound to company + employee number) and index by keyed hash."""
    if phone is not None:
        phone = normalize_phone(phone)
        if not PHONE_RE.match(phone):
            raise InvalidInput("invalid_phone", "手机号格式不正确")
        emp.phone_enc = rt.cipher.encrypt(phone, _aad(emp, "phone"))
        emp.phone_hash = rt.lookup("phone", phone)
    if national_id is not None:
        national_id = national_id.strip().upper()
        emp.national_id_enc = rt.cipher.encrypt(national_id, _aad(emp, "national_id")) if national_id else None
        emp.national_id_hash = rt.lookup("national_id", national_id) if national_id else None


def create_employee(session: Session, rt: Runtime, *, company_id: str, employee_no: str, name: str, phone: str,
                    national_id: str | None = None, department: str = "", position: str = "",
                    hire_date: date | None = None, probation_end: date | None = None,
                    contract_term: str = "") -> Employee:
    if session.scalar(select(Employee.id).where(Employee.company_id == company_id, Employee.employee_no == employee_no)):
        raise Conflict("employee_exists", f"employee number {employee_no} already exists")
    emp = Employee(company_id=company_id, employee_no=employee_no, name=name, department=department,
                   position=position, hire_date=hire_date, probation_end=probation_end, contract_term=contract_term)
    set_personal_data(rt, emp, phone=phone, national_id=national_id or "")
    session.add(emp)
    session.flush()
    return emp


PHONE_ERASED = "erased"


def erase_phone(rt: Runtime, emp: Employee) -> bool:
    """Delete the phone number (retention): ``employee_phone`` then returns ''. Returns whether one was there."""
    if emp.phone_hash == PHONE_ERASED:
        return False
    emp.phone_enc, emp.phone_hash = rt.cipher.encrypt("", _aad(emp, "phone")), PHONE_ERASED
    return True


def employee_phone(rt: Runtime, emp: Employee) -> str:
    return rt.cipher.decrypt(emp.phone_enc, _aad(emp, "phone"))


def decrypt_phone(rt: Runtime, company_id: str, employee_no: str, phone_enc: str) -> str:
    """:func:`employee_phone` from the columns alone (bulk readers that load no Employee objects)."""
    return rt.cipher.decrypt(phone_enc, f"employees.phone:{company_id}:{employee_no}")


def employee_national_id(rt: Runtime, emp: Employee) -> str | None:
    return rt.cipher.decrypt(emp.national_id_enc, _aad(emp, "national_id")) if emp.national_id_enc else None


def find_employee(session: Session, *, company_id: str, employee_no: str) -> Employee:
    emp = session.scalar(select(Employee).where(Employee.company_id == company_id, Employee.employee_no == employee_no))
    if emp is None:
        raise NotFound("employee_not_found", "找不到该员工")
    return emp
