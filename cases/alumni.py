"""The alumni domain: consent purposes and text, profile vocabulary, festival dates, matching.

Joining the alumni network (离职人才库) is a new purpose under PIPL: the person consents per
purpose to the versioned text below and may withdraw at any time (in the mini-program, with an
SMS reply "TD"/"退订", or with the unsubscribe link in any message). Festival greetings go out
on Spring Festival (1st day of the 1st lunar month) and Mid-Autumn (15th day of the 8th lunar
month), computed with lunar-python like the statutory holidays. Standard library + lunar-python.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from enum import Enum

from lunar_python import Lunar

__all__ = ["AlumniPurpose", "PURPOSE_LABELS", "CONSENT_TEXT_VERSION", "CONSENT_TEXT", "CONSENT_TEXT_SHA256",
           "GRADE_LABELS", "Festival", "FESTIVAL_LABELS", "FESTIVAL_GREETINGS", "festival_on", "festival_dates",
           "UNSUBSCRIBE_WORDS", "is_unsubscribe_reply", "normalize_terms", "match_score", "search_document",
           "OpeningMatch"]


class AlumniPurpose(str, Enum):
    GREETINGS = "greetings"
    COMPANY_NEWS = "company_news"
    JOB_OPENINGS = "job_openings"


PURPOSE_LABELS: dict[AlumniPurpose, str] = {
    AlumniPurpose.GREETINGS: "节日问候",
    AlumniPurpose.COMPANY_NEWS: "公司动态",
    AlumniPurpose.JOB_OPENINGS: "岗位推荐（返聘机会）",
}

CONSENT_TEXT_VERSION = "alumni-2026-11"
CONSENT_TEXT = (
    "加入离职人才库（校友网络）同意书\n"
    "您即将或已经离开公司。经您同意，公司将把您的以下信息保存在离职人才库中："
    "姓名、联系电话、在职期间的部门、岗位与起止日期、离职类型与原因类别、技能与标签、"
    "是否可再次录用的评估，以及 HR 经理可见的绩效等级。"
    "处理目的（可分别选择）：节日问候；公司动态；岗位推荐（返聘机会）。"
    "您选择的目的，公司将通过短信或小程序与您联系，每条消息均附退订方式（回复 TD 或“退订”，或打开退订链接）。"
    "您可以随时在小程序中撤回任一目的的同意；撤回全部目的后，公司将删除人才库中您的信息，"
    "仅依法保存解除劳动关系的文件（至少两年）。"
    "不同意不影响您依法离职，也不影响离职证明的出具。"
    "（依据《个人信息保护法》第十三、十四、十五、四十七条）"
)
CONSENT_TEXT_SHA256 = hashlib.sha256(CONSENT_TEXT.encode()).hexdigest()

GRADE_LABELS: dict[str, str] = {"A": "优秀", "B": "良好", "C": "合格", "D": "待改进"}


class Festival(str, Enum):
    SPRING_FESTIVAL = "spring_festival"
    MID_AUTUMN = "mid_autumn"


FESTIVAL_LABELS: dict[Festival, str] = {Festival.SPRING_FESTIVAL: "春节", Festival.MID_AUTUMN: "中秋节"}
FESTIVAL_GREETINGS: dict[Festival, str] = {
    Festival.SPRING_FESTIVAL: "新春快乐！感谢您曾与我们同行，祝您新的一年万事顺意、阖家安康。",
    Festival.MID_AUTUMN: "中秋快乐！月圆人团圆，祝您和家人幸福安康。",
}


def _solar(lunar: Lunar) -> date:
    s = lunar.getSolar()
    return date(s.getYear(), s.getMonth(), s.getDay())


def festival_dates(year: int) -> dict[Festival, date]:
    """The Gregorian dates of the festivals in ``year`` (lunar 1/1 and 8/15 of that lunar year)."""
    return {Festival.SPRING_FESTIVAL: _solar(Lunar.fromYmd(year, 1, 1)),
            Festival.MID_AUTUMN: _solar(Lunar.fromYmd(year, 8, 15))}


def festival_on(day: date) -> Festival | None:
    """The festival that falls on ``day`` (a Beijing calendar date), if any."""
    for festival, d in festival_dates(day.year).items():
        if d == day:
            return festival
    return None


# Replies that withdraw every alumni purpose (the operators' convention for marketing SMS).
UNSUBSCRIBE_WORDS = frozenset({"td", "t", "退订", "退定", "取消", "unsubscribe", "stop", "n"})


def is_unsubscribe_reply(text: str) -> bool:
    """Whether an SMS reply asks to unsubscribe ('TD', '退订', ' td ', '退订。' ...)."""
    cleaned = re.sub(r"[\s\.,!?。，！？、]+", "", text or "").lower()
    return cleaned in UNSUBSCRIBE_WORDS


def normalize_terms(values: list[str] | tuple[str, ...], *, max_items: int = 50, max_len: int = 50) -> list[str]:
    """Skills and tags as stored: trimmed, de-duplicated case-insensitively (first spelling kept), in order."""
    seen: set[str] = set()
    out: list[str] = []
    for v in values:
        term = re.sub(r"\s+", " ", str(v)).strip()[:max_len]
        if term and term.lower() not in seen:
            seen.add(term.lower())
            out.append(term)
        if len(out) >= max_items:
            break
    return out


def search_document(skills: list[str], tags: list[str], notes: str, positions: list[str]) -> str:
    """The text the full-text search reads: skills, tags, positions and notes, one per line."""
    return "\n".join([" ".join(skills), " ".join(tags), " ".join(positions), notes or ""]).strip()


@dataclass(frozen=True)
class OpeningMatch:
    """How an alumnus's profile meets an opening: the skills and tags in common."""

    skills: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def score(self) -> int:
        return 2 * len(self.skills) + len(self.tags)


def match_score(opening_skills: list[str], opening_tags: list[str], skills: list[str], tags: list[str]) -> OpeningMatch:
    """Skills and tags the opening asks for that the profile has (case-insensitive)."""
    have_s = {s.lower() for s in skills}
    have_t = {t.lower() for t in tags}
    return OpeningMatch(tuple(s for s in opening_skills if s.lower() in have_s),
                        tuple(t for t in opening_tags if t.lower() in have_t))
