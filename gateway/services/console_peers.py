"""The peers whose circuit breaker is open, for the console's dead-letter page (issue 12 item 1, "Dead letters and
retries"): why deliveries to a peer wait or die, read with the same use case as ``edoc-gateway deliveries peers``.

A peer is an endpoint (or the upstream axis), shared by agencies of any subtree, so the circuits are axis-wide
infrastructure: only an unscoped caller sees them; a scoped one gets none (its own deliveries' attempt logs
still show every error they met).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.db import Store
from gateway.services.delivery_admin import PeerCircuit, peer_circuits


@dataclass(frozen=True)
class PeerCircuits:
    """:func:`~gateway.services.delivery_admin.peer_circuits` over one store, limited to unscoped callers."""

    store: Store

    def not_closed(self, *, scope: str | None) -> list[PeerCircuit]:
        """Peers whose circuit is open or probing; empty for a scoped caller (see the module docstring)."""
        if scope is not None:
            return []
        return peer_circuits(self.store)


__all__ = ["PeerCircuits"]
