"""Fixtures of the webhook tests: a real receiver, a company of its own and its HR manager."""

from __future__ import annotations

import pytest

from qianli.db import new_id
from tests.webhooks.receiver import WebhookReceiver


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def company(factory):
    return factory.company(code=f"wh{new_id()[:6]}")


@pytest.fixture
def manager(factory, company):
    return factory.hr(company, "hr_manager")
