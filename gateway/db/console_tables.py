"""The operator console's tables (issue 12): operator accounts (``operators``) and their server-side sessions
(``console_sessions``). In their own module to keep :mod:`gateway.db.tables` within the module budget; same
``metadata``, re-exported there.

Sessions live in the database, not in a signed cookie: disabling an operator or resetting a password ends every
session at once, a logout is final, and the cookie holds only a random identifier (stored as its SHA-256, like
admin tokens) — nothing an attacker could read or replay after the row is gone.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table

from gateway.db.columns import ADMIN_ROLES, ORGAN_ID, SYSTEM_ID, UTCDateTime, metadata
from gateway.db.columns import created as _created
from gateway.db.columns import one_of as _in

operators = Table(
    "operators",
    metadata,
    #: The login name, recorded as the actor of audit rows (``operator:<username>``).
    Column("username", String(SYSTEM_ID), primary_key=True),
    Column("display_name", String(200), nullable=False),
    #: argon2id hash in PHC string form (argon2-cffi), parameters included, so they can be raised later.
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    #: OrganId of the registry subtree the operator may see; NULL = the whole gateway.
    Column("scope", String(ORGAN_ID), nullable=True),
    _created(),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime(), nullable=True),
    Column("disabled_at", UTCDateTime(), nullable=True),
    CheckConstraint(_in("role", ADMIN_ROLES), name="role"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    #: SHA-256 (hex) of the session identifier the cookie carries (256 random bits).
    Column("id_hash", String(64), primary_key=True),
    Column("username", String(SYSTEM_ID), ForeignKey("operators.username"), nullable=False),
    #: The CSRF token of the session (random, compared in constant time on every state change).
    Column("csrf", String(64), nullable=False),
    _created(),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    #: Absolute end of the session, whatever its activity.
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "username"),
    Index(None, "expires_at"),
)

__all__ = ["console_sessions", "operators"]
