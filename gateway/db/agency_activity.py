"""When each agency last did something at the gateway (``store.agency_activity``), for the console's agency tree
(issue 12 item 1, "last activity"): an agency that has stopped sending and stopped collecting its mailbox is the
first thing an operator of an axis looks for, and no report figure shows it (a quiet agency has no late rows).

What counts as activity, each from the row that records it:

* ``sent`` — a package it sent was taken in (``documents.received_at`` by sender; the gateway's own status
  packages, sent in its name, do not count);
* ``fetched`` / ``acknowledged`` — it fetched or acknowledged a delivery from its mailbox;
* ``delivered`` — its own receiver (a push channel) accepted a delivery (``last_attempt_at`` of a delivered row).

One grouped query per kind over the whole history (the documents' one uses the ``(sender, received_at)`` index);
the console asks once per page view, far less work than the period's report on the same page.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from gateway.db import tables as t
from gateway.db.connections import Repository

_d, _v = t.documents, t.deliveries


class AgencyActivityRepository(Repository):
    """``store.agency_activity``."""

    def last_activity(self, organ_ids: Collection[str] | None = None) -> dict[str, tuple[datetime, str]]:
        """Per agency (of ``organ_ids``, or every one with any), its latest activity: (when, kind)."""
        queries = {
            "sent": _latest(_d.c.sender, _d.c.received_at, _d.c.emitted_by_gateway.is_(False)),
            "fetched": _latest(_v.c.recipient, _v.c.fetched_at, _v.c.fetched_at.is_not(None)),
            "acknowledged": _latest(_v.c.recipient, _v.c.acknowledged_at, _v.c.acknowledged_at.is_not(None)),
            "delivered": _latest(
                _v.c.recipient, _v.c.last_attempt_at, _v.c.state == "delivered", _v.c.last_attempt_at.is_not(None)
            ),
        }
        ids = sorted(set(organ_ids)) if organ_ids is not None else None
        if ids == []:
            return {}
        out: dict[str, tuple[datetime, str]] = {}
        with self._db.read() as conn:
            for kind, query in queries.items():
                if ids is not None:
                    query = query.where(query.selected_columns[0].in_(ids))
                for organ, at in conn.execute(query):
                    if at is not None and (organ not in out or at > out[organ][0]):
                        out[organ] = (at, kind)
        return out


def _latest(who: Any, when: Any, *where: ColumnElement[bool]) -> Select[Any]:
    return select(who, func.max(when)).where(*where).group_by(who)


__all__ = ["AgencyActivityRepository"]
