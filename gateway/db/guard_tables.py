"""The tables of the defences against hostile clients (issue 10): the replay caches of WS-Security nonces and VDXP
signatures, and the aggregated refusal counts (:mod:`gateway.db.nonces`, :mod:`gateway.db.refusals`). In their own
module to keep :mod:`gateway.db.tables` within the module budget; same ``metadata``, re-exported there."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, UniqueConstraint

from gateway.db.columns import SYSTEM_ID, BigId, UTCDateTime, metadata
from gateway.db.columns import created as _created

refusal_counts = Table(  # per (window start, client address, claimed system id, code); both truncated to 64
    "refusal_counts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),
    Column("principal", String(SYSTEM_ID), nullable=False),
    Column("code", String(40), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    UniqueConstraint("window_start", "source", "principal", "code"),
    Index(None, "source", "window_start"),
    Index(None, "principal", "window_start"),
)


wss_nonces = Table(
    "wss_nonces",
    metadata,
    Column("system_id", String(SYSTEM_ID), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    _created(),
    Index(None, "created_at"),
)

vdxp_signatures = Table(
    "vdxp_signatures",
    metadata,
    Column("system_id", String(SYSTEM_ID), primary_key=True),
    #: ``XroadVnpt-hash-header`` as verified (64 lowercase hex): the HMAC covers the timestamp and every parameter.
    Column("signature", String(64), primary_key=True),
    #: When the signed timestamp leaves the window: from then on the request is refused as stale anyway.
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "expires_at"),
)


__all__ = ["refusal_counts", "vdxp_signatures", "wss_nonces"]
