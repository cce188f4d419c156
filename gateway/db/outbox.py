"""The push-delivery queue (``outbox``, ``delivery_attempts``): what the delivery worker leases, tries and
records, and what operators re-drive (issue 4).

A push delivery has an outbox row while something is left to push: due at ``next_attempt_at``, leased by one worker
at a time (``claimed_by`` until ``lease_until``), with the retry budget it is in (``attempts`` since
``created_at``) and the fencing token of its current claim (``fence``). Every attempt is a ``delivery_attempts``
row, written before the call (the intent) and completed with its consequence for the delivery in one transaction
(:mod:`gateway.db.attempts`); peers' circuit breakers gate the claims (:mod:`gateway.db.circuits`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, insert, or_, select, update

from gateway.db import tables as t
from gateway.db.attempts import AttemptStart, FinishedAttempt, FinishSummary, begin_attempts, finish_attempts
from gateway.db.audit import insert_audit
from gateway.db.circuits import CircuitPolicy, CircuitRecord, list_circuits
from gateway.db.claims import ClaimRequest, TurnResult, claim, turn
from gateway.db.connections import Repository
from gateway.db.records import AttemptRecord, AuditEntry, ClaimedDelivery, from_row

_d, _o, _a, _doc, _at, _c = t.deliveries, t.outbox, t.agencies, t.documents, t.delivery_attempts, t.peer_circuits
_INSERT_OUTBOX = insert(_o)


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
        exclude_peers: Collection[str] = (),
        circuits: CircuitPolicy | None = None,
        per_peer: int | None = None,
        held: Mapping[str, int] | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due outbox rows of recipients on ``channels`` to ``worker_id``, earliest first.

        Due: ``next_attempt_at <= due_before`` (default ``now``), no live lease, a peer whose circuit lets it through
        (:mod:`gateway.db.circuits`: an open peer gets one probe, taken here atomically) and not in
        ``exclude_peers`` (peers this worker is already saturating). ``per_peer``: at most that many deliveries
        per peer, counting the ``held`` ones (peer → count) — rows are over-fetched (locked briefly) and picked
        here, so one peer's backlog never fills a claim that other peers need. Every claim increments the row's fencing
        token, and a ``sending`` attempt left by a previous holder becomes ``unknown``. PostgreSQL locks the chosen
        rows ``FOR UPDATE OF outbox SKIP LOCKED``, so concurrent workers pick disjoint rows without waiting for each
        other. SQLAlchemy drops that clause on SQLite, where the same statements are correct for a different
        reason: the transaction begins IMMEDIATE (:func:`gateway.db.engine.writer`), so claims are serialized
        by the database lock and a second claimer sees the first one's leases.
        """
        request = ClaimRequest(limit, channels, due_before, exclude_peers, per_peer, held or {})
        with self._db.write() as conn:
            return claim(conn, worker_id, request, now, lease_until, circuits or CircuitPolicy())

    def turn(
        self,
        worker_id: str,
        *,
        now: datetime,
        lease_until: datetime,
        finished: Sequence[FinishedAttempt],
        request: ClaimRequest | None,
        plan: Callable[[list[ClaimedDelivery], FinishSummary], list[ClaimedDelivery]],
        circuits: CircuitPolicy | None = None,
    ) -> TurnResult:
        """A worker's turn in one transaction (:func:`gateway.db.claims.turn`)."""
        with self._db.write() as conn:
            return turn(
                conn,
                worker_id,
                now=now,
                lease_until=lease_until,
                finished=finished,
                request=request,
                plan=plan,
                policy=circuits or CircuitPolicy(),
            )

    def renew_leases(self, worker_id: str, lease_until: datetime) -> int:
        """Extend every lease this worker holds (its heartbeat thread, while the worker is alive and working)."""
        with self._db.write() as conn:
            return conn.execute(update(_o).where(_o.c.claimed_by == worker_id).values(lease_until=lease_until)).rowcount

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
        """Release a claim unattempted and make the delivery due at ``until``."""
        with self._db.write() as conn:
            result = conn.execute(
                update(_o)
                .where(_o.c.delivery_id == delivery_id, _o.c.claimed_by == worker_id)
                .values(next_attempt_at=until, claimed_by=None, lease_until=None)
            )
        return result.rowcount == 1

    # ---------------------------------------------------------------------------------- attempts

    def begin_attempts(
        self, worker_id: str, starts: Sequence[AttemptStart], *, now: datetime, lease_until: datetime
    ) -> dict[str, int]:
        """The intents of a group of sends, in one transaction (:func:`gateway.db.attempts.begin_attempts`)."""
        with self._db.write() as conn:
            return begin_attempts(conn, worker_id, starts, now, lease_until)

    def finish_attempts(
        self, items: Sequence[FinishedAttempt], *, now: datetime, circuits: CircuitPolicy | None = None
    ) -> FinishSummary:
        """Record a batch of outcomes in one transaction (:func:`gateway.db.attempts.finish_attempts`)."""
        with self._db.write() as conn:
            return finish_attempts(conn, items, circuits or CircuitPolicy(), now)

    def finish_attempt(self, record: AttemptRecord, *, audit: AuditEntry | None = None) -> bool:
        """Record one attempt and its consequence in ONE transaction; True if the delivery changed as decided.

        * ``delivered``: the peer took the package — the delivery becomes DELIVERED (also from DEAD: a late
          success is a fact) and leaves the outbox, whoever holds the lease;
        * ``retry``: the outbox row is due again at ``record.next_attempt_at`` and released;
        * ``dead``: the delivery becomes DEAD and leaves the outbox.

        ``retry`` and ``dead`` apply only while ``record.worker_id`` still holds the lease: a worker whose lease
        ran out (and was taken over) records its attempt but decides nothing. ``audit`` is written only when the
        delivery changed.
        """
        item = FinishedAttempt(record, audit=audit)
        return self.finish_attempts([item], now=record.finished_at).changed[0]

    def circuits(self, *, not_closed_only: bool = False) -> list[CircuitRecord]:
        """The peers' circuit breakers (operators, metrics)."""
        with self._db.read() as conn:
            return list_circuits(conn, not_closed_only=not_closed_only)

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


__all__ = ["OutboxRepository"]
