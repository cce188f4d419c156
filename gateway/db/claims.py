"""Claims, and the worker's whole turn in one transaction (issue 11): record the outcomes that came back, lease
new due deliveries, and write the intents of the sends about to start — one commit instead of three, since a
worker turns many times a second and each commit costs an fsync.

A claim (:func:`claim`) leases due outbox rows under a new fencing token: due (``next_attempt_at <= due_before``,
default ``now``), no live lease, a peer whose circuit lets it through (:mod:`gateway.db.circuits`: an open peer gets
one probe, taken here atomically), not in ``exclude_peers`` (peers the worker is already saturating), and at most
``per_peer`` per peer counting the ``held`` ones — rows are over-fetched (locked briefly) and picked here, so one
peer's backlog never fills a claim that other peers need. A ``sending`` attempt left by a previous holder becomes
``unknown``. PostgreSQL locks the chosen rows ``FOR UPDATE OF outbox SKIP LOCKED``, so concurrent workers pick
disjoint rows without waiting for each other. SQLAlchemy drops that clause on SQLite, where the same statements are
correct for a different reason: the transaction begins IMMEDIATE (:func:`gateway.db.engine.writer`), so claims are
serialized by the database lock and a second claimer sees the first one's leases.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Select, or_, select, update

from gateway.db import tables as t
from gateway.db.attempts import AttemptStart, FinishedAttempt, FinishSummary, begin_attempts, finish_attempts
from gateway.db.circuits import CircuitPolicy, peer_key_column, sendable, take_probe
from gateway.db.documents import inline_raw_of
from gateway.db.records import ClaimedDelivery, columns_for, from_row

_d, _o, _a, _doc, _at, _c = t.deliveries, t.outbox, t.agencies, t.documents, t.delivery_attempts, t.peer_circuits
#: The error code and text of an attempt whose worker vanished before recording the peer's answer.
UNKNOWN_CODE: Final = "DELIVERY.UNKNOWN"
UNKNOWN_TEXT: Final = (
    "the worker stopped before recording the peer's answer: outcome unknown, retried as the same message id"
)


@dataclass(frozen=True)
class ClaimRequest:
    """What to claim (module docstring)."""

    limit: int
    channels: Collection[str]
    due_before: datetime | None = None
    exclude_peers: Collection[str] = ()
    per_peer: int | None = None
    held: Mapping[str, int] = field(default_factory=dict)
    #: Deliveries the worker still holds in memory (waiting or in flight): never claimed again by it, even when
    #: their leases ran out while the database was away — a second claim would send the same delivery twice.
    holding: Collection[str] = ()


@dataclass(frozen=True)
class TurnResult:
    """What one :func:`turn` did: the outcomes' effect, the new claims, the sends that may start (delivery id →
    attempt row id; a planned send missing here was taken over and must not go out) and their packages: the bytes
    of those stored inline (``data``, doc id → bytes, at most 1 MiB each), and the doc ids of those stored in
    pieces (``chunked``), which the sending thread reads spooled when their send starts
    (:meth:`gateway.db.documents.DocumentRepository.payload`) — never all of a group at once (issue 14)."""

    summary: FinishSummary
    claims: list[ClaimedDelivery]
    started: dict[str, int]
    data: dict[str, bytes]
    chunked: frozenset[str] = frozenset()


def turn(
    conn: Connection,
    worker_id: str,
    *,
    now: datetime,
    lease_until: datetime,
    finished: Sequence[FinishedAttempt],
    request: ClaimRequest | None,
    plan: Callable[[list[ClaimedDelivery], FinishSummary], list[ClaimedDelivery]],
    policy: CircuitPolicy,
) -> TurnResult:
    """Record ``finished``, claim per ``request``, then begin the sends ``plan`` picks among the held and new
    claims (it sees which peers' circuits just opened) — all in the caller's transaction."""
    summary = finish_attempts(conn, finished, policy, now) if finished else FinishSummary()
    claims = claim(conn, worker_id, request, now, lease_until, policy) if request is not None else []
    group = plan(claims, summary)
    if not group:
        return TurnResult(summary, claims, {}, {})
    starts = [AttemptStart(c.delivery_id, c.fence, c.attempts + 1) for c in group]
    started = begin_attempts(conn, worker_id, starts, now, lease_until)
    doc_ids = sorted({c.doc_id for c in group if c.delivery_id in started})
    inline, chunked = inline_raw_of(conn, doc_ids)
    return TurnResult(summary, claims, started, inline, chunked)


def claim(
    conn: Connection,
    worker_id: str,
    request: ClaimRequest,
    now: datetime,
    lease_until: datetime,
    policy: CircuitPolicy,
) -> list[ClaimedDelivery]:
    """Lease what ``request`` asks for to ``worker_id`` (module docstring), earliest due first."""
    if request.limit < 1 or not request.channels:
        return []
    due = now if request.due_before is None else min(request.due_before, now)
    limit = request.limit
    fetch = limit if request.per_peer is None else min(limit * 4, limit + 500)
    rows = conn.execute(_pick_due(due, now, request.channels, fetch, request.exclude_peers, request.holding)).all()
    ids = _choose(conn, rows, limit, request.per_peer, request.held, now, policy)
    if not ids:
        return []
    conn.execute(
        update(_o).where(_o.c.id.in_(ids)).values(claimed_by=worker_id, lease_until=lease_until, fence=_o.c.fence + 1)
    )
    claims = [from_row(ClaimedDelivery, r) for r in conn.execute(_Q_CLAIMED.where(_o.c.id.in_(ids))).mappings()]
    conn.execute(
        update(_at)
        .where(_at.c.delivery_id.in_([c.delivery_id for c in claims]), _at.c.outcome == "sending")
        .values(outcome="unknown", error_code=UNKNOWN_CODE, error_message=UNKNOWN_TEXT)
    )
    return claims


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
            peer=peer_key_column(),
        )
    )
    .select_from(
        _o.join(_d, _d.c.delivery_id == _o.c.delivery_id)
        .join(_doc, _doc.c.doc_id == _d.c.doc_id)
        .join(_a, _a.c.organ_id == _d.c.recipient)
    )
    .order_by(_o.c.next_attempt_at, _o.c.id)
)


def _choose(
    conn: Connection,
    rows: Sequence[Any],
    limit: int,
    per_peer: int | None,
    held: Mapping[str, int],
    now: datetime,
    policy: CircuitPolicy,
) -> list[int]:
    """Which of the due ``rows`` (earliest first) to claim: within ``per_peer`` per peer (counting ``held``), and
    for a peer whose circuit is open only the one probe, if this worker gets it."""
    taken = dict(held)
    ids: list[int] = []
    probing: set[str] = set()
    for row in rows:
        if len(ids) >= limit:
            break
        if per_peer is not None and taken.get(row.peer, 0) >= per_peer:
            continue
        closed = row.state in (None, "closed")
        if not closed and (row.peer in probing or not take_probe(conn, row.peer, now, policy)):
            continue
        if not closed:
            probing.add(row.peer)
        ids.append(row.id)
        taken[row.peer] = taken.get(row.peer, 0) + 1
    return ids


def _pick_due(
    due: datetime,
    now: datetime,
    channels: Collection[str],
    limit: int,
    exclude_peers: Collection[str],
    holding: Collection[str] = (),
) -> Select[Any]:
    """Up to ``limit`` outbox rows due by ``due`` with no live lease and a sendable peer (and not ``holding``),
    with the peer and its circuit state, locked SKIP LOCKED (PostgreSQL)."""
    peer = peer_key_column()
    query = (
        select(_o.c.id, peer.label("peer"), _c.c.state)
        .select_from(
            _o.join(_d, _d.c.delivery_id == _o.c.delivery_id)
            .join(_a, _a.c.organ_id == _d.c.recipient)
            .outerjoin(_c, _c.c.peer == peer)
        )
        .where(
            _o.c.next_attempt_at <= due,
            or_(_o.c.lease_until.is_(None), _o.c.lease_until < now),
            _a.c.channel.in_(sorted(channels)),
            sendable(now),
        )
        .order_by(_o.c.next_attempt_at, _o.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=_o)
    )
    if exclude_peers:
        query = query.where(peer.not_in(sorted(exclude_peers)))
    if holding:
        query = query.where(_o.c.delivery_id.not_in(sorted(holding)))
    return query


__all__ = ["UNKNOWN_CODE", "UNKNOWN_TEXT", "ClaimRequest", "TurnResult", "claim", "turn"]
