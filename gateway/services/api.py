"""The contract between the edges (SOAP, later REST/VDXP) and the use cases: values and one Protocol.

Every method takes the authenticated ``system_id`` first and enforces access itself, so no edge can
forget to; errors are :class:`gateway.errors.GatewayError` subclasses with stable codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from gateway.edxml.codes import PackageKind, StatusCode
from gateway.edxml.model import Organization, StatusPackage
from gateway.payload import Payload
from gateway.protocols.vdxp import VerifiedRequest

T = TypeVar("T")


class DeliveryState(StrEnum):
    """Transport state of one (document, recipient) delivery — not the business StatusCode."""

    QUEUED = "queued"  # waiting in the recipient's mailbox (or for the worker, for push channels)
    FETCHED = "fetched"  # the recipient's system downloaded it, not yet acknowledged
    DELIVERED = "delivered"  # acknowledged "done" by the recipient's system (or accepted by a push peer)
    FAILED = "failed"  # acknowledged "fail" by the recipient's system (reason kept)
    DEAD = "dead"  # push retries exhausted (issue 4)


class AckOutcome(StrEnum):
    DONE = "done"
    FAIL = "fail"


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted package; the same answer again for a retried identical package."""

    doc_id: str  # the gateway's id of the stored package (like the VDXP axis docId)
    kind: PackageKind
    document_id: str  # business DocumentId (for a status: the DocumentId it is about)
    sha256: str  # hex of the package bytes exactly as received
    received_at: datetime  # timezone-aware UTC
    duplicate: bool  # True when this answers a retry of an already stored identical package
    signed_receipt: bytes  # XML receipt signed by the gateway's key (doc id, sha256, time)


@dataclass(frozen=True)
class LegacyReceipt:
    """A legacy SendDocument / UpdateTraces intake: the receipt and, for a document, its numeric axis id."""

    receipt: Receipt
    axis_id: int | None


@dataclass(frozen=True)
class PendingItem:
    """One waiting delivery in a mailbox; ``delivery_id`` is what GetEdoc/Acknowledge take."""

    delivery_id: str
    doc_id: str
    kind: PackageKind
    sender: str
    recipient: str
    document_id: str
    received_at: datetime
    size: int
    state: DeliveryState
    #: When the recipient's system first downloaded it (FETCHED); None while queued.
    fetched_at: datetime | None = None


@dataclass(frozen=True)
class SentItem:
    """One recipient of a document an agency of the caller sent (VDXP ``getSentEdocList``, edxml.md §11.1)."""

    doc_id: str  # what submit answered (the VDXP DocId)
    kind: PackageKind
    sender: str
    document_id: str
    subject: str | None
    code: str | None  # the document's code ("7816/VPCP-TTĐT"); for a status, the code it answers
    received_at: datetime
    recipient: str
    delivery_id: str
    state: DeliveryState
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    ack_reason: str | None
    #: The latest business status the recipient reported (edocs only).
    status_code: StatusCode | None


@dataclass(frozen=True)
class StatusEntry:
    """One business status event of a document, as reported by (or for) one recipient."""

    document_doc_id: str
    recipient: str  # the agency whose processing the status describes (the reporter; for 13: the receiver)
    reporter: str  # From/OrganId of the status package
    status_code: StatusCode
    description: str | None
    timestamp: datetime | None  # as written in the package (Vietnam local time)
    received_at: datetime
    out_of_order: bool  # e.g. a 02 after a 03 — kept and flagged, never dropped
    emitted_by_gateway: bool  # the gateway emitted it on the receiver's behalf (per-agency option)


@dataclass(frozen=True)
class RecipientView:
    """Per recipient of a document: transport state plus business status history."""

    recipient: str
    delivery_id: str
    state: DeliveryState
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    ack_reason: str | None
    statuses: tuple[StatusEntry, ...]


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    document_id: str
    sender: str
    received_at: datetime
    recipients: tuple[RecipientView, ...]


@dataclass(frozen=True)
class AgencyInfo:
    organ_id: str
    name: str
    parent: str | None
    level: int | None
    channel: str
    active: bool


@dataclass(frozen=True)
class ClientOrigin:
    """Where a request came from, as the edge established it (issue 10 finding 7: per-system source bindings).

    ``address`` is the TCP peer, or — only when the peer is a trusted proxy (``Settings.trusted_proxies``) —
    the address that proxy forwarded; None when it cannot be known. ``cert_fingerprint`` is the SHA-256 (hex)
    of the TLS client certificate a trusted proxy verified and forwarded; None otherwise. Never what the client
    says about itself.
    """

    address: str | None = None
    cert_fingerprint: str | None = None


class GatewayApi(Protocol):
    """What the edges may ask of the gateway."""

    def authenticate_basic(self, username: str, password: str) -> str:
        """The system id, or AuthError."""
        ...

    def authenticate_digest(self, username: str, digest_b64: str, nonce_b64: str, created: str) -> str:
        """WS-Security PasswordDigest (Base64(SHA-1(nonce + created + secret))) with replay checks."""
        ...

    def authenticate_hmac(self, system_id: str, verify: Callable[[str], T], method: str = "vdxp-hmac") -> T:
        """A request signed with the system's secret (VDXP XroadVnpt): ``verify(secret)`` checks it; audited."""
        ...

    def authenticate_legacy(self, organ_id: str, token: str) -> str:
        """The e-doc.vn profile's OrganId + Token (trimmed; legacy-edoc-vn.md §3, §16) → the legacy system's id, or
        AuthError (one message for an unknown OrganId, a disabled system and a wrong token; throttled)."""
        ...

    def authorise_legacy(self, system_id: str, organ_id: str) -> None:
        """May the legacy system send as ``organ_id`` (``From/OrganId`` of SendDocument, UpdateTraces) under its
        ``legacy_scope``: nothing, or AccessError (ACCESS.DENIED) naming the switch to change."""
        ...

    def admit_address(self, source: str) -> None:
        """One request from the client address ``source``, before its body is read: RateLimitedError (with
        ``retry_after``) beyond ``rate_per_address``. Authentication throttles failures per address on its own,
        reading the address the web front set (:func:`gateway.services.limits.source_scope`)."""
        ...

    def admit_vdxp(self, request: VerifiedRequest, origin: ClientOrigin) -> None:
        """The system's VDXP replay protection for a request whose HMAC verified (``strict``: window and
        single use; ``legacy-sdk``: source binding): AuthError kinds when refused. Call it inside ``verify`` of
        :meth:`authenticate_hmac`, so that a refusal is audited with the other authentication failures."""
        ...

    def system_secret(self, system_id: str) -> str:
        """The decrypted secret of an active system (the VDXP HMAC key), or AuthError."""
        ...

    def submit(
        self,
        system_id: str,
        data: bytes | Payload,
        expected: PackageKind | None = None,
        *,
        declared_sender: str | None = None,
    ) -> Receipt:
        """Intake 1–8 for an edoc or status package (``expected`` refuses the other kind; ``declared_sender``,
        the sender a transport names outside the package — VDXP ``from`` — must equal ``From/OrganId``)."""
        ...

    def pending(self, system_id: str, organ_id: str, kind: PackageKind, limit: int = 100) -> list[PendingItem]: ...

    def pending_for_system(
        self,
        system_id: str,
        kind: PackageKind,
        limit: int = 100,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingItem]:
        """Waiting deliveries of EVERY mailbox the system may read (VDXP ``getReceivedEdocList``), oldest first."""
        ...

    def delivery_state(self, system_id: str, delivery_id: str) -> DeliveryState:
        """The state of a delivery in a mailbox of the system (NOT_FOUND otherwise); changes nothing."""
        ...

    def sent_list(
        self,
        system_id: str,
        kind: PackageKind,
        *,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 5000,
    ) -> list[SentItem]:
        """Per-recipient state of documents the system's agencies sent (VDXP ``getSentEdocList``), newest first."""
        ...

    def fetch(self, system_id: str, delivery_id: str) -> bytes:
        """The package bytes exactly as received; marks the delivery fetched."""
        ...

    def fetch_payload(self, system_id: str, delivery_id: str) -> Payload:
        """:meth:`fetch` as a :class:`~gateway.payload.Payload` (a big package spooled, not held whole: issue 14);
        the caller closes it."""
        ...

    def acknowledge(self, system_id: str, delivery_id: str, outcome: AckOutcome, reason: str | None = None) -> None: ...

    def document_view(
        self, system_id: str, *, document_id: str | None = None, doc_id: str | None = None
    ) -> DocumentView:
        """Per-recipient delivery state and status history; visible to the sender's and recipients' systems."""
        ...

    def agencies(self, parent: str | None = None) -> list[AgencyInfo]: ...

    # -- the legacy e-doc.vn profile (gateway.services.legacy): the caller's OWN OrganId, numeric axis ids ----------

    def legacy_submit(self, system_id: str, package: bytes, kind: PackageKind) -> LegacyReceipt:
        """SendDocument / UpdateTraces as a canonical package through intake; a document gets its axis id."""
        ...

    def legacy_pending(self, system_id: str, limit: int = 1000) -> list[int]:
        """GetPendingDocumentIds: axis ids waiting in the legacy system's own mailbox, oldest first."""
        ...

    def legacy_fetch(self, system_id: str, axis_id: int) -> bytes:
        """GetDocument: the package (marks the delivery fetched); NOT_FOUND for any id not waiting for the caller."""
        ...

    def legacy_confirm(self, system_id: str, axis_id: int) -> None:
        """ConfirmReceived: the mailbox acknowledgement (``done``); repeating it changes nothing."""
        ...

    def legacy_traces(self, system_id: str, since: datetime | None, limit: int = 500) -> list[StatusPackage]:
        """GetTraces: consume mode (no ``since``: waiting statuses, acknowledged now) or replay mode; newest first."""
        ...

    def legacy_organizations(self) -> list[Organization]:
        """GetOrganizations: the active registered agencies."""
        ...
