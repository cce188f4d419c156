"""The one definition of every tracking figure: what is known of a document and of each of its deliveries
(:class:`DocumentFacts`, :class:`DeliveryFacts`, read from the store), and what that means under the timing rules
at a moment (:func:`assess_document`, :func:`assess_delivery`).

The report, ``documents list/show``, the admin API, the alerts and the metrics all call these two functions;
none of them re-derives "late" on its own. Definitions (docs/tracking.md gives the same with examples):

* available to the recipient — a mailbox delivery when it is stored (the recipient may fetch it at once); a
  pushed one when the peer accepted it (``delivered``). A delivery not yet available is judged only by *not taken*.
* taken — acknowledged by the recipient's system (``done`` or ``fail``: it took the package and answered), or
  accepted by the push peer. Fetching without acknowledging is not taking (GetEdoc can fail half-way).
* a status time is when the gateway received it (UTC), not the package's own Timestamp (a clock we do not keep);
  the first 01 counts whether the receiver sent it or the gateway emitted it on its acknowledgement, because
  either way the sender was notified then. Feedback (how many distinct codes a unit reports) counts only what
  the unit itself sent.
* a rule is *breached* when its event happened after the deadline, or had not happened when the deadline passed;
  it is *open* while the deadline has passed and the event is still missing (what alerts and gauges show).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.tracking.rules import Rule, TimingRules

MAILBOX = "mailbox"
#: Delivery states in which the recipient's side has answered (``api.DeliveryState`` values).
_TAKEN_STATES = frozenset({"delivered", "failed"})
#: A refusal (02) or an accepted recall (15) ends the document's processing: no 06 is owed.
_NO_DUE = frozenset({"02", "15"})


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """An edoc as tracking sees it."""

    doc_id: str
    sender: str
    document_id: str
    received_at: datetime
    signature_state: str
    priority: int | None = None
    promulgation_date: date | None = None
    due_date: date | None = None
    code: str | None = None
    subject: str | None = None
    submitted_by: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """One document × recipient: transport times and the first time of each status code that matters."""

    delivery_id: str
    document: DocumentFacts
    recipient: str
    state: str
    created_at: datetime
    channel: str | None = None
    fetched_at: datetime | None = None
    acknowledged_at: datetime | None = None
    first_01: datetime | None = None
    first_02: datetime | None = None
    first_03: datetime | None = None
    first_06: datetime | None = None
    #: Distinct codes the recipient itself reported (gateway-emitted 01 excluded).
    reported: frozenset[str] = field(default_factory=frozenset)
    #: Every distinct code recorded for the pair (the report's "ended" checks read it).
    codes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Judgement:
    rule: Rule
    deadline: datetime
    done_at: datetime | None
    breached: bool
    open: bool

    @classmethod
    def of(cls, rule: Rule, deadline: datetime, done_at: datetime | None, as_of: datetime) -> Judgement:
        """The rule as it stood at ``as_of``: an event recorded later was not known then (a back-dated report
        judges as an operator would have seen it)."""
        if done_at is not None and done_at > as_of:
            done_at = None
        if done_at is not None:
            return cls(rule, deadline, done_at, breached=done_at > deadline, open=False)
        late = as_of > deadline
        return cls(rule, deadline, None, breached=late, open=late)


@dataclass(frozen=True, slots=True)
class Assessment:
    """A delivery judged at ``as_of``: derived times, latencies (seconds) and the applicable rules."""

    facts: DeliveryFacts
    as_of: datetime
    available_at: datetime | None
    taken_at: datetime | None
    registered_at: datetime | None
    judgements: dict[Rule, Judgement]
    t01: float | None
    t03: float | None
    t06: float | None

    @property
    def delivered(self) -> bool:
        return self.facts.state == "delivered"

    @property
    def dead(self) -> bool:
        return self.facts.state == "dead"

    def breached(self, rule: Rule) -> bool:
        j = self.judgements.get(rule)
        return j is not None and j.breached

    def open(self, rule: Rule) -> bool:
        j = self.judgements.get(rule)
        return j is not None and j.open


def assess_document(doc: DocumentFacts, rules: TimingRules) -> Judgement | None:
    """Late sending: None when the document names no promulgation date (not judged, not counted late)."""
    if doc.promulgation_date is None:
        return None
    deadline = rules.send_deadline(doc.promulgation_date, doc.priority)
    return Judgement.of(Rule.LATE_SENDING, deadline, doc.received_at, doc.received_at)


def available_at(f: DeliveryFacts) -> datetime | None:
    if f.channel in (MAILBOX, None):
        return f.created_at
    return f.acknowledged_at if f.state == "delivered" else None


def taken_at(f: DeliveryFacts) -> datetime | None:
    return f.acknowledged_at if f.state in _TAKEN_STATES else None


def assess_delivery(f: DeliveryFacts, rules: TimingRules, as_of: datetime) -> Assessment:
    available, taken = available_at(f), taken_at(f)
    registered = _earliest(f.first_02, f.first_03)
    doc = f.document
    judgements = {Rule.NOT_TAKEN: Judgement.of(Rule.NOT_TAKEN, rules.taken_deadline(f.created_at), taken, as_of)}
    if available is not None:
        deadline = rules.receipt_deadline(available)
        judgements[Rule.LATE_RECEIPT] = Judgement.of(Rule.LATE_RECEIPT, deadline, f.first_01, as_of)
        deadline = rules.register_deadline(available, doc.priority)
        judgements[Rule.NOT_REGISTERED] = Judgement.of(Rule.NOT_REGISTERED, deadline, registered, as_of)
    if doc.due_date is not None and not (f.codes & _NO_DUE):
        deadline = rules.due_deadline(doc.due_date)
        judgements[Rule.OVERDUE] = Judgement.of(Rule.OVERDUE, deadline, f.first_06, as_of)
    return Assessment(
        facts=f,
        as_of=as_of,
        available_at=available,
        taken_at=taken,
        registered_at=registered,
        judgements=judgements,
        t01=_seconds(available, f.first_01),
        t03=_seconds(available, f.first_03),
        t06=_seconds(available, f.first_06),
    )


def feedback_bucket(distinct_codes: int) -> str:
    """The Decision-28 buckets of status feedback a receiving unit gives: ``5+``, ``3-4``, ``1-2``, ``0``."""
    if distinct_codes >= 5:
        return "5+"
    if distinct_codes >= 3:
        return "3-4"
    return "1-2" if distinct_codes >= 1 else "0"


FEEDBACK_BUCKETS = ("5+", "3-4", "1-2", "0")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in (0, 1]): the smallest value with at least q of the values ≤ it.

    Nearest rank, not interpolation: every reported figure is one real delivery's latency, and anyone can
    reproduce it by sorting. The median is ``percentile(v, 0.5)``.
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


__all__ = [
    "FEEDBACK_BUCKETS",
    "Assessment",
    "DeliveryFacts",
    "DocumentFacts",
    "Judgement",
    "assess_delivery",
    "assess_document",
    "available_at",
    "feedback_bucket",
    "percentile",
    "taken_at",
]
