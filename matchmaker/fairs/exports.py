"""Schedule exports: CSV for Excel (UTF-8 with BOM, Beijing time like the pages) and iCalendar (RFC 5545,
written by hand, UTC)."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone

from flask_babel import gettext as _

from ..core.time import PROGRAMME_TZ
from .operations import capability_person, need_person

ICS_PRODID = "-//Matchmaker//Docking fairs//ZH"


def schedule_csv(fair, meetings) -> bytes:
    """One row per meeting; the BOM makes Excel read the file as UTF-8 (Chinese shows correctly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_("Slot start (Beijing time)"), _("Slot end (Beijing time)"), _("Table"), _("Need"), _("Firm"),
                     _("Capability"), _("Expert")])
    for m in meetings:
        need, cap = m.request.need, m.request.capability
        expert = capability_person(cap)
        writer.writerow([_fmt(m.starts_at), _fmt(m.ends_at), m.table_no, _cell(need.title),
                         _cell(need.organization.name if need.organization else ""), _cell(cap.title),
                         _cell(expert.name if expert else "")])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _fmt(dt: datetime) -> str:
    """Beijing time, the clock of the pages and of the fair itself."""
    return dt.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%d %H:%M")


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ is prefixed with a quote."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- iCalendar ----------------------------------------------------------------------------------------------

def ics_escape(text: str) -> str:
    return (text or "").replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,") \
        .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def ics_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> str:
    """Fold a content line to at most 75 octets per line (RFC 5545 §3.1), never splitting a UTF-8 character."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts, current, limit = [], b"", 75
    for ch in line:
        b = ch.encode("utf-8")
        if len(current) + len(b) > limit:
            parts.append(current)
            current, limit = b"", 74  # continuation lines start with one space
        current += b
    parts.append(current)
    return "\r\n ".join(p.decode("utf-8") for p in parts)


def calendar(fair, meetings, host: str, now: datetime | None = None, name: str | None = None) -> bytes:
    now = now or datetime.now(timezone.utc)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{ICS_PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{ics_escape(name or fair.title)}"]
    safe_host = re.sub(r"[^A-Za-z0-9.-]", "", host or "") or "matchmaker"
    for m in meetings:
        need, cap = m.request.need, m.request.capability
        firm = need.organization.name if need.organization else ""
        expert = capability_person(cap)
        contact = need_person(need)
        summary = _("Meeting: %(need)s × %(cap)s", need=need.title, cap=cap.title)
        description = "\n".join([
            _("Fair: %(title)s", title=fair.title),
            _("Table %(n)s", n=m.table_no),
            _("Need: %(title)s (%(firm)s, %(person)s)", title=need.title, firm=firm,
              person=contact.name if contact else ""),
            _("Capability: %(title)s (%(person)s)", title=cap.title, person=expert.name if expert else ""),
        ])
        location = fair.location
        if fair.mode == "onsite":
            location = _("%(place)s, table %(n)s", place=fair.place, n=m.table_no)
        lines += [
            "BEGIN:VEVENT",
            f"UID:fair-{fair.id}-meeting-{m.request_id}@{safe_host}",
            f"DTSTAMP:{ics_time(now)}",
            f"DTSTART:{ics_time(m.starts_at)}",
            f"DTEND:{ics_time(m.ends_at)}",
            f"SUMMARY:{ics_escape(summary)}",
            f"DESCRIPTION:{ics_escape(description)}",
            f"LOCATION:{ics_escape(location)}",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")


def safe_filename(stem: str, ext: str) -> str:
    """An ASCII filename for Content-Disposition (no quotes, slashes or control characters)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "schedule"
    return f"{stem[:60]}.{ext}"
