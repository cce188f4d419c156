"""A seeded, realistic tracking history: a province's registry and what a period of e-documents did in it.

For the Decision-28 report's tests and benchmark (issue 9) — the report must be checked against figures that
somebody worked out independently, and timed at national volume. :func:`plan_history` decides everything up
front from a seed (the same seed, period and size give the same plan, byte for byte): the agencies (level 1 root,
level-2 departments, level-3 districts, level-4 communes in the QCVN 102 OrganId grammar ``KKK.MM.NN.H53``), and
per document its sender, times, dates, priority, signature and per delivery its channel, transport times, state
and status events. :mod:`gateway.demo.history_store` writes a plan into a database.

The plan is returned so that a test can compute the expected report from it without trusting the store or the
report code. Each planned item also carries ``intent``: what the generator *meant* to produce (``late_sending``,
``late_ack``, ``never_taken``, ``not_registered``, ``overdue``, ``dead`` …) — a hint for readers of the data, not
the truth (a document meant on time may still be judged late under the rules; the tests judge the times).

Events after ``now`` (the moment the history is "looked at") are not recorded: a delivery whose acknowledgement
would come later is still waiting, as it would be in a live gateway — so reports at ``now`` have open rules.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from gateway.demo.history_events import PROFILES, plan_deliveries
from gateway.demo.history_model import (
    HistoryPlan,
    HistorySpec,
    PlannedAgency,
    PlannedDelivery,
    PlannedDocument,
    PlannedRefusal,
    PlannedStatus,
)
from gateway.tracking.calendar import WorkingCalendar, local_at, local_date

PROVINCE = "H53"
ROOT = f"000.00.00.{PROVINCE}"
#: Units of other axes that send to and receive from the province (the report's "external" row).
EXTERNAL = ("000.00.00.G22", "000.00.00.H41", "000.00.00.G17")
_DEPARTMENTS = (
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tài chính",
    "Sở Xây dựng",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Nông nghiệp và Môi trường",
    "Sở Công Thương",
    "Sở Tư pháp",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Thanh tra tỉnh",
)
_DISTRICTS = ("Hòa Thành", "Gò Dầu", "Trảng Bàng", "Châu Thành", "Tân Biên", "Tân Châu", "Dương Minh Châu", "Bến Cầu")
SIGNATURES = (("valid", 0.74), ("legacy-placeholder", 0.08), ("unsigned", 0.18))
#: OtherInfo/Priority: 0 normal, 1 Khẩn, 2 Thượng khẩn, 3 Hỏa tốc, 4 Hỏa tốc hẹn giờ; None: not stated.
PRIORITIES = ((0, 0.75), (1, 0.11), (2, 0.06), (3, 0.04), (4, 0.02), (None, 0.02))
REFUSAL_CODES = ("EDXML.SIGNATURE", "EDXML.SCHEMA", "EDXML.STRUCTURE", "ACCESS.DENIED", "ROUTE.UNKNOWN_RECIPIENT")
SYSTEMS = ("tayninh-qlvb", "vpcp-qlvb", "national-samples")


def _pick(rng: random.Random, weighted: tuple[tuple[object, float], ...]) -> object:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def plan_agencies(spec: HistorySpec) -> tuple[PlannedAgency, ...]:
    """The province's tree; each unit gets a channel and a feedback profile from the seed."""
    rng = random.Random(f"{spec.seed}:agencies")  # noqa: S311 -- seeded test data, not a secret
    units = [_agency(rng, ROOT, "UBND tỉnh Tây Ninh", None, 1)]
    for d in range(1, spec.departments + 1):
        dept_name = _DEPARTMENTS[d - 1] if d <= len(_DEPARTMENTS) else f"Ban ngành tỉnh số {d}"
        dept = f"000.00.{d:02d}.{PROVINCE}"
        units.append(_agency(rng, dept, dept_name, ROOT, 2))
        for k in range(1, spec.districts + 1):
            district = f"000.{k:02d}.{d:02d}.{PROVINCE}"
            name = f"UBND huyện {_DISTRICTS[(d + k) % len(_DISTRICTS)]} ({dept_name}, đơn vị {k})"
            units.append(_agency(rng, district, name, dept, 3))
            for c in range(1, spec.communes + 1):
                units.append(
                    _agency(rng, f"{c:03d}.{k:02d}.{d:02d}.{PROVINCE}", f"UBND xã số {c} – {name}", district, 4)
                )
    return tuple(units)


def _agency(rng: random.Random, organ_id: str, name: str, parent: str | None, level: int) -> PlannedAgency:
    channel = str(_pick(rng, (("mailbox", 0.85), ("soap", 0.1), ("vdxp", 0.05))))
    profile = str(_pick(rng, (("full", 0.55), ("partial", 0.17), ("few", 0.08), ("ack-only", 0.08), ("none", 0.12))))
    emits = channel == "mailbox" and rng.random() < (0.6 if profile == "none" else 0.15)
    return PlannedAgency(organ_id, name, parent, level, channel, profile, emits)


def plan_history(spec: HistorySpec) -> HistoryPlan:
    """The whole plan in memory (tests); :func:`iter_documents` streams it for national volumes."""
    agencies = plan_agencies(spec)
    return HistoryPlan(spec, agencies, list(iter_documents(spec, agencies)), plan_refusals(spec, agencies))


def plan_refusals(spec: HistorySpec, agencies: tuple[PlannedAgency, ...]) -> list[PlannedRefusal]:
    """≈ 2 % of the volume refused at intake, plus a few just outside the period (a report must not count those)."""
    rng = random.Random(f"{spec.seed}:refusals")  # noqa: S311 -- seeded test data, not a secret
    out = []
    span = (spec.until - spec.since).total_seconds()
    for i in range(max(4, spec.documents // 50)):
        if i % 10 == 3:
            at = (
                spec.until + timedelta(seconds=rng.uniform(0, 3600))
                if i % 20 == 3
                else spec.since - timedelta(seconds=1)
            )
        else:
            at = spec.since + timedelta(seconds=rng.uniform(0, span))
        r = rng.random()
        organ = rng.choice(agencies).organ_id if r < 0.8 else (rng.choice(EXTERNAL) if r < 0.9 else None)
        out.append(PlannedRefusal(at, organ, rng.choice(SYSTEMS), rng.choice(REFUSAL_CODES)))
    return out


def iter_documents(spec: HistorySpec, agencies: tuple[PlannedAgency, ...]) -> Iterator[PlannedDocument]:
    """The documents in intake order, one at a time (a year at national volume does not fit in a list)."""
    rng = random.Random(f"{spec.seed}:documents")  # noqa: S311 -- seeded test data, not a secret
    calendar = WorkingCalendar()
    by_id = {a.organ_id: a for a in agencies}
    senders = [a.organ_id for a in agencies] + list(EXTERNAL)
    weights = [{1: 6.0, 2: 4.0, 3: 1.5, 4: 0.6}[a.level] for a in agencies] + [3.0] * len(EXTERNAL)
    times = sorted(_intake_time(rng, spec, calendar) for _ in range(spec.documents))
    for n, received_at in enumerate(times):
        sender = rng.choices(senders, weights)[0]
        doc_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        intent: set[str] = set()
        priority = _pick(rng, PRIORITIES)
        promulgation = _promulgation(rng, calendar, received_at, intent)
        due = None
        if rng.random() < 0.45:
            due = (promulgation or local_date(received_at)) + timedelta(days=rng.randint(3, 20))
        recipients = _recipients(rng, spec, senders, sender)
        deliveries = plan_deliveries(rng, spec, calendar, by_id, recipients, received_at, due)
        yield PlannedDocument(
            doc_id=doc_id,
            sender=sender,
            document_id=f"{sender},{local_date(received_at):%Y/%m/%d},{n + 1}/UBND-VP",
            received_at=received_at,
            signature_state=str(_pick(rng, SIGNATURES)),
            priority=priority,  # type: ignore[arg-type]
            promulgation_date=promulgation,
            due_date=due,
            submitted_by=SYSTEMS[1] if sender in EXTERNAL else SYSTEMS[0],
            deliveries=deliveries,
            intent=frozenset(intent),
        )


def _intake_time(rng: random.Random, spec: HistorySpec, calendar: WorkingCalendar) -> datetime:
    """Mostly office hours of working days; a few in the evening, on weekends and on holidays."""
    days = (local_date(spec.until - timedelta(microseconds=1)) - local_date(spec.since)).days + 1
    while True:
        day = local_date(spec.since) + timedelta(days=rng.randrange(days))
        if not calendar.is_working_day(day) and rng.random() > 0.05:
            continue
        minute = rng.randint(7 * 60 + 30, 17 * 60) if rng.random() < 0.92 else rng.randint(17 * 60, 22 * 60)
        at = local_at(day, minute // 60, minute % 60) + timedelta(seconds=rng.randint(0, 59))
        if spec.since <= at < spec.until:
            return at


def _promulgation(
    rng: random.Random, calendar: WorkingCalendar, received_at: datetime, intent: set[str]
) -> date | None:
    """Signed the day it is sent, or the working day before (in time for a normal document before noon);
    ≈ 8 % sent days late; ≈ 3 % name no date at all."""
    r = rng.random()
    day = local_date(received_at)
    if r < 0.03:
        return None
    if r < 0.11:
        intent.add("late_sending")
        return day - timedelta(days=rng.randint(2, 6))
    if r < 0.35:
        back = day - timedelta(days=1)
        while not calendar.is_working_day(back):
            back -= timedelta(days=1)
        return back
    return day


def _recipients(rng: random.Random, spec: HistorySpec, senders: list[str], sender: str) -> list[str]:
    """1–10 distinct recipients, mean ≈ ``recipients_mean`` (a geometric tail: most letters go to a few units)."""
    p = 1.0 / (spec.recipients_mean + 0.05)  # + the share the cap at 10 cuts off
    count = 1
    while count < 10 and rng.random() > p:
        count += 1
    pool = [s for s in senders if s != sender]
    return rng.sample(pool, min(count, len(pool)))


def utc(year: int, month: int, day: int) -> datetime:
    """Midnight UTC (convenience for callers building a spec)."""
    return datetime(year, month, day, tzinfo=UTC)


__all__ = [
    "EXTERNAL",
    "PROFILES",
    "ROOT",
    "HistoryPlan",
    "HistorySpec",
    "PlannedAgency",
    "PlannedDelivery",
    "PlannedDocument",
    "PlannedRefusal",
    "PlannedStatus",
    "iter_documents",
    "plan_agencies",
    "plan_history",
    "plan_refusals",
]
