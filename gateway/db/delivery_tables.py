"""The delivery worker's tables (issues 4 and 11): the push queue with its leases (``outbox``), the attempt log
(``delivery_attempts``), the workers' presence (``worker_heartbeats``) and the peers' circuit breakers
(``peer_circuits``). In their own module to keep :mod:`gateway.db.tables` within the module budget; same
``metadata``, re-exported there.

Leases are short and renewed by the worker's heartbeat thread while it is alive (``lease_until``); every claim
increments ``fence``, the fencing token: a worker whose lease ran out and was taken over can no longer decide
anything about the delivery (retry, dead, release), because its token is not the current one.
An attempt row is written *before* the network call, with outcome ``sending``, and completed after it; a row still
``sending`` when another worker claims the delivery becomes ``unknown`` (the peer may or may not have it; the same
message id goes again), so every contact with a peer is in the log.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from gateway.db.columns import ATTEMPT_OUTCOMES, CIRCUIT_STATES, ID, WORKER_ID, BigId, UTCDateTime, metadata
from gateway.db.columns import created as _created
from gateway.db.columns import one_of as _in

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(ID), ForeignKey("deliveries.delivery_id"), nullable=False, unique=True),
    #: Start of the current retry budget (intake, or the last re-drive): dead-lettered retry_limit after it.
    _created(),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    #: Attempts in the current budget (the backoff exponent).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(WORKER_ID), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    #: The fencing token: incremented by every claim (see the module docstring).
    Column("fence", Integer, nullable=False, server_default="0"),
    #: The read timeout of the next attempt when it must be longer than the adapter's (after an unknown outcome).
    Column("read_timeout", Float, nullable=True),
    # The claim query: due rows, earliest first.
    Index(None, "next_attempt_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(ID), ForeignKey("deliveries.delivery_id"), nullable=False),
    #: 1 for the first attempt of the delivery (counted over every budget).
    Column("attempt", Integer, nullable=False),
    Column("worker_id", String(WORKER_ID), nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(12), nullable=False),
    #: The wire code of the DeliveryError (``DELIVERY.TIMEOUT``, ``DELIVERY.REFUSED``…); NULL on success.
    Column("error_code", String(60), nullable=True),
    Column("error_message", Text, nullable=True),
    #: A short summary of what the peer answered (a faultstring, an HTTP status, its receipt).
    Column("peer_answer", Text, nullable=True),
    Column("peer_reference", String(200), nullable=True),
    #: For ``retry``: when the next attempt is due.
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name="outcome"),
    Index(None, "delivery_id"),
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(WORKER_ID), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
    #: Set by a graceful stop; a killed worker's row just stops being refreshed.
    Column("stopped_at", UTCDateTime(), nullable=True),
)

peer_circuits = Table(
    "peer_circuits",
    metadata,
    #: ``channel endpoint`` (or ``channel OrganId`` for an agency without an endpoint): one peer, whichever
    #: agencies it serves (:func:`gateway.db.circuits.peer_key`).
    Column("peer", String(600), primary_key=True),
    #: ``closed`` (sending), ``open`` (not sending until ``open_until``), ``probing`` (one probe is out, until
    #: ``open_until`` at the latest).
    Column("state", String(8), nullable=False),
    #: Consecutive failed attempts (timeouts, no connection, peer errors); reset by any answer.
    Column("failures", Integer, nullable=False, server_default="0"),
    #: Times opened in a row (the probe interval doubles with each).
    Column("opens", Integer, nullable=False, server_default="0"),
    Column("open_until", UTCDateTime(), nullable=True),
    Column("changed_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    CheckConstraint(_in("state", CIRCUIT_STATES), name="state"),
)

__all__ = ["delivery_attempts", "outbox", "peer_circuits", "worker_heartbeats"]
