"""Input parsing for the pairing forms (the rules themselves live in ``operations``)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from flask_babel import gettext as _

from ..core.workflow import WorkflowError

#: the programme runs on China Standard Time; forms without an offset are read as UTC+8
DEFAULT_OFFSET_MINUTES = 8 * 60
#: dates outside these years are typing mistakes (and 0001/9999 overflow when moved to UTC)
FIRST_YEAR, LAST_YEAR = 2000, 2100


def year_range_message() -> str:
    return _("Please enter a date between the years %(first)s and %(last)s.", first=FIRST_YEAR, last=LAST_YEAR)


def parse_meeting_time(value: str, tz_offset: str | None = None) -> datetime:
    """'2026-12-01T10:00' (a datetime-local field) in the given offset (minutes east of UTC) → aware UTC."""
    try:
        local = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise WorkflowError(_("Please enter the meeting date and time."), 400) from None
    try:
        offset = int(tz_offset) if tz_offset not in (None, "") else DEFAULT_OFFSET_MINUTES
    except ValueError:
        raise WorkflowError(_("Unknown time zone."), 400) from None
    if not -14 * 60 <= offset <= 14 * 60:
        raise WorkflowError(_("Unknown time zone."), 400)
    if not FIRST_YEAR <= local.year <= LAST_YEAR:
        raise WorkflowError(year_range_message(), 400)
    if local.tzinfo is None:
        local = local.replace(tzinfo=timezone(timedelta(minutes=offset)))
    try:
        return local.astimezone(timezone.utc)
    except OverflowError:  # pragma: no cover - the year range above keeps clear of datetime's limits
        raise WorkflowError(year_range_message(), 400) from None


def parse_score(value: str | None) -> float | None:
    """An engine score posted back by a coordinator's page: a finite number, or None when absent."""
    if value in (None, ""):
        return None
    try:
        score = float(value)
    except ValueError:
        raise WorkflowError(_("The score must be a finite number."), 400) from None
    if not math.isfinite(score):
        raise WorkflowError(_("The score must be a finite number."), 400)
    return score
