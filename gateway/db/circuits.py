"""Per-peer circuit breakers, kept in the database so that every worker on every host sees the same state
(issue 11: during a 150 s outage, 873 queued deliveries made 8,335–8,616 connection attempts).

A *peer* is what answers on the wire: ``channel endpoint`` (several agencies hosted by one provincial system share
one), for an agency without an endpoint of its own ``vdxp upstream axis`` (VDXP recipients all reached through the
configured axis) or else ``channel OrganId``. Its circuit:

* ``closed``: deliveries go out. Each failed attempt that says the peer itself is failing (timeout, no connection,
  a peer or protocol error) adds one to ``failures``; any answer from the peer (delivered, or refused for good)
  resets it. ``failures`` reaching :attr:`CircuitPolicy.failures` opens the circuit;
* ``open``: the claim query (:mod:`gateway.db.outbox`) leaves the peer's deliveries alone until ``open_until`` —
  its whole queue waits without a single write per delivery;
* then one worker takes the *probe* (``probing``, atomically): one delivery goes out; success closes the circuit,
  failure opens it again for twice as long (up to :attr:`CircuitPolicy.max_open_seconds`). A prober that dies
  leaves ``probing`` until ``open_until`` (one call's worth of time), after which another worker probes.

Everything here runs inside the caller's transaction (claims and attempt records), so a circuit never disagrees
with the attempt log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, Connection, case, func, literal, select, update

from gateway.db import tables as t
from gateway.db.certificates import insert_ignoring_duplicates

_c, _a = t.peer_circuits, t.agencies
#: Longest peer key kept (the column's size).
PEER_KEY_LENGTH: Final = 600


@dataclass(frozen=True)
class CircuitPolicy:
    """When a circuit opens and for how long (settings ``delivery_circuit_*``)."""

    #: Consecutive failures that open the circuit.
    failures: int = 5
    #: First open interval; doubles with each failed probe, up to ``max_open_seconds``.
    open_seconds: float = 10.0
    max_open_seconds: float = 60.0
    #: How long one probe may be out (one adapter call and a margin) before another worker may probe.
    probe_seconds: float = 75.0

    def open_for(self, opens: int) -> timedelta:
        """The open interval after the ``opens``-th opening in a row (1-based)."""
        exponent = min(max(opens, 1) - 1, 30)
        return timedelta(seconds=min(self.max_open_seconds, self.open_seconds * float(2**exponent)))


@dataclass(frozen=True)
class CircuitRecord:
    """One peer's circuit as operators see it (``edoc-gateway deliveries peers``, metrics)."""

    peer: str
    state: str
    failures: int
    opens: int
    open_until: datetime | None
    changed_at: datetime
    last_error: str | None


#: The peer of every VDXP agency without an endpoint of its own: the axis configured in ``[vdxp]``.
UPSTREAM_AXIS: Final = "upstream axis"


def peer_key(channel: str, endpoint: str | None, organ_id: str) -> str:
    """The peer of a delivery (module docstring); the same value as :func:`peer_key_column` computes in SQL."""
    where = endpoint or (UPSTREAM_AXIS if channel == "vdxp" else organ_id)
    return f"{channel} {where}"[:PEER_KEY_LENGTH]


def peer_key_column() -> ColumnElement[str]:
    """:func:`peer_key` of the ``agencies`` row in a query (``||`` on both SQLite and PostgreSQL)."""
    fallback = case((_a.c.channel == "vdxp", literal(UPSTREAM_AXIS)), else_=_a.c.organ_id)
    return func.substr(_a.c.channel + " " + func.coalesce(_a.c.endpoint, fallback), 1, PEER_KEY_LENGTH)


def sendable(now: datetime) -> ColumnElement[bool]:
    """For a query outer-joined with ``peer_circuits``: the peer may be sent to (no circuit, closed, or open with
    its probe due — :func:`take_probe` then lets one delivery through)."""
    return (_c.c.state.is_(None)) | (_c.c.state == "closed") | (_c.c.open_until <= now)


def take_probe(conn: Connection, peer: str, now: datetime, policy: CircuitPolicy) -> bool:
    """Atomically become the one prober of an open peer whose interval is over; False if another worker did."""
    result = conn.execute(
        update(_c)
        .where(_c.c.peer == peer, _c.c.state != "closed", _c.c.open_until <= now)
        .values(state="probing", open_until=now + timedelta(seconds=policy.probe_seconds), changed_at=now)
    )
    return result.rowcount == 1


def record_failure(
    conn: Connection, peer: str, now: datetime, error: str, policy: CircuitPolicy, *, count: int = 1
) -> str:
    """Count ``count`` consecutive failures of the peer; returns ``opened`` if this opened (or re-opened) its
    circuit, else its state (``closed``, or ``open`` when another worker opened it: stop sending to it too)."""
    conn.execute(
        insert_ignoring_duplicates(conn, _c, ["peer"]),
        {"peer": peer, "state": "closed", "failures": 0, "opens": 0, "changed_at": now},
    )
    conn.execute(update(_c).where(_c.c.peer == peer).values(failures=_c.c.failures + count, last_error=error[:500]))
    row = conn.execute(select(_c.c.state, _c.c.failures, _c.c.opens).where(_c.c.peer == peer)).one()
    if row.state == "open" or (row.state == "closed" and row.failures < policy.failures):
        return str(row.state)
    # A failed probe, or the threshold reached: open for the next interval.
    conn.execute(
        update(_c)
        .where(_c.c.peer == peer)
        .values(state="open", opens=row.opens + 1, open_until=now + policy.open_for(row.opens + 1), changed_at=now)
    )
    return "opened"


def record_answer(conn: Connection, peer: str, now: datetime) -> bool:
    """The peer answered: its circuit closes and its failure count restarts; True if it was not closed."""
    result = conn.execute(
        update(_c)
        .where(_c.c.peer == peer, (_c.c.failures > 0) | (_c.c.state != "closed"))
        .values(state="closed", failures=0, opens=0, open_until=None, changed_at=now)
    )
    return result.rowcount == 1


def list_circuits(conn: Connection, *, not_closed_only: bool = False) -> list[CircuitRecord]:
    query = select(_c).order_by(_c.c.peer)
    if not_closed_only:
        query = query.where(_c.c.state != "closed")
    return [CircuitRecord(**dict(row)) for row in conn.execute(query).mappings()]


__all__ = [
    "PEER_KEY_LENGTH",
    "UPSTREAM_AXIS",
    "CircuitPolicy",
    "CircuitRecord",
    "list_circuits",
    "peer_key",
    "peer_key_column",
    "record_answer",
    "record_failure",
    "sendable",
    "take_probe",
]
