"""Input parsing for the pairing forms (the rules themselves live in ``operations``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask_babel import gettext as _

from ..core.workflow import WorkflowError

#: the programme runs on China Standard Time; forms without an offset are read as UTC+8
DEFAULT_OFFSET_MINUTES = 8 * 60


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
    if local.tzinfo is None:
        local = local.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return local.astimezone(timezone.utc)
