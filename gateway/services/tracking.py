"""Tracking use cases: the Decision-28 report, the agency tree it is rolled up on, operator scopes, and the
open judgements that alerts and gauges show — for the CLI, the admin API, the alert scheduler and ``/metrics``.

Every figure comes from :func:`gateway.tracking.facts.assess_document` / :func:`assess_delivery` over rows the
store streams (:mod:`gateway.db.tracking`); nothing here defines "late" again. A *scope* is an OrganId whose
registry subtree (by ``parent`` links) a caller may see: a department's token sees only its units.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.db import Store
from gateway.errors import AccessError, NotFoundError, RequestError
from gateway.tracking.calendar import local_start
from gateway.tracking.facts import Assessment, assess_delivery, assess_document
from gateway.tracking.report import Report, ReportBuilder, Unit
from gateway.tracking.rules import Rule, TimingRules

#: The longest period one report covers: a year and a leap day, with room for a ``--to`` inclusive end.
MAX_PERIOD = timedelta(days=367)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def local_period(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) in Vietnam time, as UTC: how a report's ``--from``/``--to`` dates read."""
    if last < first:
        raise RequestError(f"the period ends ({last}) before it starts ({first})")
    return local_start(first), local_start(last + timedelta(days=1))


@dataclass(frozen=True)
class AgencyTree:
    """The registry as a tree (``parent`` links), for scopes and roll-ups."""

    units: dict[str, Unit]
    children: dict[str, list[str]]

    @classmethod
    def of(cls, units: list[Unit]) -> AgencyTree:
        known = {u.organ_id: u for u in units}
        children: dict[str, list[str]] = {}
        for u in units:
            if u.parent in known and u.parent != u.organ_id:
                children.setdefault(u.parent, []).append(u.organ_id)
        return cls(known, children)

    def subtree(self, organ_id: str) -> set[str]:
        """``organ_id`` and every registered unit below it."""
        seen, todo = set(), [organ_id]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.children.get(current, ()))
        return seen


class Tracking:
    """The report, scopes and open judgements over one store and one set of rules."""

    def __init__(self, store: Store, rules: TimingRules, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock

    def tree(self) -> AgencyTree:
        return AgencyTree.of([Unit(a.organ_id, a.name, a.parent, a.level) for a in self.store.registry.list_agencies()])

    def visible(self, scope: str | None, tree: AgencyTree | None = None) -> set[str] | None:
        """The OrganIds a caller scoped to ``scope`` may see (None: everything)."""
        if scope is None:
            return None
        tree = tree or self.tree()
        if scope not in tree.units:
            raise AccessError(f"the scope {scope} is not a registered agency")
        return tree.subtree(scope)

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
        """The Decision-28 report for [since, until), whole (or ``agency``'s subtree), judged at ``as_of``."""
        if until - since > MAX_PERIOD:
            raise RequestError("a report covers at most one year")
        tree = self.tree()
        visible = self.visible(scope, tree)
        root = agency if agency is not None else scope
        if root is not None and root not in tree.units:
            raise NotFoundError(f"agency {root} is not registered")
        if visible is not None and root not in visible:
            raise AccessError(f"agency {root} is outside the caller's scope ({scope})")
        members = tree.subtree(root) if root is not None else None
        as_of = as_of or self.clock()
        builder = ReportBuilder(tree.units.values())
        for doc in self.store.tracking.documents(since, until, senders=members):
            builder.document(doc, assess_document(doc, self.rules))
        for facts in self.store.tracking.deliveries(since, until, recipients=members):
            builder.delivery(assess_delivery(facts, self.rules, as_of))
        for organ_id, _system, code, count in self.store.tracking.refusals(since, until, organ_ids=members):
            builder.refusal(organ_id, code, count)
        return builder.build(since=since, until=until, as_of=as_of, rules=self.rules_summary(), root=root, depth=depth)

    def open_judgements(
        self, *, since: datetime | None = None, as_of: datetime | None = None, scope: str | None = None
    ) -> Iterator[tuple[Assessment, Rule]]:
        """Every (delivery, rule) open at ``as_of``: deadline passed, event still missing (alerts, gauges)."""
        as_of = as_of or self.clock()
        since = since or as_of - timedelta(days=90)
        visible = self.visible(scope)
        for facts in self.store.tracking.deliveries(since, as_of, recipients=visible, waiting_only=True):
            a = assess_delivery(facts, self.rules, as_of)
            for rule, judgement in a.judgements.items():
                if judgement.open:
                    yield a, rule

    def open_counts(self, *, as_of: datetime | None = None) -> dict[str, int]:
        """How many deliveries each rule is open for now (the gauges of ``/metrics``)."""
        counts = Counter(rule.value for _a, rule in self.open_judgements(as_of=as_of))
        return {rule.value: counts.get(rule.value, 0) for rule in Rule if rule is not Rule.LATE_SENDING}

    def rules_summary(self) -> dict[str, Any]:
        r = self.rules
        return {
            "send_morning_end_hour": r.send_morning_end_hour,
            "urgent_send_hours": list(r.urgent_send_hours),
            "receipt_minutes": r.receipt_minutes,
            "not_taken_minutes": r.not_taken_minutes,
            "register_working_days": r.register_working_days,
            "extra_days_off": sorted(d.isoformat() for d in r.calendar.extra_days_off),
            "make_up_working_days": sorted(d.isoformat() for d in r.calendar.make_up_working_days),
            "time_zone": "Asia/Ho_Chi_Minh",
        }


__all__ = ["MAX_PERIOD", "AgencyTree", "Tracking", "local_period"]
