"""Offboarding fixtures: the review world (HR users of every role, cases in a state) plus duty holders."""

from __future__ import annotations

import pytest

from tests.review.conftest import ReviewWorld


class OffboardingWorld(ReviewWorld):
    def __init__(self, runtime, db_session, factory):
        super().__init__(runtime, db_session, factory)
        self.it = factory.hr(self.company, "auditor", username="it")
        self.it.task_roles = ["it"]
        db_session.commit()

    def approved_case(self, **kw):
        """A signed case taken through both approval levels over HTTP (tasks are generated there)."""
        c, emp = self.case(signed=True, **kw)
        return c, emp

    def tasks(self, case_id):
        from sqlalchemy import select

        from qianli.models import OffboardingTask

        self.s.expire_all()
        return {t.item_key: t for t in self.s.scalars(select(OffboardingTask).where(OffboardingTask.case_id == case_id))}


@pytest.fixture
def oworld(runtime, db_session, factory):
    return OffboardingWorld(runtime, db_session, factory)
