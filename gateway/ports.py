"""Small interfaces between the delivery engine and peer adapters (STYLE.md: adapters implement these and
import only gateway's model, ports and errors).

A delivery hands an adapter the exact stored bytes (:class:`~gateway.payload.Payload`: a package above 1 MiB is a
spool file read from the store when its send starts, so that an adapter that can stream it never holds it whole)
plus routing facts; the adapter returns a
:class:`DeliveryResult` or raises :class:`DeliveryError` — ``retryable`` says whether the worker should try
again (timeouts, connection errors, 5xx) or dead-letter at once (the peer refused the package for good).
``delivery_id`` is stable across attempts so that receivers can de-duplicate (gateway.md Delivery).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from gateway.edxml.codes import PackageKind
from gateway.errors import GatewayError
from gateway.payload import Payload


class DeliveryError(GatewayError):
    """A failed attempt to hand a package to a peer; translated once, in the adapter (STYLE.md rule 5)."""

    #: The base class is for adapters' own subclasses; raised as itself it is an unclassified failure, a defect
    #: (every classified failure has its own class below: one taxonomy for every channel).
    code: ClassVar[str] = "DELIVERY.INTERNAL"
    message_vi: ClassVar[str] = "Gửi gói tin tới hệ thống nhận không thành công"

    def __init__(self, message: str, *, retryable: bool = True, peer_answer: str | None = None, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retryable = retryable  # type: ignore[misc]  # per instance: transient or permanent
        self.peer_answer = peer_answer


# The kinds of failure, each with its own wire code, so the attempt log and the operators branch on the code
# (STYLE.md: errors as codes that pair a wire code with "business or technical").


class DeliveryTimeout(DeliveryError):
    """The peer did not answer in time: retried.

    ``sent`` says whether the request may have reached the peer: a read timeout (the package went out, the answer
    did not come back) leaves the outcome *unknown* — the peer may have stored it — so the worker retries with the
    same message id and a longer read timeout (``OutgoingPackage.read_timeout``) and never calls it "failed"; a
    connect timeout (``sent=False``) is known not to have delivered anything.
    """

    code: ClassVar[str] = "DELIVERY.TIMEOUT"
    message_vi: ClassVar[str] = "Hệ thống nhận không trả lời trong thời gian cho phép"

    def __init__(
        self, message: str, *, sent: bool = True, retryable: bool = True, peer_answer: str | None = None, **detail: Any
    ) -> None:
        super().__init__(message, retryable=retryable, peer_answer=peer_answer, **detail)
        self.sent = sent


class DeliveryUnreachable(DeliveryError):
    """No connection to the peer (refused, reset, DNS, TLS): retried."""

    code: ClassVar[str] = "DELIVERY.UNREACHABLE"
    message_vi: ClassVar[str] = "Không kết nối được tới hệ thống nhận"


class DeliveryProtocolError(DeliveryError):
    """The peer answered something that is not the contract's answer (HTML, garbage, an HTTP error): retried."""

    code: ClassVar[str] = "DELIVERY.PROTOCOL"
    message_vi: ClassVar[str] = "Hệ thống nhận trả lời không đúng giao thức"


class DeliveryPeerError(DeliveryError):
    """The peer reported a failure on its side (a SOAP ``Server`` fault, an HTTP 5xx with a proper body): retried."""

    code: ClassVar[str] = "DELIVERY.PEER_ERROR"
    message_vi: ClassVar[str] = "Hệ thống nhận báo lỗi tạm thời"


class DeliveryConfigError(DeliveryError):
    """Our side cannot send to this peer as configured (no endpoint, no credentials): retried, since an operator
    can fix the registry or the configuration file while the retry budget lasts; never counts against the peer."""

    code: ClassVar[str] = "DELIVERY.CONFIG"
    message_vi: ClassVar[str] = "Cấu hình gửi tới hệ thống nhận chưa đầy đủ"


class DeliveryRefused(DeliveryError):
    """The peer refused this package for good (a SOAP ``Client`` fault, ``accepted=false``): dead-lettered at once."""

    code: ClassVar[str] = "DELIVERY.REFUSED"
    message_vi: ClassVar[str] = "Hệ thống nhận từ chối gói tin"

    def __init__(self, message: str, *, retryable: bool = False, peer_answer: str | None = None, **detail: Any) -> None:
        super().__init__(message, retryable=retryable, peer_answer=peer_answer, **detail)


@dataclass(frozen=True)
class Peer:
    """Where and how to reach the receiving agency (from the registry)."""

    organ_id: str
    channel: str  # "soap" | "rest" | "vdxp" | "edocvn"
    endpoint: str | None
    #: Channel credentials (e.g. the REST webhook HMAC key, the VDXP system id/secret); adapter-specific keys.
    credentials: dict[str, str]


@dataclass(frozen=True)
class OutgoingPackage:
    """One delivery attempt's input.

    ``payload`` is the package exactly as stored, open for the attempt and closed by the worker when it ends (issue
    14): in memory up to 1 MiB, else a spool file read from the store in pieces. An adapter whose protocol can send
    a body in pieces streams it (``payload.open()``, ``payload.chunks()``; its ``sha256`` and ``size`` are counted
    already); one that needs the bytes whole reads :attr:`data` once — that costs the package's size in memory for
    the attempt, so read it once, never per use."""

    delivery_id: str  # stable message id: receivers de-duplicate on it
    doc_id: str
    kind: PackageKind
    sender: str
    recipient: str
    document_id: str
    payload: Payload = field(repr=False)  # the package exactly as received (class docstring)
    attempt: int  # 1 for the first attempt
    #: The read timeout (seconds) for this attempt, when the worker wants one other than the adapter's default:
    #: after an unknown outcome (a read timeout), the same message goes again with a longer one. Adapters honour it.
    read_timeout: float | None = None

    @property
    def data(self) -> bytes:
        """The package bytes whole: free for a small package, a full read of the spool file for a big one."""
        return self.payload.read()


@dataclass(frozen=True)
class DeliveryResult:
    """A successful hand-over."""

    peer_reference: str | None = None  # the peer's id for the message (e.g. the VDXP DocId)
    peer_answer: str | None = None  # a short, loggable summary of the peer's answer


@dataclass(frozen=True)
class IncomingPackage:
    """A package fetched from a peer by polling (VDXP getReceivedEdocList/getEdoc)."""

    peer_reference: str
    kind: PackageKind
    data: bytes
    #: The agency the peer holds this item for (VDXP lists one item per recipient: its ``to``), when it says;
    #: intake checks it is one of ours, so an item for an agency we do not host is refused, not silently dropped.
    recipient: str | None = None


class PeerAdapter(Protocol):
    """Deliver stored packages to peers of one channel."""

    channel: str

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult: ...

    def close(self) -> None: ...


class PollingAdapter(Protocol):
    """Optionally, fetch packages waiting for us at a peer, and tell it what became of them."""

    def poll(self, kind: PackageKind, limit: int = 100) -> Iterable[IncomingPackage]: ...

    def acknowledge(self, peer_reference: str, ok: bool, reason: str | None = None) -> None: ...
