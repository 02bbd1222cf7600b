"""Attendance tests: a company with two employees of 研发部."""

from __future__ import annotations

from datetime import date

import pytest


@pytest.fixture
def world(factory):
    co = factory.company()
    a = factory.employee(co, employee_no="A001", name="李雷", hire_date=date(2024, 1, 2))
    b = factory.employee(co, employee_no="A002", name="韩梅梅", hire_date=date(2024, 1, 2))
    return co, a, b
