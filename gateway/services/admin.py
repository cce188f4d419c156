"""What the admin API (``/admin/v1``) is built on: the use cases bundled for one store, and the agency overview.

:class:`AdminServices` is composed once per process by the entry point (:mod:`gateway.web.wsgi`) and handed to the
edge, which never holds the store. :meth:`AdminTracking.agencies` is the console's agency table: every registered
agency in the caller's scope with its registry facts and its activity over a period — each figure read from the
Decision-28 report's own row for that agency (``Tracking.report``) and from ``Tracking.open_judgements``, so
"late" and "not taken" keep the one definition of :mod:`gateway.tracking.facts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.config import Settings
from gateway.db import Store
from gateway.services.admin_auth import AdminAuth
from gateway.services.delivery_admin import DeliveryAdmin
from gateway.services.tracking import Tracking
from gateway.services.tracking_api import DocumentsApi
from gateway.tracking.calendar import show
from gateway.tracking.report import Report
from gateway.tracking.rules import Rule
from gateway.tracking.settings import rules_from


@dataclass(frozen=True)
class AgencyActivity:
    """The agency table of ``GET /admin/v1/agencies``."""

    since: datetime
    until: datetime
    as_of: datetime
    agencies: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "as_of": self.as_of.isoformat(),
            "as_of_local": show(self.as_of),
            "agencies": self.agencies,
        }


class AdminTracking:
    """The tracking reads of the admin API: the report as is, and the agency overview built on it."""

    def __init__(self, tracking: Tracking) -> None:
        self._tracking = tracking

    def visible(self, scope: str | None) -> set[str] | None:
        return self._tracking.visible(scope)

    def report(
        self,
        since: datetime,
        until: datetime,
        *,
        agency: str | None = None,
        depth: int | None = None,
        as_of: datetime | None = None,
        scope: str | None = None,
    ) -> Report:
        return self._tracking.report(since, until, agency=agency, depth=depth, as_of=as_of, scope=scope)

    def agencies(
        self, since: datetime, until: datetime, *, as_of: datetime | None = None, scope: str | None = None
    ) -> AgencyActivity:
        """Every registered agency in ``scope`` (the whole registry without one), in tree order, with its own
        figures for documents taken in during [since, until) and the rules open for it at ``as_of``."""
        report = self._tracking.report(since, until, as_of=as_of, scope=scope)
        registry = {a.organ_id: a for a in self._tracking.store.registry.list_agencies()}
        still_open: dict[str, Counter[str]] = {}
        for a, rule in self._tracking.open_judgements(since=since, as_of=report.as_of, scope=scope):
            if a.facts.document.received_at < until:
                still_open.setdefault(a.facts.recipient, Counter())[rule.value] += 1
        rows = []
        for row in report.rows:
            record = registry.get(row.unit.organ_id)
            own = row.own.to_dict()
            opened = still_open.get(row.unit.organ_id, Counter())
            rows.append(
                {
                    "organ_id": row.unit.organ_id,
                    "name": row.unit.name,
                    "parent": row.unit.parent,
                    "level": row.unit.level,
                    "depth": row.depth,
                    "channel": record.channel if record else None,
                    "active": record.active if record else None,
                    "sent": own["sent"],
                    "received": own["received"],
                    "dead_letters": own["dead_letters"],
                    "breached": {rule: share["count"] for rule, share in own["rules"].items()},
                    # The same counts with their denominators and percentages (a rate needs both: issue 12).
                    "rules": own["rules"],
                    "signed": own["signatures"]["valid"],
                    "open": {r.value: opened.get(r.value, 0) for r in Rule if r is not Rule.LATE_SENDING},
                }
            )
        return AgencyActivity(report.since, report.until, report.as_of, rows)


@dataclass(frozen=True)
class AdminServices:
    """Everything the admin edge calls, over one store."""

    auth: AdminAuth
    deliveries: DeliveryAdmin
    tracking: AdminTracking
    documents: DocumentsApi | None

    @classmethod
    def over(cls, store: Store, settings: Settings) -> AdminServices:
        tracking = Tracking(store, rules_from(settings))
        return cls(
            auth=AdminAuth(store, bootstrap_token=settings.admin_token),
            deliveries=DeliveryAdmin(store, tracking.visible),
            tracking=AdminTracking(tracking),
            documents=_documents(tracking),
        )


def _documents(tracking: Tracking) -> DocumentsApi | None:
    """The document lists and stories (:class:`gateway.services.timeline.Timelines`), when this build has them."""
    try:
        from gateway.services.timeline import Timelines  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - a build without the timeline service: the routes answer 503
        return None
    documents: DocumentsApi = Timelines(tracking.store, tracking.rules)
    return documents


__all__ = ["AdminServices", "AdminTracking", "AgencyActivity"]
