"""The one clock: QianLi stores UTC and reasons in Beijing time (Asia/Shanghai).

Every "what day is it in China" question, every rendering of a time for people and the current UTC
instant come from here, so that the time zone is written once and tests can travel in time
(``time_machine``) through one function. Standard library only.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

__all__ = ["SHANGHAI", "utcnow", "set_offset", "current_offset", "aware", "beijing_date", "beijing_today", "beijing_day_start", "beijing_text"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


_offset = timedelta(0)


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC (moved by the development clock offset, if one is set)."""
    return datetime.now(timezone.utc) + _offset


def set_offset(offset: timedelta) -> None:
    """Move this process's clock by ``offset`` (development and test deployments only).

    Only ``qianli.services.devclock`` calls this, and never in production: there the offset stays zero.
    It exists so that a demo driving a running service can let a deadline pass.
    """
    global _offset
    _offset = offset


def current_offset() -> timedelta:
    """The offset ``utcnow`` adds (zero unless a development deployment moved its clock)."""
    return _offset


def aware(t: datetime) -> datetime:
    """``t`` itself, or read as UTC when naive (SQLite hands back naive UTC datetimes)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def beijing_date(t: datetime) -> date:
    """The calendar date in China at instant ``t`` (naive values are UTC)."""
    return aware(t).astimezone(SHANGHAI).date()


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in China (at ``now`` when given)."""
    return beijing_date(now or utcnow())


def beijing_day_start(d: date) -> datetime:
    """00:00 Beijing time of ``d``, as an aware datetime."""
    return datetime.combine(d, time.min, SHANGHAI)


def beijing_text(t: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time, for people (reports, the HR console)."""
    return aware(t).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
