"""The Decision-28 report: figures per agency, rolled up through the hierarchy (level 1 ← 2 ← 3 ← 4).

Built only from :func:`gateway.tracking.facts.assess_document` / :func:`assess_delivery` results, so each figure
has the one definition those give. A report is a pure function of the stored rows, the rules and ``as_of``: it
keeps no counters, so running it twice gives the same figures (the Bkav daily counters double-count on re-runs).

Who a figure belongs to: *sent*, *signed* and *late sending* to the sending agency; every delivery figure
(*received*, *late receipt*, *not taken*, *not registered*, *overdue*, *dead letters*, latencies, feedback) to the
receiving agency; refusals to the agency the refused package claimed to come from. Agencies not in the registry
(other axes' units) are added up in one "external" row, so the grand total is complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.tracking.facts import (
    FEEDBACK_BUCKETS,
    Assessment,
    DocumentFacts,
    Judgement,
    feedback_bucket,
    percentile,
)
from gateway.tracking.rules import Rule

#: Signature states as the report groups them (``SignatureState`` values; anything else is "other").
SIGNATURE_GROUPS = ("valid", "legacy-placeholder", "unsigned")
DELIVERY_RULES = (Rule.LATE_RECEIPT, Rule.NOT_TAKEN, Rule.NOT_REGISTERED, Rule.OVERDUE)
LATENCIES = ("t01", "t03", "t06")
EXTERNAL = "(external)"


@dataclass
class Figures:
    """The figures of one agency, or of a subtree (sums; latencies and units merged)."""

    sent: int = 0
    signatures: Counter[str] = field(default_factory=Counter)
    send_judged: int = 0
    late_sending: int = 0
    received: int = 0
    #: Deliveries each delivery rule applies to, and how many breached it.
    judged: Counter[str] = field(default_factory=Counter)
    breached: Counter[str] = field(default_factory=Counter)
    dead: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LATENCIES})
    #: Receiving unit → distinct status codes it reported itself (for the feedback buckets).
    feedback: dict[str, set[str]] = field(default_factory=dict)
    #: Units with traffic (sent or received) → their level.
    active: dict[str, int | None] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)

    def add_document(self, doc: DocumentFacts, sending: Judgement | None, level: int | None) -> None:
        self.sent += 1
        state = doc.signature_state if doc.signature_state in SIGNATURE_GROUPS else "other"
        self.signatures[state] += 1
        if sending is not None:
            self.send_judged += 1
            self.late_sending += sending.breached
        self.active[doc.sender] = level

    def add_delivery(self, a: Assessment, level: int | None) -> None:
        """Called once per delivery of the period (a national year: ~10^6 times), hence written out flat."""
        f = a.facts
        self.received += 1
        judged, breached = self.judged, self.breached
        for rule, j in a.judgements.items():  # only the rules that apply; Rule is a str, so keys are the names
            judged[rule] += 1
            if j.breached:
                breached[rule] += 1
        if f.state == "dead":
            self.dead += 1
        latencies = self.latencies
        if a.t01 is not None:
            latencies["t01"].append(a.t01)
        if a.t03 is not None:
            latencies["t03"].append(a.t03)
        if a.t06 is not None:
            latencies["t06"].append(a.t06)
        codes = self.feedback.get(f.recipient)
        if codes is None:
            codes = self.feedback[f.recipient] = set()
        if f.reported:
            codes |= f.reported
        self.active[f.recipient] = level

    def merge(self, other: Figures) -> None:
        self.sent += other.sent
        self.signatures.update(other.signatures)
        self.send_judged += other.send_judged
        self.late_sending += other.late_sending
        self.received += other.received
        self.judged.update(other.judged)
        self.breached.update(other.breached)
        self.dead += other.dead
        for name in LATENCIES:
            self.latencies[name].extend(other.latencies[name])
        for unit, codes in other.feedback.items():
            self.feedback.setdefault(unit, set()).update(codes)
        self.active.update(other.active)
        self.refusals.update(other.refusals)

    def feedback_buckets(self) -> dict[str, int]:
        counts = Counter(feedback_bucket(len(codes)) for codes in self.feedback.values())
        return {b: counts.get(b, 0) for b in FEEDBACK_BUCKETS}

    def active_by_level(self) -> dict[str, int]:
        counts = Counter(level for level in self.active.values() if level in (2, 3, 4))
        return {str(level): counts.get(level, 0) for level in (2, 3, 4)}

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON values; every percentage next to its count and denominator."""
        rules: dict[str, Any] = {
            Rule.LATE_SENDING.value: _share(self.late_sending, self.send_judged),
        }
        for rule in DELIVERY_RULES:
            rules[rule.value] = _share(self.breached[rule.value], self.judged[rule.value])
        return {
            "sent": self.sent,
            "received": self.received,
            "signatures": {s: _share(self.signatures[s], self.sent) for s in (*SIGNATURE_GROUPS, "other")},
            "rules": rules,
            "dead_letters": self.dead,
            "latency_seconds": {
                name: {
                    "count": len(values),
                    "median": percentile(values, 0.5),
                    "p90": percentile(values, 0.9),
                }
                for name, values in self.latencies.items()
            },
            "feedback_units": self.feedback_buckets(),
            "active_units_by_level": self.active_by_level(),
            "refusals": dict(sorted(self.refusals.items())),
        }


def _share(count: int, of: int) -> dict[str, Any]:
    return {"count": count, "of": of, "percent": round(100.0 * count / of, 2) if of else None}


@dataclass(frozen=True)
class Unit:
    """A registered agency as the report needs it."""

    organ_id: str
    name: str
    parent: str | None
    level: int | None


@dataclass
class ReportRow:
    unit: Unit
    depth: int
    own: Figures
    total: Figures


@dataclass
class Report:
    since: datetime
    until: datetime
    as_of: datetime
    rows: list[ReportRow]
    external: Figures
    grand_total: Figures
    rules: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "as_of": self.as_of.isoformat(),
            "rules": dict(self.rules),
            "agencies": [
                {
                    "organ_id": r.unit.organ_id,
                    "name": r.unit.name,
                    "parent": r.unit.parent,
                    "level": r.unit.level,
                    "depth": r.depth,
                    "own": r.own.to_dict(),
                    "total": r.total.to_dict(),
                }
                for r in self.rows
            ],
            "external": self.external.to_dict(),
            "total": self.grand_total.to_dict(),
        }


class ReportBuilder:
    """Adds documents, deliveries and refusals to the right agency; :meth:`build` rolls them up."""

    def __init__(self, units: Iterable[Unit]) -> None:
        self.units = {u.organ_id: u for u in units}
        self.own: dict[str, Figures] = {}
        self.external = Figures()

    def _figures(self, organ_id: str) -> tuple[Figures, int | None]:
        unit = self.units.get(organ_id)
        if unit is None:
            return self.external, None
        figures = self.own.get(organ_id)
        if figures is None:
            figures = self.own[organ_id] = Figures()
        return figures, unit.level

    def document(self, doc: DocumentFacts, sending: Judgement | None) -> None:
        figures, level = self._figures(doc.sender)
        figures.add_document(doc, sending, level)

    def delivery(self, a: Assessment) -> None:
        figures, level = self._figures(a.facts.recipient)
        figures.add_delivery(a, level)

    def refusal(self, organ_id: str | None, code: str, count: int) -> None:
        figures, _ = self._figures(organ_id or EXTERNAL)
        figures.refusals[code] += count

    def build(
        self,
        *,
        since: datetime,
        until: datetime,
        as_of: datetime,
        rules: Mapping[str, Any],
        root: str | None = None,
        depth: int | None = None,
    ) -> Report:
        children: dict[str | None, list[str]] = {}
        for u in self.units.values():
            parent = u.parent if u.parent in self.units and u.parent != u.organ_id else None
            children.setdefault(parent, []).append(u.organ_id)
        rows: list[ReportRow] = []
        tops = [root] if root is not None else sorted(children.get(None, []))
        grand = Figures()
        for top in tops:
            grand.merge(self._walk(top, 0, depth, children, rows))
        if root is None:
            grand.merge(self.external)
        return Report(since, until, as_of, rows, self.external if root is None else Figures(), grand, rules)

    def _walk(
        self,
        organ_id: str,
        level: int,
        depth: int | None,
        children: Mapping[str | None, list[str]],
        rows: list[ReportRow],
    ) -> Figures:
        own = self.own.get(organ_id, Figures())
        row = ReportRow(self.units[organ_id], level, own, Figures())
        if depth is None or level <= depth:
            rows.append(row)
        row.total.merge(own)
        for child in sorted(children.get(organ_id, [])):
            row.total.merge(self._walk(child, level + 1, depth, children, rows))
        return row.total


__all__ = ["EXTERNAL", "Figures", "Report", "ReportBuilder", "ReportRow", "Unit"]
