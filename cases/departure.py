"""How an employment relationship ends: the departure types a case can have. Standard library only.

``resignation``: the employee gave notice (Labor Contract Law art. 37), the flow QianLi started with.
``absconding``: the employee stopped coming without notice (擅自离职); the company records the absence,
serves a return-to-work notice and may dismiss under art. 39(2). ``agreement``: an agreed
termination (art. 36).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["DepartureType", "DEPARTURE_LABELS", "departure_label"]


class DepartureType(str, Enum):
    RESIGNATION = "resignation"
    ABSCONDING = "absconding"
    AGREEMENT = "agreement"


DEPARTURE_LABELS: dict[str, str] = {
    DepartureType.RESIGNATION.value: "辞职",
    DepartureType.ABSCONDING.value: "擅自离职",
    DepartureType.AGREEMENT.value: "协商解除",
}
"""The zh-CN name of each departure type (console, reports, analytics)."""


def departure_label(value: str) -> str:
    """The zh-CN label of a departure type value; unknown values are returned unchanged."""
    return DEPARTURE_LABELS.get(value, value)
