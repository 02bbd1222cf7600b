"""Why people leave: the reason categories an employee picks on the resignation form, with their
zh-CN labels (the letter, the console, analytics and reports share this one wording). Standard
library only.
"""

from __future__ import annotations

__all__ = ["REASON_CATEGORIES", "REASON_LABELS", "UNSPECIFIED_REASON", "reason_label"]

REASON_CATEGORIES = ("career_development", "compensation", "family", "health", "relocation", "further_study",
                     "work_environment", "other")
REASON_LABELS: dict[str, str] = {
    "career_development": "职业发展", "compensation": "薪酬待遇", "family": "家庭原因", "health": "健康原因",
    "relocation": "工作地点变更", "further_study": "继续深造", "work_environment": "工作环境", "other": "其他"}
UNSPECIFIED_REASON = "unspecified"
"""The key analytics use for a case without a reason category (a recorded chat message, absconding)."""


def reason_label(value: str | None) -> str:
    """The zh-CN label of a reason category; no category reads 未填写."""
    if not value or value == UNSPECIFIED_REASON:
        return "未填写"
    return REASON_LABELS.get(value, value)
