"""The attempt log's writes (issue 11): the intent written before a network call, and the batch of outcomes
written after — each with its consequence for the delivery, its outbox row and its peer's circuit, in ONE
transaction per batch.

Why an intent: a worker that dies (or loses the database) between the peer's answer and its own commit used to
leave no trace of the contact — ``deliveries show`` said ``attempts: 1`` for a delivery the receiver got twice.
Now :func:`begin_attempts` commits a ``sending`` row (and counts the attempt) before the adapter is called; the
outcome completes that row; a row still ``sending`` when another worker claims the delivery becomes ``unknown``
(:mod:`gateway.db.outbox`).

Fencing: ``retry`` and ``dead`` — and an intent itself — apply only while the worker still holds the claim with
the same fencing token; ``delivered`` is a fact and applies whoever holds the row (the peer has the package).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.circuits import CircuitPolicy, record_answer, record_failure
from gateway.db.records import AttemptRecord, AuditEntry, to_values

_d, _o, _at = t.deliveries, t.outbox, t.delivery_attempts
#: Longest error text kept on a delivery (the attempt row keeps its own, equally bounded, copy).
_MAX_ERROR: Final = 2000
#: Longest peer reference kept (the column's size).
_MAX_REFERENCE: Final = 200
_OPEN: Final = ("queued", "fetched", "dead")
#: The completion of an intent (every column of the row but its id and delivery, from bound parameters).
_COMPLETE = (
    update(_at)
    .where(_at.c.id == bindparam("b_id"))
    .values({c.name: bindparam(c.name) for c in _at.columns if c.name not in ("id",)})
)
_DELIVER = (
    update(_d)
    # No IN (...) here: executemany refuses expanding parameters.
    .where(_d.c.delivery_id == bindparam("b_delivery"), or_(*(_d.c.state == state for state in _OPEN)))
    .values(
        state="delivered",
        acknowledged_at=bindparam("b_at"),
        ack_outcome="done",
        ack_reason=None,
        last_error=None,
        peer_reference=bindparam("b_reference"),
    )
)
#: An attempt counted on its delivery (at its intent, or with its record when it had none).
_COUNT = (
    update(_d)
    .where(_d.c.delivery_id == bindparam("b_delivery"))
    .values(attempts=_d.c.attempts + 1, last_attempt_at=bindparam("b_at"))
)


@dataclass(frozen=True)
class AttemptStart:
    """One delivery a worker is about to send under its claim ``fence``; ``attempt`` is its number (1-based)."""

    delivery_id: str
    fence: int
    attempt: int


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt's outcome as the worker decided it, with what it means for the peer."""

    #: ``delivered``, ``retry`` or ``dead``; ``id`` set when its intent was written (:func:`begin_attempts`).
    record: AttemptRecord
    #: The claim's fencing token; None: only ``claimed_by`` is checked (a record made without a claim token).
    fence: int | None = None
    #: The peer (:func:`gateway.db.circuits.peer_key`) and whether the attempt says it is failing (True), that it
    #: answered (False), or nothing about it (None: our configuration, an internal error).
    peer: str | None = None
    peer_failed: bool | None = None
    #: For ``retry``: the read timeout of the next attempt (None: the adapter's).
    read_timeout: float | None = None
    #: Written only when the delivery changed as decided (the dead-letter audit row).
    audit: AuditEntry | None = None


@dataclass
class FinishSummary:
    """What :func:`finish_attempts` changed: per attempt whether its delivery changed as decided, and the peers
    whose circuit opened or closed."""

    changed: list[bool] = field(default_factory=list)
    opened: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    #: Peers whose circuit is open after this batch, whoever opened it: the worker stops sending to them too.
    failing: set[str] = field(default_factory=set)


def begin_attempts(
    conn: Connection, worker_id: str, starts: Sequence[AttemptStart], now: datetime, lease_until: datetime
) -> dict[str, int]:
    """Write the ``sending`` rows of the starts still held under their fence (renewing those leases); returns
    delivery id → attempt row id. A start missing from the answer must not be sent: its claim was taken over."""
    if not starts:
        return {}
    ids = [s.delivery_id for s in starts]
    mine = (_o.c.delivery_id.in_(ids), _o.c.claimed_by == worker_id)
    conn.execute(update(_o).where(*mine).values(lease_until=lease_until))
    fences = dict(conn.execute(select(_o.c.delivery_id, _o.c.fence).where(*mine)).all())
    go = [s for s in starts if fences.get(s.delivery_id) == s.fence]
    if not go:
        return {}
    rows = [
        {
            "delivery_id": s.delivery_id,
            "attempt": s.attempt,
            "worker_id": worker_id,
            "started_at": now,
            "duration_ms": 0,
            "outcome": "sending",
        }
        for s in go
    ]
    written = conn.execute(insert(_at).returning(_at.c.delivery_id, _at.c.id), rows).all()
    conn.execute(_COUNT, [{"b_delivery": s.delivery_id, "b_at": now} for s in go])
    return dict(written)


def finish_attempts(
    conn: Connection, items: Sequence[FinishedAttempt], policy: CircuitPolicy, now: datetime
) -> FinishSummary:
    """Complete (or insert) each attempt row and apply its consequence (module docstring); one transaction.

    Built for batches (a worker records dozens of outcomes per commit): the attempt rows and the deliveries of the
    common case (delivered) are written with one executemany each, the circuits once per run of same-kind outcomes
    per peer.
    """
    for item in items:
        if item.record.outcome != "delivered" and item.record.outcome not in _FENCED:
            raise ValueError(f"unknown attempt outcome {item.record.outcome!r}")
    _write_attempt_rows(conn, [i.record for i in items])
    delivered = _delivered(conn, [i.record for i in items if i.record.outcome == "delivered"])
    summary = FinishSummary()
    for item in items:
        if item.record.outcome == "delivered":
            changed = item.record.delivery_id in delivered
        else:
            changed = _FENCED[item.record.outcome](conn, item)
        if changed and item.audit is not None:
            insert_audit(conn, item.audit)
        summary.changed.append(changed)
    _update_circuits(conn, items, policy, now, summary)
    return summary


def _write_attempt_rows(conn: Connection, records: Sequence[AttemptRecord]) -> None:
    """Complete the intents (one executemany), insert the attempts that had none (and count them)."""
    begun = [r for r in records if r.id is not None]
    if begun:
        conn.execute(_COMPLETE, [{"b_id": r.id, **_attempt_values(r)} for r in begun])
    for record in records:
        if record.id is None:
            conn.execute(insert(_at), _attempt_values(record))
            conn.execute(_COUNT, {"b_delivery": record.delivery_id, "b_at": record.started_at})


def _delivered(conn: Connection, records: Sequence[AttemptRecord]) -> set[str]:
    """The deliveries become DELIVERED (also from DEAD: a late success is a fact) and leave the outbox, whoever
    holds the lease; returns those that changed (the others were settled meanwhile, through the mailbox)."""
    if not records:
        return set()
    ids = [r.delivery_id for r in records]
    changing = set(conn.scalars(select(_d.c.delivery_id).where(_d.c.delivery_id.in_(ids), _d.c.state.in_(_OPEN))))
    if changing:
        conn.execute(
            _DELIVER,
            [
                {"b_delivery": r.delivery_id, "b_at": r.finished_at, "b_reference": _bounded_reference(r)}
                for r in records
                if r.delivery_id in changing
            ],
        )
    conn.execute(delete(_o).where(_o.c.delivery_id.in_(ids)))
    return changing


def _update_circuits(
    conn: Connection, items: Sequence[FinishedAttempt], policy: CircuitPolicy, now: datetime, summary: FinishSummary
) -> None:
    """Each peer's outcomes in order, consecutive ones of the same kind at once: k failures count k, any number of
    answers close the circuit once."""
    runs: dict[str, list[list[Any]]] = {}
    for item in items:
        if item.peer is None or item.peer_failed is None:
            continue
        peer_runs = runs.setdefault(item.peer, [])
        if peer_runs and peer_runs[-1][0] is item.peer_failed:
            peer_runs[-1][1] += 1
            peer_runs[-1][2] = _error_text(item.record)
        else:
            peer_runs.append([item.peer_failed, 1, _error_text(item.record)])
    for peer, peer_runs in runs.items():
        for failed, count, error in peer_runs:
            state = record_failure(conn, peer, now, error, policy, count=count) if failed else None
            if state == "opened":
                summary.opened.add(peer)
            if state in ("opened", "open"):
                summary.failing.add(peer)
                summary.closed.discard(peer)
            elif not failed and record_answer(conn, peer, now):
                summary.closed.add(peer)
                summary.opened.discard(peer)
                summary.failing.discard(peer)


def _dead(conn: Connection, item: FinishedAttempt) -> bool:
    """While the worker holds the claim: the delivery becomes DEAD and leaves the outbox."""
    record, error = item.record, _error_text(item.record)
    changed = conn.execute(delete(_o).where(*_held(item))).rowcount == 1
    if changed:
        conn.execute(
            update(_d)
            .where(_d.c.delivery_id == record.delivery_id, _d.c.state.in_(("queued", "fetched")))
            .values(state="dead", acknowledged_at=record.finished_at, ack_outcome="fail", ack_reason=error)
        )
    conn.execute(update(_d).where(_d.c.delivery_id == record.delivery_id).values(last_error=error))
    return changed


def _retry(conn: Connection, item: FinishedAttempt) -> bool:
    """While the worker holds the claim: the outbox row is due again at ``next_attempt_at``, released."""
    record = item.record
    result = conn.execute(
        update(_o)
        .where(*_held(item))
        .values(
            attempts=_o.c.attempts + 1,
            next_attempt_at=record.next_attempt_at,
            claimed_by=None,
            lease_until=None,
            read_timeout=item.read_timeout,
        )
    )
    conn.execute(update(_d).where(_d.c.delivery_id == record.delivery_id).values(last_error=_error_text(record)))
    return result.rowcount == 1


def _held(item: FinishedAttempt) -> tuple[Any, ...]:
    """The outbox row of the attempt's delivery, if the attempting worker still holds its claim (and fence)."""
    held = (_o.c.delivery_id == item.record.delivery_id, _o.c.claimed_by == item.record.worker_id)
    return held if item.fence is None else (*held, _o.c.fence == item.fence)


#: What a failed attempt does to its delivery, while its worker holds the claim (:func:`finish_attempts`).
_FENCED = {"dead": _dead, "retry": _retry}


def _attempt_values(record: AttemptRecord) -> dict[str, Any]:
    """The attempt row, with the peer's free text bounded."""
    values = to_values(record, skip=("id",))
    for name in ("error_message", "peer_answer"):
        if values[name] is not None:
            values[name] = values[name][:_MAX_ERROR]
    values["peer_reference"] = _bounded_reference(record)
    return values


def _bounded_reference(record: AttemptRecord) -> str | None:
    return None if record.peer_reference is None else record.peer_reference[:_MAX_REFERENCE]


def _error_text(record: AttemptRecord) -> str:
    """``CODE: message`` (and the peer's answer) — what the sender's status view shows for a dead letter."""
    text = f"{record.error_code or 'DELIVERY.INTERNAL'}: {record.error_message or ''}".rstrip()
    if record.peer_answer:
        text += f" (peer: {record.peer_answer})"
    return text[:_MAX_ERROR]


__all__ = ["AttemptStart", "FinishSummary", "FinishedAttempt", "begin_attempts", "finish_attempts"]
