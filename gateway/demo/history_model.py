"""The values of a planned tracking history (:mod:`gateway.demo.history`): what was decided, per agency,
document, delivery and status event, so that tests can work out the expected report on their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class PlannedAgency:
    organ_id: str
    name: str
    parent: str | None
    level: int
    channel: str
    profile: str
    #: The registry's "emit 01 on acknowledge" option: the gateway sends 01 for the unit when it acknowledges.
    emits_01_on_ack: bool = False


@dataclass(frozen=True, slots=True)
class PlannedStatus:
    code: str
    at: datetime
    by_gateway: bool = False


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    delivery_id: str
    recipient: str
    channel: str
    state: str
    created_at: datetime
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    statuses: tuple[PlannedStatus, ...]
    intent: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PlannedDocument:
    doc_id: str
    sender: str
    document_id: str
    received_at: datetime
    signature_state: str
    priority: int | None
    promulgation_date: date | None
    due_date: date | None
    submitted_by: str
    deliveries: tuple[PlannedDelivery, ...]
    intent: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PlannedRefusal:
    at: datetime
    organ_id: str | None
    system_id: str
    code: str


@dataclass(frozen=True)
class HistorySpec:
    """What to generate: ``documents`` edocs taken in during [since, until), looked at ``now``."""

    seed: int
    since: datetime
    until: datetime
    documents: int
    now: datetime | None = None
    departments: int = 8
    districts: int = 2
    communes: int = 3
    #: Mean recipients per document (the national average is ≈ 2.9).
    recipients_mean: float = 2.9
    #: At most this many "in progress" (05) reports per delivery (1 to n, evenly): long cases report weekly.
    progress_updates: int = 3

    @property
    def looked_at(self) -> datetime:
        return self.now or self.until + timedelta(days=14)


@dataclass
class HistoryPlan:
    spec: HistorySpec
    agencies: tuple[PlannedAgency, ...]
    documents: list[PlannedDocument] = field(default_factory=list)
    refusals: list[PlannedRefusal] = field(default_factory=list)


__all__ = [
    "HistoryPlan",
    "HistorySpec",
    "PlannedAgency",
    "PlannedDelivery",
    "PlannedDocument",
    "PlannedRefusal",
    "PlannedStatus",
]
