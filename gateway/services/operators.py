"""Operator accounts of the web console and their sessions (issue 12 item 2).

Passwords are hashed with argon2id (argon2-cffi, its RFC 9106 low-memory profile): a slow, memory-hard hash,
because a password — unlike an admin token — is short enough to guess offline. Hashes made with older parameters
are upgraded at the next successful login (``check_needs_rehash``).

A login is throttled by the same shared counters as every other authentication of the gateway
(:class:`gateway.services.limits.AuthThrottle`: per source address and per claimed name, in the database), so a
password guesser meets ``RATE.LIMITED`` whichever gunicorn worker it reaches. An unknown name costs the same
argon2 verification as a known one (against a dummy hash): the timing does not tell which names exist.

A session is 256 random bits in an HttpOnly cookie, stored as its SHA-256; every login creates a new one (a
session identifier set before login is never promoted: no session fixation), with its own CSRF token. A session
ends after ``console_session_idle_minutes`` without a request, ``console_session_hours`` after login, at logout,
and when its operator is disabled or gets a new password.

The console's caller is a :class:`~gateway.services.admin_roles.Principal` like an admin token's: the same roles
and scopes, checked by the same services (no second query path, no second permission model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from gateway.config import Settings
from gateway.db import Store
from gateway.db.operators import OperatorRecord, SessionRecord
from gateway.db.records import AuditEntry
from gateway.errors import AuthError, NotFoundError, RequestError
from gateway.services.admin_roles import Principal, Role
from gateway.services.limits import AuthThrottle, RefusalLog
from gateway.services.paging import Page, PageRequest, page_of

#: The paging listing name of the accounts (cursors are bound to it).
LISTING: Final = "operators"
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
_DENIED: Final = "wrong user name or password"
#: How often (at most) a session's last activity is written: a page view is not worth a write each time.
_TOUCH_EVERY: Final = timedelta(seconds=60)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class OperatorInfo:
    """An account as listed (never its hash)."""

    username: str
    display_name: str
    role: Role
    scope: str | None
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, r: OperatorRecord) -> OperatorInfo:
        return cls(r.username, r.display_name, Role(r.role), r.scope, r.created_at, r.last_login_at, r.disabled_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


@dataclass(frozen=True)
class ConsoleUser:
    """A logged-in operator: who (as the services' :class:`Principal`), the session's CSRF token and identifier
    hash (for logout)."""

    principal: Principal
    display_name: str
    csrf: str
    session: str


class Operators:
    """Accounts (the CLI's ``operators`` commands) and console logins, over one store."""

    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._clock = clock
        self._hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self._idle = timedelta(minutes=settings.console_session_idle_minutes)
        self._lifetime = timedelta(hours=settings.console_session_hours)
        per_user = dataclasses.replace(settings, auth_failures_per_user=settings.console_login_failures)
        self._throttle = AuthThrottle(store, per_user, RefusalLog(store, settings, clock), clock)

    # ------------------------------------------------------------------------------------------ accounts

    def add(
        self, username: str, password: str, role: Role | str, *, scope: str | None = None, display_name: str = ""
    ) -> OperatorInfo:
        if not _NAME.fullmatch(username):
            raise RequestError(f"bad user name {username!r}: 1–64 of A-Z a-z 0-9 . _ @ -", username=username)
        wanted = _role(role)
        if scope is not None and not self._store.registry.agencies([scope]):
            raise RequestError(f"the scope {scope} is not a registered agency", scope=scope)
        now = self._clock()
        record = OperatorRecord(
            username, display_name.strip()[:200], self._hash(password), wanted.value, scope, now, now
        )
        detail = {"role": wanted.value, "scope": scope}
        self._store.operators.add(record, _audit(now, "operators.add", "cli", username, detail))
        return OperatorInfo.of(record)

    def list(self, page: PageRequest | None = None) -> Page[OperatorInfo]:
        page = page or PageRequest()
        found = self._store.operators.page(after=page.after(LISTING, 1), offset=page.offset, limit=page.limit)
        return page_of(LISTING, found, OperatorInfo.of)

    def disable(self, username: str, *, actor: str = "cli") -> OperatorInfo:
        """Disable the account and end its sessions at once (kept: audit rows name it)."""
        return self._change(username, "operators.disable", actor, disabled_at=self._clock())

    def enable(self, username: str, *, actor: str = "cli") -> OperatorInfo:
        return self._change(username, "operators.enable", actor, disabled_at=None)

    def reset_password(self, username: str, password: str, *, actor: str = "cli") -> OperatorInfo:
        """A new password; every session of the account ends."""
        digest = self._hash(password)
        return self._change(
            username, "operators.password", actor, password_hash=digest, password_changed_at=self._clock()
        )

    def change_own_password(self, user: ConsoleUser, current: str, new: str) -> OperatorInfo:
        """An operator's own new password, given the current one (AUTH.DENIED otherwise, counted by the login
        throttle: a stolen session must not become a password oracle). Every session ends, this one too."""
        claimed = f"console:{user.principal.name}"
        blocked = self._throttle.blocked(claimed)
        if blocked is not None:
            raise self._throttle.refuse(claimed, "console", *blocked)
        account = self._store.operators.get(user.principal.name)
        if account is None or not self._verify(account, current):
            self._throttle.failed(claimed, "console", AuthError.code, "bad current password")
            raise AuthError("the current password is wrong")
        if new == current:
            raise RequestError("the new password must differ from the current one")
        return self.reset_password(user.principal.name, new, actor=user.principal.name)

    def _change(self, username: str, action: str, actor: str, **values: Any) -> OperatorInfo:
        if not self._store.operators.change(username, _audit(self._clock(), action, actor, username, {}), **values):
            raise NotFoundError(f"no operator named {username!r}", username=username)
        found = self._store.operators.get(username)
        assert found is not None
        return OperatorInfo.of(found)

    def _hash(self, password: str) -> str:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise RequestError(f"a password has {MIN_PASSWORD}–{MAX_PASSWORD} characters")
        return self._hasher.hash(password)

    # ------------------------------------------------------------------------------------------ sessions

    def login(self, username: str, password: str) -> tuple[str, ConsoleUser]:
        """A new session for valid credentials: (the cookie's identifier, the user). AUTH.DENIED otherwise, one
        message for every cause; RATE.LIMITED while the address or the name is blocked."""
        claimed = f"console:{username[:64]}"
        blocked = self._throttle.blocked(claimed)
        if blocked is not None:
            raise self._throttle.refuse(claimed, "console", *blocked)
        account = self._store.operators.get(username) if _NAME.fullmatch(username) else None
        if not self._verify(account, password) or account is None or account.disabled_at is not None:
            self._throttle.failed(claimed, "console", AuthError.code, "bad credentials")
            raise AuthError(_DENIED)
        if self._hasher.check_needs_rehash(account.password_hash):
            self._store.operators.change(
                username, _audit(self._clock(), "operators.rehash", "console", username, {}),
                password_hash=self._hasher.hash(password),
            )  # fmt: skip
        now = self._clock()
        self._store.operators.prune_sessions(now, now - self._idle)
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        record = SessionRecord(session_hash(session_id), username, csrf, now, now, now + self._lifetime)
        self._store.operators.open_session(record, _audit(now, "console.login", username, username, {}))
        return session_id, _user(record, account)

    def resume(self, session_id: str) -> ConsoleUser | None:
        """The user of a live session, or None (unknown, idle too long, expired, account disabled)."""
        if not session_id or len(session_id) > 100:
            return None
        found = self._store.operators.session(session_hash(session_id))
        if found is None:
            return None
        record, account = found
        now = self._clock()
        if account.disabled_at is not None or now >= record.expires_at or now - record.last_seen_at > self._idle:
            self._store.operators.close_session(record.id_hash)
            return None
        if now - record.last_seen_at >= _TOUCH_EVERY:
            self._store.operators.touch_session(record.id_hash, now)
        return _user(record, account)

    def logout(self, user: ConsoleUser) -> None:
        audit = _audit(self._clock(), "console.logout", user.principal.name, user.principal.name, {})
        self._store.operators.close_session(user.session, audit)

    def audit(self, user: ConsoleUser | None, action: str, *, outcome: str = "ok", **detail: Any) -> None:
        """The audit row of one console action (``console.<action>``): who, what, never a secret or a body."""
        actor = user.principal.name if user is not None else "anonymous"
        entry = _audit(self._clock(), f"console.{action}", actor, None, detail, outcome=outcome)
        self._store.audit.add(entry)

    def _verify(self, account: OperatorRecord | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD:
            return False
        try:
            return self._hasher.verify(account.password_hash if account is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False


def csrf_ok(user: ConsoleUser, presented: str) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return bool(presented) and hmac.compare_digest(user.csrf.encode(), presented.encode())


def _user(record: SessionRecord, account: OperatorRecord) -> ConsoleUser:
    principal = Principal(account.username, Role(account.role), account.scope)
    return ConsoleUser(principal, account.display_name or account.username, record.csrf, record.id_hash)


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise RequestError(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})") from None


def _audit(
    at: datetime, action: str, actor: str, subject: str | None, detail: dict[str, Any], *, outcome: str = "ok"
) -> AuditEntry:
    """``system_id`` holds the actor as ``operator:<name>`` (the admin API puts its token's name there); a
    ``doc_id`` or ``organ_id`` in ``detail`` also fills its own column, so the audit log is searchable by document
    and agency for console actions as for intake."""
    full = {**detail, "operator": subject} if subject is not None else detail
    doc_id, organ_id = full.get("doc_id"), full.get("organ_id")
    return AuditEntry(
        at=at,
        action=action[:40],
        outcome=outcome[:40],
        system_id=f"operator:{actor}"[:64],
        doc_id=doc_id if isinstance(doc_id, str) and len(doc_id) <= 32 else None,
        organ_id=organ_id if isinstance(organ_id, str) and len(organ_id) <= 35 else None,
        detail=full,
    )


__all__ = ["LISTING", "ConsoleUser", "OperatorInfo", "Operators", "csrf_ok", "session_hash"]
