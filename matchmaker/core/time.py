"""UTC time (every stored timestamp is UTC and timezone-aware in Python) and the programme's calendar clock."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


#: the programme's clock: calendar dates (deadlines, expiry days) are days in China
PROGRAMME_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def programme_today() -> date:
    """Today in the programme's time zone (deadlines are calendar dates in China)."""
    return datetime.now(PROGRAMME_TZ).date()


def end_of_programme_day(day: date) -> datetime:
    """The last second of ``day`` in Beijing time, as UTC (a deadline chosen as a date)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=PROGRAMME_TZ).astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores UTC; returns aware datetimes even on SQLite, which drops the offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use matchmaker.core.time.utcnow()")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
