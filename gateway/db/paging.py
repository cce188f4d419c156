"""Keyset paging, the one way every operators' list is read page by page (issue 11 item 7: ``deliveries list``
returned at most 1000 rows with exit 0 — a silent cap).

A list is ordered by its sort key plus a unique tie-breaker (``created_at DESC, delivery_id``); a page is the
``limit`` rows strictly after the key of the last row the caller saw (``after``), then ``offset`` rows skipped.
Paging by key is stable under inserts — a delivery queued while an operator pages lands before page one, never
inside a page being read, so no row is shown twice or skipped — and costs an index range scan however deep the
page, where a large ``OFFSET`` reads and drops every row before it. Every page also counts the rows the filters
match (``total``), so a caller always knows whether what it shows is everything.

The cursor that carries ``after`` between calls is encoded by :mod:`gateway.services.paging`; this module sees
only the key values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, RowMapping, Select, and_, func, or_, select

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class SortKey:
    """One column of a list's order: the column, its direction and its name in the result rows."""

    column: ColumnElement[Any]
    name: str
    descending: bool = False


@dataclass(frozen=True)
class RowPage(Generic[R]):
    """One page of rows, the number of rows the filters match, and the key to continue after (None: the end)."""

    rows: list[R]
    total: int
    next_key: tuple[Any, ...] | None

    def converted(self, convert: Callable[[R], T]) -> RowPage[T]:
        """The same page with every row converted (a result mapping into the repository's record)."""
        return RowPage([convert(r) for r in self.rows], self.total, self.next_key)


def count(conn: Connection, query: Select[Any]) -> int:
    """How many rows ``query`` (filtered, not limited) matches: the ``total`` of a page."""
    return int(conn.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one())


def keyset_page(
    conn: Connection,
    query: Select[Any],
    keys: Sequence[SortKey],
    *,
    after: Sequence[Any] | None,
    offset: int,
    limit: int,
    counted: Select[Any] | None = None,
) -> RowPage[RowMapping]:
    """Read one page of ``query`` (filtered, not yet ordered or limited) in the order of ``keys``.

    The last key must be unique (an id) so that the order is total and a key names one position. One row more
    than ``limit`` is read: whether another page exists is then known without an empty last page. ``counted`` is a
    cheaper query matching the same rows, for the total (the deliveries overview joins four tables for its
    columns, but its filters are on one: counting that one is 30 times faster).
    """
    if after is not None and len(after) != len(keys):
        raise ValueError(f"a key of {len(keys)} values was expected, not {len(after)}")
    total = count(conn, counted if counted is not None else query)
    if after is not None:
        query = query.where(beyond(keys, after))
    ordered = query.order_by(*(k.column.desc() if k.descending else k.column.asc() for k in keys))
    if offset:
        ordered = ordered.offset(offset)
    rows = list(conn.execute(ordered.limit(limit + 1)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    next_key = tuple(rows[-1][k.name] for k in keys) if more and rows else None
    return RowPage(rows=rows, total=total, next_key=next_key)


def beyond(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``: ``k1 ⋛ v1 OR (k1 = v1 AND k2 ⋛ v2) OR …``
    (a row-value comparison would not do: the directions may differ)."""
    branches = []
    for i, key in enumerate(keys):
        equal = [keys[j].column == values[j] for j in range(i)]
        beyond = key.column < values[i] if key.descending else key.column > values[i]
        branches.append(and_(*equal, beyond))
    return or_(*branches)


__all__ = ["RowPage", "SortKey", "beyond", "count", "keyset_page"]
