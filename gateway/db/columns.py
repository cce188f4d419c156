"""What every table of :mod:`gateway.db.tables` is built from: the metadata and its naming convention, the UTC
time type, id sizes and the value lists that CHECK constraints name. Kept apart so the table module stays a
readable list of tables; :mod:`gateway.db.tables` re-exports all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: OrganId: at most 35 characters (QĐ 20/2020, edxml.md §6.1).
ORGAN_ID = 35
#: Our own ids are uuid4 hex.
ID = 32
#: Systems ids are chosen by operators (VDXP system ids look like ``00.53.W00``).
SYSTEM_ID = 64

#: The pull channel: the recipient's system fetches from its mailbox. Every other channel is pushed by the worker.
MAILBOX = "mailbox"
CHANNELS = (MAILBOX, "soap", "rest", "vdxp", "edocvn")
#: How a system's VDXP requests are protected from replay (issue 10 finding 7): ``strict`` (a fresh signed
#: timestamp, each signature once) or ``legacy-sdk`` (the stock VNPT SDK's fixed timestamp, bound to a source).
VDXP_REPLAY_MODES = ("strict", "legacy-sdk")
#: Whom a legacy (e-doc.vn profile) system may send as (issue 13; gateway.services.legacy_credentials): only its
#: own OrganId, also the units below its agencies, or exactly its agencies.
LEGACY_SCOPES = ("strict", "subtree", "explicit")
SIGNATURE_POLICIES = ("require", "verify-if-present", "off")
DELIVERY_STATES = ("queued", "fetched", "delivered", "failed", "dead")
#: What one push attempt ended in: the peer took it, it will be tried again, or it was dead-lettered; ``sending``
#: while the call is out (the intent, written before it), ``unknown`` when its worker vanished before the answer.
ATTEMPT_OUTCOMES = ("delivered", "retry", "dead", "sending", "unknown")
#: A peer's circuit breaker (issue 11).
CIRCUIT_STATES = ("closed", "open", "probing")
#: Admin API roles: ``admin`` may change things (re-drive, tokens), ``operator`` reads everything in its scope
#: and re-drives there, ``viewer`` only reads.
ADMIN_ROLES = ("admin", "operator", "viewer")
#: Worker ids are ``host:pid:random``.
WORKER_ID = 128


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive UTC and
    made aware again on the way out. Naive input is refused: it is always a bug (whose local time?).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Autoincrement ids: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def created(**kw: Any) -> Column[datetime]:
    return Column("created_at", UTCDateTime(), nullable=False, **kw)


__all__ = [
    "ADMIN_ROLES",
    "ATTEMPT_OUTCOMES",
    "CHANNELS",
    "CIRCUIT_STATES",
    "DELIVERY_STATES",
    "ID",
    "LEGACY_SCOPES",
    "MAILBOX",
    "NAMING_CONVENTION",
    "ORGAN_ID",
    "SIGNATURE_POLICIES",
    "SYSTEM_ID",
    "VDXP_REPLAY_MODES",
    "WORKER_ID",
    "BigId",
    "UTCDateTime",
    "created",
    "metadata",
    "one_of",
]
