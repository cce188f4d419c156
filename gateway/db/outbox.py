"""The push-delivery queue (``outbox``, ``delivery_attempts``): what the delivery worker leases, tries and
records, and what operators re-drive (issue 4).

A push delivery has an outbox row while something is left to push: due at ``next_attempt_at``, leased by one worker
at a time (``claimed_by`` until ``lease_until``), with the retry budget it is in (``attempts`` since
``created_at``). Every attempt is a ``delivery_attempts`` row; its consequence for the delivery is written in the
same transaction (:meth:`OutboxRepository.finish_attempt`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, exists, insert, or_, select, update

from gateway.db import tables as t
from gateway.db.audit import insert_audit
from gateway.db.connections import Repository
from gateway.db.records import AttemptRecord, AuditEntry, ClaimedDelivery, columns_for, from_row, to_values

_d, _o, _a, _doc = t.deliveries, t.outbox, t.agencies, t.documents
_INSERT_OUTBOX = insert(_o)
_INSERT_ATTEMPT = insert(t.delivery_attempts)
_Q_CLAIMED = (
    # The agency's channel today (its adapter and endpoint), not the one the delivery was first queued for.
    select(
        *columns_for(
            ClaimedDelivery,
            _d,
            _doc,
            _a,
            _o,
            channel=_a.c.channel,
            budget_attempts=_o.c.attempts,
            budget_since=_o.c.created_at,
        )
    )
    .select_from(
        _o.join(_d, _d.c.delivery_id == _o.c.delivery_id)
        .join(_doc, _doc.c.doc_id == _d.c.doc_id)
        .join(_a, _a.c.organ_id == _d.c.recipient)
    )
    .order_by(_o.c.next_attempt_at, _o.c.id)
)
#: Longest error text kept on a delivery (the attempt row keeps its own, equally bounded, copy).
_MAX_ERROR = 2000
#: Longest peer reference kept (the column's size).
_MAX_REFERENCE = 200


class OutboxRepository(Repository):
    """``store.outbox``."""

    # ---------------------------------------------------------------------------------- leases

    def claim_deliveries(
        self,
        worker_id: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        channels: Collection[str],
        due_before: datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due outbox rows of recipients on ``channels`` to ``worker_id``, earliest first.

        Due: ``next_attempt_at <= due_before`` (default ``now``) and no live lease. PostgreSQL locks the chosen rows
        ``FOR UPDATE OF outbox SKIP LOCKED``, so concurrent workers pick disjoint rows without waiting for each
        other. SQLAlchemy drops that clause on SQLite, where the same statements are correct for a different
        reason: the transaction begins IMMEDIATE (:func:`gateway.db.engine.writer`), so claims are serialized
        by the database lock and a second claimer sees the first one's leases.
        """
        if limit < 1 or not channels:
            return []
        due = now if due_before is None else min(due_before, now)
        with self._db.write() as conn:
            ids = list(conn.scalars(_pick_due(due, now, channels, limit)))
            if not ids:
                return []
            conn.execute(update(_o).where(_o.c.id.in_(ids)).values(claimed_by=worker_id, lease_until=lease_until))
            rows = conn.execute(_Q_CLAIMED.where(_o.c.id.in_(ids))).mappings()
            return [from_row(ClaimedDelivery, r) for r in rows]

    def renew_claims(self, worker_id: str, delivery_ids: Collection[str], lease_until: datetime) -> set[str]:
        """Extend this worker's leases; returns the deliveries it still holds (another worker may have taken one
        whose lease had run out)."""
        if not delivery_ids:
            return set()
        mine = (_o.c.delivery_id.in_(list(delivery_ids)), _o.c.claimed_by == worker_id)
        with self._db.write() as conn:
            conn.execute(update(_o).where(*mine).values(lease_until=lease_until))
            return set(conn.scalars(select(_o.c.delivery_id).where(*mine)))

    def release_claims(self, worker_id: str, delivery_ids: Collection[str] | None = None) -> int:
        """Give back this worker's leases (all, or those of ``delivery_ids``) unattempted: due again at once."""
        query = update(_o).where(_o.c.claimed_by == worker_id)
        if delivery_ids is not None:
            if not delivery_ids:
                return 0
            query = query.where(_o.c.delivery_id.in_(list(delivery_ids)))
        with self._db.write() as conn:
            return conn.execute(query.values(claimed_by=None, lease_until=None)).rowcount

    def postpone(self, worker_id: str, delivery_id: str, until: datetime) -> bool:
        """Release a claim unattempted and make the delivery due at ``until`` (its peer is known to be failing)."""
        with self._db.write() as conn:
            result = conn.execute(
                update(_o)
                .where(_o.c.delivery_id == delivery_id, _o.c.claimed_by == worker_id)
                .values(next_attempt_at=until, claimed_by=None, lease_until=None)
            )
        return result.rowcount == 1

    # ---------------------------------------------------------------------------------- attempts

    def finish_attempt(self, record: AttemptRecord, *, audit: AuditEntry | None = None) -> bool:
        """Record an attempt and its consequence in ONE transaction; True if the delivery changed as decided.

        * ``delivered``: the peer took the package — the delivery becomes DELIVERED (also from DEAD: a late
          success is a fact) and leaves the outbox, whoever holds the lease;
        * ``retry``: the outbox row is due again at ``record.next_attempt_at`` and released;
        * ``dead``: the delivery becomes DEAD and leaves the outbox.

        ``retry`` and ``dead`` apply only while ``record.worker_id`` still holds the lease: a worker whose lease
        ran out (and was taken over) records its attempt but decides nothing. ``audit`` is written only when the
        delivery changed.
        """
        if record.outcome not in _CONSEQUENCES:
            raise ValueError(f"unknown attempt outcome {record.outcome!r}")
        with self._db.write() as conn:
            conn.execute(_INSERT_ATTEMPT, _attempt_values(record))
            changed = _CONSEQUENCES[record.outcome](conn, record)
            if changed and audit is not None:
                insert_audit(conn, audit)
        return changed

    def delivery_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt of a delivery, oldest first."""
        a = t.delivery_attempts
        with self._db.read() as conn:
            rows = conn.execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id)).mappings()
            return [from_row(AttemptRecord, r) for r in rows]

    # ---------------------------------------------------------------------------------- operators

    def redrive(
        self,
        delivery_ids: Sequence[str],
        *,
        now: datetime,
        push_channels: Collection[str],
        system_id: str | None = None,
        actor: str | None = None,
    ) -> list[str]:
        """Send deliveries again, in one transaction; returns those re-driven (audited one by one).

        DEAD and FAILED deliveries become QUEUED with a new retry budget starting ``now`` (an outbox row due at
        once when the recipient's channel is a push channel now; otherwise they wait in its mailbox). A QUEUED or
        FETCHED delivery still in the outbox (retrying) is made due at once with a new budget. Anything else
        (delivered, or a mailbox delivery that is merely waiting) is left alone.
        """
        done: list[str] = []
        with self._db.write() as conn:
            rows = conn.execute(
                select(
                    _d.c.delivery_id, _d.c.doc_id, _d.c.recipient, _d.c.state, _a.c.channel, _o.c.id.label("outbox_id")
                )
                .select_from(
                    _d.outerjoin(_a, _a.c.organ_id == _d.c.recipient).outerjoin(
                        _o, _o.c.delivery_id == _d.c.delivery_id
                    )
                )
                .where(_d.c.delivery_id.in_(list(delivery_ids)))
                .order_by(_d.c.created_at, _d.c.delivery_id)
            ).mappings()
            for row in list(rows):
                if not _redrive_one(conn, row, now, push_channels):
                    continue
                done.append(row["delivery_id"])
                insert_audit(
                    conn,
                    AuditEntry(
                        at=now,
                        action="delivery.redrive",
                        system_id=system_id,
                        doc_id=row["doc_id"],
                        organ_id=row["recipient"],
                        detail={"delivery_id": row["delivery_id"], "previous_state": row["state"], "by": actor},
                    ),
                )
        return done

    def push_expected(self, push_channels: Collection[str]) -> bool:
        """True when a worker has (or may soon have) work: an active push agency exists, or the outbox is not
        empty."""
        with self._db.read() as conn:
            return bool(
                conn.execute(
                    select(
                        or_(
                            exists().where(_a.c.active.is_(True), _a.c.channel.in_(sorted(push_channels))),
                            exists().where(_o.c.id.is_not(None)),
                        )
                    )
                ).scalar()
            )


def _pick_due(due: datetime, now: datetime, channels: Collection[str], limit: int) -> Select[Any]:
    """The ids of up to ``limit`` outbox rows due by ``due`` with no live lease, locked SKIP LOCKED (PostgreSQL)."""
    return (
        select(_o.c.id)
        .select_from(_o.join(_d, _d.c.delivery_id == _o.c.delivery_id).join(_a, _a.c.organ_id == _d.c.recipient))
        .where(
            _o.c.next_attempt_at <= due,
            or_(_o.c.lease_until.is_(None), _o.c.lease_until < now),
            _a.c.channel.in_(sorted(channels)),
        )
        .order_by(_o.c.next_attempt_at, _o.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=_o)
    )


def _counted(record: AttemptRecord) -> dict[str, Any]:
    """What every attempt adds to its delivery, whatever it decided."""
    return {"attempts": _d.c.attempts + 1, "last_attempt_at": record.started_at}


def _delivered(conn: Connection, record: AttemptRecord) -> bool:
    """The delivery becomes DELIVERED (also from DEAD) and leaves the outbox, whoever holds the lease."""
    this = _d.c.delivery_id == record.delivery_id
    result = conn.execute(
        update(_d)
        .where(this, _d.c.state.in_(("queued", "fetched", "dead")))
        .values(
            state="delivered",
            acknowledged_at=record.finished_at,
            ack_outcome="done",
            ack_reason=None,
            last_error=None,
            peer_reference=record.peer_reference,
            **_counted(record),
        )
    )
    changed = result.rowcount == 1
    if not changed:  # settled meanwhile (through the mailbox): count the attempt only
        conn.execute(update(_d).where(this).values(**_counted(record)))
    conn.execute(delete(_o).where(_o.c.delivery_id == record.delivery_id))
    return changed


def _dead(conn: Connection, record: AttemptRecord) -> bool:
    """While the worker holds the lease: the delivery becomes DEAD and leaves the outbox."""
    error = _error_text(record)
    changed = conn.execute(delete(_o).where(*_held(record))).rowcount == 1
    if changed:
        conn.execute(
            update(_d)
            .where(_d.c.delivery_id == record.delivery_id, _d.c.state.in_(("queued", "fetched")))
            .values(state="dead", acknowledged_at=record.finished_at, ack_outcome="fail", ack_reason=error)
        )
    _count_failure(conn, record, error)
    return changed


def _retry(conn: Connection, record: AttemptRecord) -> bool:
    """While the worker holds the lease: the outbox row is due again at ``record.next_attempt_at``, released."""
    result = conn.execute(
        update(_o)
        .where(*_held(record))
        .values(attempts=_o.c.attempts + 1, next_attempt_at=record.next_attempt_at, claimed_by=None, lease_until=None)
    )
    _count_failure(conn, record, _error_text(record))
    return result.rowcount == 1


def _held(record: AttemptRecord) -> tuple[Any, Any]:
    """The outbox row of the attempt's delivery, if the attempting worker still holds its lease."""
    return _o.c.delivery_id == record.delivery_id, _o.c.claimed_by == record.worker_id


def _count_failure(conn: Connection, record: AttemptRecord, error: str) -> None:
    conn.execute(update(_d).where(_d.c.delivery_id == record.delivery_id).values(last_error=error, **_counted(record)))


#: What each attempt outcome does to its delivery (inside :meth:`OutboxRepository.finish_attempt`'s transaction).
_CONSEQUENCES = {"delivered": _delivered, "dead": _dead, "retry": _retry}


def _redrive_one(conn: Connection, row: Mapping[str, Any], now: datetime, push_channels: Collection[str]) -> bool:
    """Re-drive one delivery (see :meth:`OutboxRepository.redrive`); False when it is left alone."""
    fresh = {"created_at": now, "next_attempt_at": now, "attempts": 0}
    if row["state"] in ("dead", "failed"):
        result = conn.execute(
            update(_d)
            .where(_d.c.delivery_id == row["delivery_id"], _d.c.state == row["state"])
            .values(state="queued", acknowledged_at=None, ack_outcome=None, ack_reason=None)
        )
        if result.rowcount != 1:
            return False
        if row["channel"] in push_channels:
            if row["outbox_id"] is None:
                conn.execute(_INSERT_OUTBOX, {"delivery_id": row["delivery_id"], **fresh})
            else:
                conn.execute(update(_o).where(_o.c.id == row["outbox_id"]).values(**fresh))
        return True
    if row["state"] in ("queued", "fetched") and row["outbox_id"] is not None:
        conn.execute(update(_o).where(_o.c.id == row["outbox_id"]).values(**fresh))
        return True
    return False


def _attempt_values(record: AttemptRecord) -> dict[str, Any]:
    """The attempt row, with the peer's free text bounded."""
    values = to_values(record)
    for name in ("error_message", "peer_answer"):
        if values[name] is not None:
            values[name] = values[name][:_MAX_ERROR]
    if values["peer_reference"] is not None:
        values["peer_reference"] = values["peer_reference"][:_MAX_REFERENCE]
    return values


def _error_text(record: AttemptRecord) -> str:
    """``CODE: message`` (and the peer's answer) — what the sender's status view shows for a dead letter."""
    text = f"{record.error_code or 'DELIVERY.FAILED'}: {record.error_message or ''}".rstrip()
    if record.peer_answer:
        text += f" (peer: {record.peer_answer})"
    return text[:_MAX_ERROR]


__all__ = ["OutboxRepository"]
