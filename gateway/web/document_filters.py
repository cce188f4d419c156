"""Reading a document list's filters from a query string: the one reading shared by ``GET /admin/v1/documents``
and the console's Documents page (and its CSV export), so the same URL parameters select the same documents.

Periods are LOCAL dates (Vietnam time, as people read them): ``from=2026-03-01&to=2026-03-31`` is
[1 March 00:00, 1 April 00:00) +07. Every bad value is a ``RequestError`` naming its parameter (REQUEST.INVALID:
HTTP 400 at the JSON edge, the page again with the message at the console); flags are checked here with the
service's own :func:`~gateway.services.timeline.parse_flags`, so a mistyped flag is refused before any query runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Final

from werkzeug.datastructures import MultiDict

from gateway.errors import RequestError
from gateway.services.api import DeliveryState
from gateway.services.timeline import parse_flags
from gateway.services.tracking_api import MAX_PAGE, DocumentQuery
from gateway.tracking.calendar import local_start

#: The largest ``offset`` a list takes (a deeper page is reached by cursor, which costs nothing extra).
MAX_OFFSET: Final = 2**31 - 1
#: Documents per page when the caller does not say.
DEFAULT_PAGE: Final = 50
KINDS: Final = ("edoc", "status")
STATES: Final = tuple(s.value for s in DeliveryState)


def int_value(args: Mapping[str, str], name: str, default: int | None, *, low: int, high: int) -> int | None:
    """An integer parameter within [low, high]; REQUEST.INVALID otherwise."""
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(f"{name} must be an integer", parameter=name) from None
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}", parameter=name)
    return value


def date_value(args: Mapping[str, str], name: str) -> date | None:
    """A ``YYYY-MM-DD`` parameter (a local calendar day); REQUEST.INVALID otherwise."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RequestError(f"{name} must be a date YYYY-MM-DD", parameter=name) from None


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = (args.get(name) or "").strip() or None
    if value is not None and value not in allowed:
        raise RequestError(f"{name} must be one of {', '.join(allowed)}", parameter=name)
    return value


def document_query(args: MultiDict[str, str], *, default_limit: int = DEFAULT_PAGE) -> DocumentQuery:
    """The :class:`DocumentQuery` the parameters ``from``, ``to``, ``sender``, ``recipient``, ``kind``, ``state``,
    ``flag`` (repeated), ``text``, ``cursor``, ``limit`` and ``offset`` describe (every one optional)."""
    first, last = date_value(args, "from"), date_value(args, "to")
    if first is not None and last is not None and last < first:
        raise RequestError(f"the period ends ({last}) before it starts ({first})", parameter="to")
    flags = tuple(f.strip() for f in args.getlist("flag") if f.strip())
    parse_flags(flags)
    return DocumentQuery(
        since=local_start(first) if first else None,
        until=local_start(last + timedelta(days=1)) if last else None,
        sender=(args.get("sender") or "").strip() or None,
        recipient=(args.get("recipient") or "").strip() or None,
        kind=_choice(args, "kind", KINDS),
        state=_choice(args, "state", STATES),
        flags=flags,
        text=(args.get("text") or "").strip() or None,
        cursor=args.get("cursor") or None,
        limit=int_value(args, "limit", default_limit, low=1, high=MAX_PAGE) or default_limit,
        offset=int_value(args, "offset", 0, low=0, high=MAX_OFFSET) or 0,
    )


__all__ = ["DEFAULT_PAGE", "KINDS", "MAX_OFFSET", "STATES", "date_value", "document_query", "int_value"]
