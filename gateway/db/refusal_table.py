"""The ``refusal_counts`` table (issue 10), in its own module to keep :mod:`gateway.db.tables` within the module
budget; it is part of the same ``metadata`` and re-exported there. See :mod:`gateway.db.refusals`."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, UniqueConstraint

from gateway.db.columns import SYSTEM_ID, BigId, UTCDateTime, metadata

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


__all__ = ["refusal_counts"]
