"""The use cases of the legacy e-doc.vn SOAP profile (issue 13; legacy-edoc-vn.md §5, §6): what the legacy edge
(:mod:`gateway.web.legacy`) asks beyond the calls every edge makes — the numeric axis ids, the caller's OWN
mailbox, and GetTraces' consume / replay semantics. Everything goes through the same intake, mailbox, status relay
and audit as the other edges: this module only maps the axis's vocabulary onto them.

**Who is asking.** Every method takes the authenticated ``system_id`` and reads the legacy OrganId from the
system's own record, never from the request: a legacy system sees the mailbox of the OrganId it logged in as —
not of every agency it may act for (Bkav's axis answers GetPendingDocumentIds "for the authenticated OrganId",
§3), and the mailbox's own rule (:mod:`gateway.services.mailbox`) is checked again underneath.

**Axis ids** (§5). Legacy clients know a document by a decimal ``long``; :mod:`gateway.db.legacy` allocates one
per document on first need (SendDocument's answer, a listing). GetDocument and ConfirmReceived take it; a number
never allocated, a number of a document not addressed to the caller, and a number of a status are the same
``NOT_FOUND`` (no existence oracle).

**GetTraces** (§6.8): statuses about documents the caller sent are the caller's waiting STATUS deliveries.
Without a TimeStamp (consume mode) they are fetched and acknowledged in the same request — each is answered once;
with one (replay mode) every status delivered to the caller whose own Timestamp is at or after it, acknowledged or
not, and nothing changes. Both newest Timestamp first, bounded by :data:`MAX_TRACES`.

**UpdateTraces' duplicate rule** (§6.7 step 2). Bkav refuses a second trace with the same (From, ResponseFor,
Code, StatusCode) unless the code is 05. We do not: an identical retry is idempotent in intake (the same status
package, the same receipt, nothing stored twice — so a client that resends after a lost answer gets success, not
``M.UpdateTraces``), and a repeat with new content is history the status relay keeps (flagged when out of order,
bounded by ``max_statuses_per_day`` / ``max_statuses_total``). A status is evidence; refusing it helps nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

from gateway.db import Store
from gateway.edxml import Organization, PackageKind, StatusPackage, read_bytes
from gateway.errors import AuthError, NotFoundError
from gateway.services.api import AckOutcome, LegacyReceipt, Receipt
from gateway.services.mailbox import Mailbox

#: Most ids one GetPendingDocumentIds answer lists (the client gets, confirms, and asks again).
MAX_PENDING_IDS: Final = 1000
#: Most statuses one GetTraces answer carries (consume mode: the rest wait for the next call).
MAX_TRACES: Final = 500
#: The largest axis id a client can send (a Java ``long``).
MAX_AXIS_ID: Final = 2**63 - 1


class LegacyExchange:
    """The legacy use cases (thread-safe). ``submit`` is intake's (:meth:`gateway.services.intake.Intake.submit`)."""

    def __init__(self, store: Store, mailbox: Mailbox, submit: Callable[..., Receipt]) -> None:
        self._store = store
        self._mailbox = mailbox
        self._submit = submit

    def legacy_organ(self, system_id: str) -> str:
        """The OrganId the legacy system logs in as (AuthError if it is not an active legacy system)."""
        system = self._store.registry.system(system_id)
        if system is None or not system.active or system.legacy_organ_id is None:
            raise AuthError(f"system {system_id} is not an active legacy system")
        return system.legacy_organ_id

    def legacy_submit(self, system_id: str, package: bytes, kind: PackageKind) -> LegacyReceipt:
        """SendDocument (an edoc) or UpdateTraces (a status), rendered as a canonical package: intake 1–8."""
        receipt = self._submit(system_id, package, kind)
        if receipt.kind is not PackageKind.EDOC:
            return LegacyReceipt(receipt, None)
        return LegacyReceipt(receipt, self._store.legacy.numbers_for([receipt.doc_id])[receipt.doc_id])

    def legacy_pending(self, system_id: str, limit: int = MAX_PENDING_IDS) -> list[int]:
        """GetPendingDocumentIds: the axis ids of the documents waiting in the caller's own mailbox, oldest first."""
        organ = self.legacy_organ(system_id)
        items = self._mailbox.pending(system_id, organ, PackageKind.EDOC, max(1, min(limit, MAX_PENDING_IDS)))
        numbers = self._store.legacy.numbers_for([i.doc_id for i in items])
        return list(dict.fromkeys(numbers[i.doc_id] for i in items))

    def legacy_fetch(self, system_id: str, axis_id: int) -> bytes:
        """GetDocument: the stored package of the caller's delivery of document ``axis_id``; marks it fetched."""
        return self._mailbox.fetch(system_id, self._delivery(system_id, axis_id))

    def legacy_confirm(self, system_id: str, axis_id: int) -> None:
        """ConfirmReceived: the mailbox acknowledgement (``done``; the receiver's "emit 01" applies). A repeated
        confirmation succeeds and changes nothing."""
        self._mailbox.acknowledge(system_id, self._delivery(system_id, axis_id), AckOutcome.DONE)

    def legacy_traces(self, system_id: str, since: datetime | None, limit: int = MAX_TRACES) -> list[StatusPackage]:
        """GetTraces (module docstring): consume mode without ``since``, replay mode with it (naive Vietnam time)."""
        organ = self.legacy_organ(system_id)
        limit = max(1, min(limit, MAX_TRACES))
        if since is not None:
            rows = self._store.legacy.statuses_delivered(organ, since, limit)
            return _newest_first([_status(r.raw) for r in rows])
        out = []
        for item in self._mailbox.pending(system_id, organ, PackageKind.STATUS, limit):
            raw = self._mailbox.fetch(system_id, item.delivery_id)
            self._mailbox.acknowledge(system_id, item.delivery_id, AckOutcome.DONE)
            out.append(_status(raw))
        return _newest_first(out)

    def legacy_organizations(self) -> list[Organization]:
        """GetOrganizations (§6.2): the active registered agencies, by OrganId. Only what the registry knows
        (OrganId, name); the contact fields it does not keep are omitted, as Bkav omits NULL columns."""
        return [
            Organization(organ_id=a.organ_id, organ_name=a.name)
            for a in sorted(self._store.registry.list_agencies(None), key=lambda a: a.organ_id)
            if a.active
        ]

    def _delivery(self, system_id: str, axis_id: int) -> str:
        organ = self.legacy_organ(system_id)
        doc_id = self._store.legacy.doc_for(axis_id) if 0 < axis_id <= MAX_AXIS_ID else None
        delivery_id = self._store.legacy.delivery_of(doc_id, organ) if doc_id else None
        if delivery_id is None:
            raise NotFoundError(f"no document {axis_id} waits for {organ}", axis_id=axis_id)
        return delivery_id


def _status(raw: bytes) -> StatusPackage:
    pkg = read_bytes(raw)
    assert isinstance(pkg, StatusPackage), "a STATUS delivery carries a status package"
    return pkg


def _newest_first(statuses: Sequence[StatusPackage]) -> list[StatusPackage]:
    """Newest status Timestamp first (§6.8); statuses without one last, in arrival order."""
    stamped = sorted((s for s in statuses if s.timestamp is not None), key=lambda s: s.timestamp, reverse=True)  # type: ignore[arg-type,return-value]
    return [*stamped, *(s for s in statuses if s.timestamp is None)]


__all__ = ["MAX_PENDING_IDS", "MAX_TRACES", "LegacyExchange"]
