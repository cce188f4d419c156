"""Admin API roles and the authenticated caller: what the admin edge checks, without the database behind it.

Kept apart from :mod:`gateway.services.admin_auth` (which holds the store) so the web edge can import the values it
checks without loading the database layer at import time (:mod:`gateway.web.wsgi` builds the services).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.errors import AccessError


class Role(StrEnum):
    """Admin API roles, weakest first (``admin_tokens.role`` values)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


@dataclass(frozen=True)
class Principal:
    """An authenticated admin API caller."""

    name: str
    role: Role
    scope: str | None

    def allows(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    def require(self, role: Role, what: str) -> None:
        """ACCESS.DENIED (403) unless the caller's role reaches ``role``."""
        if not self.allows(role):
            raise AccessError(
                f"{what} needs the {role.value} role; token {self.name!r} is {self.role.value}",
                required_role=role.value,
                role=self.role.value,
            )

    def to_dict(self) -> dict[str, Any]:
        """What ``GET /admin/v1/me`` answers: enough for a console to show or hide its actions."""
        return {
            "name": self.name,
            "role": self.role.value,
            "scope": self.scope,
            "can": {
                "read": True,
                "redrive": self.allows(Role.OPERATOR),
                "manage_tokens": self.allows(Role.ADMIN) and self.scope is None,
            },
        }


__all__ = ["Principal", "Role"]
