"""Pages of the operators' lists (issue 11 item 7): what a caller asks for (:class:`PageRequest`: ``limit``,
``offset``, an opaque ``cursor``), what it gets (:class:`Page`: the items, ``total``, ``next_cursor``), and the
cursor codec. Every list of the CLI and the admin API pages through this module and
:func:`gateway.db.paging.keyset_page`, so they all page, count and refuse alike.

A cursor is the sort key of the last row of a page (``created_at`` and ``delivery_id`` for deliveries), tagged
with the name of its list, base64url-encoded JSON. It is opaque to callers but not secret: a forged one can only
position a read of rows the caller may see anyway. One that does not decode, or belongs to another list, is
``REQUEST.CURSOR`` (HTTP 400, CLI exit 2) — never silently the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Protocol, TypeVar

from gateway.errors import CursorError, RequestError

#: Most rows one page returns (a larger ``limit`` is refused, not cut: the caller pages on).
MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100

T = TypeVar("T")
R = TypeVar("R")

#: Types a key value may have, and their tags in the cursor (JSON has no time type).
_DATETIME, _PLAIN = "t", "v"


@dataclass(frozen=True)
class PageRequest:
    """Which page: at most ``limit`` rows, after ``cursor`` (a previous page's ``next_cursor``), ``offset`` rows
    skipped (counted from the cursor's position when both are given)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise RequestError(f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
        if self.offset < 0:
            raise RequestError("offset must not be negative", parameter="offset")

    def after(self, listing: str, size: int) -> tuple[Any, ...] | None:
        """The key (``size`` values) to read after, from the cursor (None: from the start); REQUEST.CURSOR if it
        is not one of ``listing``'s."""
        key = decode_cursor(listing, self.cursor)
        if key is not None and len(key) != size:
            raise CursorError(f"the cursor does not fit the list {listing!r}: start again without it")
        return key


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: ``items``, how many rows the filters match in all, and the cursor of the next page
    (None: nothing follows)."""

    items: tuple[T, ...]
    total: int
    next_cursor: str | None

    def to_dict(self, item: Callable[[T], Any] | None = None) -> dict[str, Any]:
        """``{"items": […], "total": N, "next_cursor": "…" | null}`` — the admin API's and ``--json``'s shape."""
        convert = item or _to_dict
        return {"items": [convert(i) for i in self.items], "total": self.total, "next_cursor": self.next_cursor}

    def summary(self, noun: str = "row(s)") -> str:
        """The line a CLI list ends with, so nothing is cut without saying so."""
        line = f"{len(self.items)} of {self.total} {noun}"
        return line + (f"; more: use --cursor {self.next_cursor}" if self.next_cursor else "")


class KeyedRows(Protocol[R]):
    """What :func:`gateway.db.paging.keyset_page` answers (rows of any record type, converted by the store)."""

    @property
    def rows(self) -> Sequence[R]: ...

    @property
    def total(self) -> int: ...

    @property
    def next_key(self) -> tuple[Any, ...] | None: ...


def page_of(listing: str, found: KeyedRows[R], convert: Callable[[R], T]) -> Page[T]:
    """A store's keyed page as a :class:`Page` of ``convert``-ed items, its next key encoded for ``listing``."""
    cursor = encode_cursor(listing, found.next_key) if found.next_key is not None else None
    return Page(items=tuple(convert(r) for r in found.rows), total=found.total, next_cursor=cursor)


def encode_cursor(listing: str, key: Iterable[Any]) -> str:
    """The opaque cursor of a position in ``listing``."""
    values = [[_DATETIME, v.isoformat()] if isinstance(v, datetime) else [_PLAIN, v] for v in key]
    raw = json.dumps([listing, values], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None) -> tuple[Any, ...] | None:
    """The key a cursor of ``listing`` carries; None for no cursor; REQUEST.CURSOR for anything else."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, values = json.loads(raw)
        key = tuple(_value(tag, v) for tag, v in values)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorError("the cursor is not one this gateway handed out: start again without it") from None
    if name != listing:
        raise CursorError(f"the cursor belongs to another list ({str(name)[:40]!r}), not to {listing!r}")
    if not key:
        raise CursorError("the cursor is empty: start again without it")
    return key


def _value(tag: object, value: object) -> Any:
    if tag == _DATETIME and isinstance(value, str):
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError("a cursor time without offset")
        return when
    if tag == _PLAIN and isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise ValueError("not a key value")


def _to_dict(item: Any) -> Any:
    return item.to_dict() if hasattr(item, "to_dict") else item


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "KeyedRows",
    "Page",
    "PageRequest",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]
