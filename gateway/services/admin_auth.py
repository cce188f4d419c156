"""Who may call the admin API, and the audit trail of every call (issue 9 item 5).

Tokens are named and carry a *role* and an optional *scope*:

* ``viewer`` reads; ``operator`` reads and re-drives deliveries; ``admin`` does everything, token management
  included. A role includes every role below it (:meth:`Principal.allows`).
* a scope is an OrganId: the token sees only that agency's registry subtree (``Tracking.visible``); no scope is
  the whole gateway. Only an unscoped ``admin`` manages tokens (a scoped one could otherwise mint itself a wider
  token).

A token is 256 random bits, shown once at creation and stored as its SHA-256 (``admin_tokens.token_hash``): a fast
hash is enough for a secret that long, and it keeps the check one indexed read. The presented value is hashed and
looked up by that hash — the lookup never compares the secret itself, and the stored and computed hashes are
compared again with :func:`hmac.compare_digest`. The legacy ``admin_token`` setting remains a bootstrap token: an
unscoped ``admin`` named ``admin-token``, so an installation can create its first real tokens over the API or keep
working unchanged. Every failure is the same AUTH.DENIED (unknown, revoked or malformed): no enumeration.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gateway.db import AdminTokenRecord, AuditEntry, Store
from gateway.errors import AuthError, NotFoundError, RequestError
from gateway.services.admin_roles import Principal, Role
from gateway.services.paging import Page, PageRequest, page_of

#: The name the ``admin_token`` setting authenticates as (reserved: no stored token may take it).
BOOTSTRAP_NAME: Final = "admin-token"
#: Longer presented tokens are refused before hashing (created tokens are 43 characters).
MAX_TOKEN_CHARS: Final = 512
#: The name the cursors of the token list carry (gateway.services.paging).
LISTING: Final = "admin-tokens"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")
_DENIED: Final = "a valid admin bearer token is required"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a token, as ``admin_tokens.token_hash`` stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as listed (never its hash)."""

    name: str
    role: Role
    scope: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: AdminTokenRecord) -> TokenInfo:
        return cls(r.name, Role(r.role), r.scope, r.created_at, r.revoked_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class AdminAuth:
    """Token management, authentication and the audit of admin calls, over one store."""

    def __init__(self, store: Store, *, bootstrap_token: str = "", clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._bootstrap = token_hash(bootstrap_token) if bootstrap_token else None
        self._clock = clock

    # ------------------------------------------------------------------------------------------ tokens

    def create(self, name: str, role: Role | str, scope: str | None = None) -> tuple[TokenInfo, str]:
        """A new token: its record and the token itself, which is shown once and never stored."""
        if not _NAME.fullmatch(name) or name == BOOTSTRAP_NAME:
            raise RequestError(
                f"bad token name {name!r}: 1–64 of A-Z a-z 0-9 . _ @ : - (not {BOOTSTRAP_NAME!r})", name=name
            )
        try:
            wanted = Role(role)
        except ValueError:
            raise RequestError(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})") from None
        if scope is not None and not self._store.registry.agencies([scope]):
            raise RequestError(f"the scope {scope} is not a registered agency", scope=scope)
        token = secrets.token_urlsafe(32)
        record = AdminTokenRecord(name, token_hash(token), wanted.value, scope, self._clock())
        self._store.admin_tokens.add(record)
        return TokenInfo.of(record), token

    def list_tokens(self, page: PageRequest | None = None) -> Page[TokenInfo]:
        """One page of the tokens, by name (never the tokens themselves: only their hashes are stored)."""
        page = page or PageRequest()
        found = self._store.admin_tokens.tokens_page(after=page.after(LISTING, 1), offset=page.offset, limit=page.limit)
        return page_of(LISTING, found, TokenInfo.of)

    def revoke(self, name: str) -> TokenInfo:
        """Revoke ``name`` at once (every gunicorn worker: the check reads the database each call)."""
        if name == BOOTSTRAP_NAME:
            raise RequestError(f"{BOOTSTRAP_NAME!r} is the admin_token setting: remove the setting to revoke it")
        if not self._store.admin_tokens.revoke(name, self._clock()):
            found = self._store.admin_tokens.get(name)
            if found is None:
                raise NotFoundError(f"no admin token named {name!r}", name=name)
            return TokenInfo.of(found)  # revoked before: revoking again changes nothing
        found = self._store.admin_tokens.get(name)
        assert found is not None
        return TokenInfo.of(found)

    # ------------------------------------------------------------------------------------------ calls

    def authenticate(self, presented: str) -> Principal:
        """The caller a bearer token stands for; AUTH.DENIED for anything else (one message for every cause)."""
        if not presented or len(presented) > MAX_TOKEN_CHARS:
            raise AuthError(_DENIED)
        digest = token_hash(presented)
        if self._bootstrap is not None and hmac.compare_digest(digest, self._bootstrap):
            return Principal(BOOTSTRAP_NAME, Role.ADMIN, None)
        found = self._store.admin_tokens.by_hash(digest)
        if found is None or found.revoked_at is not None or not hmac.compare_digest(found.token_hash, digest):
            raise AuthError(_DENIED)
        return Principal(found.name, Role(found.role), found.scope)

    def audit(self, action: str, *, caller: Principal | None, outcome: str, detail: Mapping[str, Any]) -> None:
        """The audit row of one admin call (``admin.<route>``), refused ones included. ``detail`` holds the method,
        route rule, status and scope — never a token or a query string."""
        self._store.audit.add(
            AuditEntry(
                at=self._clock(),
                action=action[:40],
                outcome=outcome[:40],
                system_id=caller.name if caller is not None else None,
                detail=dict(detail),
            )
        )


__all__ = ["BOOTSTRAP_NAME", "LISTING", "AdminAuth", "Principal", "Role", "TokenInfo", "token_hash"]
