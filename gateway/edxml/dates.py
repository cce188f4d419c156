"""Dates and timestamps: tolerant on input, canonical on output (edxml.md §8).

Canonical: dates ``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss`` (local time, no zone). Accepted on
input: those, ``dd/MM/yyyy`` (Bkav Tây Ninh sample), ``dd/MM/yyyy HH:mm:ss`` (legacy status),
``yyyy-MM-dd`` and ISO-8601 with or without ``T``/fraction/zone. A zone, when present, is converted to
Vietnam time (UTC+7), because the wire format has none and every producer means Vietnam local time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from gateway.errors import EdxmlValueError

VN_OFFSET = timedelta(hours=7)
VN_TZ = timezone(VN_OFFSET, "ICT")
DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"

_YMD = re.compile(r"^(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})$", re.ASCII)
_DMY = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4})$", re.ASCII)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?$", re.ASCII)
_ZONE = re.compile(r"(Z|[+\-]\d{2}:?\d{2})$", re.ASCII)


def _date_part(text: str) -> date | None:
    m = _YMD.match(text)
    if m:
        y, mo, d = (int(x) for x in m.groups())
    else:
        m = _DMY.match(text)
        if not m:
            return None
        d, mo, y = (int(x) for x in m.groups())
    try:
        return date(y, mo, d)
    except ValueError:
        return None


def parse_date(text: str, path: str | None = None) -> date:
    """Read a date in any tolerated form; a trailing time (``2023/03/14 17:19:16``) is dropped."""
    raw = text.strip()
    head = re.split(r"[ T]", raw, maxsplit=1)[0]
    value = _date_part(head)
    if value is None:
        raise EdxmlValueError(f"{raw!r} is not a date (expected yyyy/MM/dd)", path=path)
    return value


def parse_timestamp(text: str, path: str | None = None) -> datetime:
    """Read a timestamp in any tolerated form as a naive Vietnam-local ``datetime``."""
    raw = text.strip()
    body, zone = raw, None
    zm = _ZONE.search(raw)
    if zm and ("T" in raw or " " in raw):
        zone, body = zm.group(1), raw[: zm.start()].rstrip()
    parts = re.split(r"[ T]", body, maxsplit=1)
    day = _date_part(parts[0])
    if day is None:
        raise EdxmlValueError(f"{raw!r} is not a timestamp (expected yyyy/MM/dd HH:mm:ss)", path=path)
    hh = mm = ss = 0
    if len(parts) == 2:
        tm = _TIME.match(parts[1].strip())
        if not tm:
            raise EdxmlValueError(f"{raw!r} is not a timestamp (expected yyyy/MM/dd HH:mm:ss)", path=path)
        hh, mm = int(tm.group(1)), int(tm.group(2))
        ss = int(tm.group(3) or 0)
    try:
        value = datetime(day.year, day.month, day.day, hh, mm, ss)
    except ValueError:
        raise EdxmlValueError(f"{raw!r} is not a valid time of day", path=path) from None
    if zone is not None:
        offset = _offset(zone, raw, path)
        try:
            value = (value - offset + VN_OFFSET).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in Vietnam: no such datetime
            raise EdxmlValueError(f"{raw!r} is outside the representable years in Vietnam time", path=path) from None
    return value


def _offset(zone: str, raw: str, path: str | None) -> timedelta:
    """The UTC offset of ``Z``/``±HH:MM``/``±HHMM``: hours 0–23 and minutes 0–59 (ISO 8601), else EDXML.VALUE
    (issue 10: ``+57:00`` reached ``datetime`` and ended in a 500)."""
    if zone == "Z":
        return timedelta(0)
    hours, minutes = int(zone[1:3]), int(zone[-2:])
    if hours > 23 or minutes > 59:
        raise EdxmlValueError(f"{raw!r} has an impossible UTC offset {zone}", path=path)
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


def format_date(value: date) -> str:
    """Canonical ``yyyy/MM/dd``."""
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def format_timestamp(value: datetime) -> str:
    """Canonical ``yyyy/MM/dd HH:mm:ss`` (seconds precision, as on the wire)."""
    if value.tzinfo is not None:
        value = value.astimezone(VN_TZ).replace(tzinfo=None)
    return f"{format_date(value)} {value.hour:02d}:{value.minute:02d}:{value.second:02d}"
