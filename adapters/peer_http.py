"""The HTTP layer every push channel shares (SOAP, REST, VDXP and the coming legacy adapter): ONE error taxonomy,
connection pools sized for concurrent sends, and capped, deadline-bound answer reads.

Every channel used to translate ``requests`` failures itself, and they disagreed (issue 11 finding 5: REST recorded
timeouts and HTTP 500 as ``DELIVERY.FAILED``; SOAP as ``DELIVERY.TIMEOUT`` / ``DELIVERY.PEER_ERROR``). Here is the
one table; an adapter adds only what its contract's answer says (a SOAP fault, a VDXP ``FAIL``):

===================================================  =============================================  ============
what happened                                        error                                          retried?
===================================================  =============================================  ============
connect timeout (no TCP connection in time)          ``DELIVERY.TIMEOUT``, ``sent=False``           yes
read timeout, answer trickling past the deadline     ``DELIVERY.TIMEOUT``, ``sent=True`` (unknown)  yes, same id
connection dropped after it was established (reset,  ``DELIVERY.TIMEOUT``, ``sent=True`` (unknown)  yes, same id
peer closed it before or while answering)
connection refused, DNS, TLS handshake, proxy        ``DELIVERY.UNREACHABLE``                       yes
HTTP 5xx, 408, 425, 429                              ``DELIVERY.PEER_ERROR``                        yes
HTTP 413; other 4xx when the status *is* the answer  ``DELIVERY.REFUSED``                           no: dead
other 4xx without the contract's answer (a wrong     ``DELIVERY.PROTOCOL``                          yes
URL, a proxy page), 1xx/3xx, garbage, too large
endpoint missing or not an http(s) URL, no key       ``DELIVERY.CONFIG``                            yes
===================================================  =============================================  ============

Why a connect timeout is ``DELIVERY.TIMEOUT`` with ``sent=False`` (not ``DELIVERY.UNREACHABLE``): the interface
(:class:`gateway.ports.DeliveryTimeout`) defines ``sent=False`` for exactly this case — the request never left, so
nothing can have been delivered — and operators read "timeout" for a peer that drops packets (a firewall) rather
than refuses them. Either way it is retried and counts as the peer's trouble.

Unknown outcome, conservatively: once a TCP connection is up, ``requests`` cannot tell "the body was not fully
sent" from "the body arrived and the peer died before answering" (urllib3 swallows a ``BrokenPipeError`` while
sending, to read an early answer, and then reports ``RemoteDisconnected`` / a reset as a ``ProtocolError`` —
"Connection aborted."). Any such failure is therefore *unknown* (``sent=True``): the peer may have stored the
package, so the worker retries with the same message id and never calls the delivery "failed". Only failures that
happen before a connection exists (refused, DNS, TLS handshake, connect timeout) are "nothing was sent". An answer
that is not HTTP at all (a bad status line) came from a peer that read our request: ``DELIVERY.PROTOCOL``.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryTimeout,
    DeliveryUnreachable,
)

#: HTTP statuses that say "later" rather than "no": retried like a 5xx.
RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
#: Hosts whose connection pools a session keeps (urllib3's PoolManager evicts the least recently used beyond this,
#: closing its sockets; requests' default of 10 churns as soon as a worker talks to more than 10 peers).
DEFAULT_HOST_POOLS: Final = 64
#: Idle keep-alive connections kept per host: the worker's thread count bounds concurrent sends to one host (several
#: agencies may share one endpoint host, so the per-agency limit alone does not).
DEFAULT_CONNECTIONS_PER_HOST: Final = 16
_CHUNK: Final = 64 * 1024


class Failure(StrEnum):
    """What went wrong with a call, in the delivery worker's terms (one :mod:`gateway.ports` error each)."""

    TIMEOUT = "timeout"  # no answer in time (``sent`` says whether the request may have reached the peer)
    UNREACHABLE = "unreachable"  # no connection could be made: nothing was sent
    PROTOCOL = "protocol"  # an answer that is not the contract's answer (HTML, garbage, redirect, too large)
    PEER = "peer"  # the peer's temporary trouble (5xx, 408, 425, 429, a SOAP Server fault)
    REFUSED = "refused"  # the peer's final word about this package
    CONFIG = "config"  # our side cannot send as configured (no endpoint, not an http(s) URL, no credentials)


_ERRORS: Final[dict[Failure, type[DeliveryError]]] = {
    Failure.TIMEOUT: DeliveryTimeout,
    Failure.UNREACHABLE: DeliveryUnreachable,
    Failure.PROTOCOL: DeliveryProtocolError,
    Failure.PEER: DeliveryPeerError,
    Failure.REFUSED: DeliveryRefused,
    Failure.CONFIG: DeliveryConfigError,
}


@dataclass(frozen=True)
class Classified:
    """A transport failure, classified: its :class:`Failure`, whether the request may have reached the peer, and a
    short loggable reason (never the peer's text: that goes in ``peer_answer``)."""

    failure: Failure
    sent: bool
    reason: str


class AnswerTooLarge(Exception):
    """The answer is larger than the reader's cap (``args[0]``: bytes declared or read so far)."""


class SlowAnswer(Exception):
    """The answer was still arriving at the reader's deadline (a peer trickling bytes)."""


def classify_exception(exc: BaseException) -> Classified:
    """A ``requests`` (or :func:`read_answer`) failure → the table in the module docstring.

    When in doubt whether the request reached the peer, ``sent=True``: a duplicate is de-duplicated by the
    receiver on the message id, a wrong "never sent" could dead-letter a delivered package as failed.
    """
    if isinstance(exc, SlowAnswer):
        return Classified(Failure.TIMEOUT, True, "the answer was still arriving at the deadline")
    if isinstance(exc, AnswerTooLarge):
        return Classified(Failure.PROTOCOL, True, f"the answer is larger than the limit ({exc.args[0]} bytes)")
    if isinstance(exc, requests.ConnectTimeout):  # before ReadTimeout/ConnectionError: it is both a Timeout and one
        return Classified(Failure.TIMEOUT, False, "no connection within the connect timeout")
    if isinstance(exc, requests.ReadTimeout):
        return Classified(Failure.TIMEOUT, True, "no answer within the read timeout")
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return Classified(Failure.UNREACHABLE, False, _short(exc))
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return Classified(Failure.CONFIG, False, f"the endpoint is not a usable URL ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return Classified(Failure.CONFIG, False, "the endpoint is not an http(s) URL")
    if isinstance(exc, requests.TooManyRedirects | requests.exceptions.ContentDecodingError):
        return Classified(Failure.PROTOCOL, True, type(exc).__name__)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return Classified(Failure.TIMEOUT, True, "the answer was cut off; outcome unknown")
    if isinstance(exc, requests.ConnectionError):
        return _classify_urllib3(exc.args[0] if exc.args else None)
    if isinstance(exc, urllib3.exceptions.HTTPError):  # raised by read_answer's urllib3 reads, unwrapped
        return _classify_urllib3(exc)
    return Classified(Failure.TIMEOUT, True, f"unexpected HTTP failure ({type(exc).__name__}); outcome unknown")


def _classify_urllib3(inner: Any) -> Classified:
    """What a urllib3 error (the cause ``requests`` wraps) says: see the module docstring."""
    if isinstance(inner, urllib3.exceptions.MaxRetryError):  # a connection could not be made (after retries)
        inner = inner.reason
    if isinstance(inner, urllib3.exceptions.ReadTimeoutError):  # waiting for, or streaming, the answer
        return Classified(Failure.TIMEOUT, True, "no answer within the read timeout")
    if isinstance(inner, urllib3.exceptions.NewConnectionError):  # refused, unreachable network; DNS is a subclass
        return Classified(Failure.UNREACHABLE, False, _short(inner))
    if isinstance(inner, urllib3.exceptions.ConnectTimeoutError):
        return Classified(Failure.TIMEOUT, False, "no connection within the connect timeout")
    if isinstance(inner, urllib3.exceptions.SSLError | urllib3.exceptions.ProxyError):
        return Classified(Failure.UNREACHABLE, False, _short(inner))
    if isinstance(inner, urllib3.exceptions.DecodeError):
        return Classified(Failure.PROTOCOL, True, "the answer's content encoding is broken")
    if isinstance(inner, urllib3.exceptions.ProtocolError):
        cause = inner.args[1] if len(inner.args) > 1 else None
        if isinstance(cause, http.client.HTTPException) and not isinstance(cause, OSError | http.client.IncompleteRead):
            # BadStatusLine, LineTooLong…: the peer read our request and answered something that is not HTTP.
            # (RemoteDisconnected is both a BadStatusLine and a ConnectionResetError: the OSError test keeps it out.)
            return Classified(Failure.PROTOCOL, True, f"the answer is not HTTP ({type(cause).__name__})")
        return Classified(
            Failure.TIMEOUT,
            True,
            f"the connection broke before the whole answer ({type(cause or inner).__name__}); outcome unknown",
        )
    # Anything else once a connection may exist: unknown, conservatively.
    return Classified(Failure.TIMEOUT, True, f"the connection failed ({type(inner).__name__}); outcome unknown")


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No route to host",
        "Network is unreachable",
        "certificate verify failed",
    ):
        if marker in text:
            return marker
    return type(exc).__name__


def classify_status(status: int, *, contract_answer: bool) -> Failure:
    """A non-2xx HTTP status → its :class:`Failure`.

    ``contract_answer`` says whether the status itself is the peer's answer (the REST contract: "other 4xx are
    permanent") or came without the contract's answer body (a SOAP peer answering an HTML 404: a wrong URL or a
    proxy's page, not a verdict about this package — retried as a protocol error so an operator can fix the URL).
    """
    if status >= 500 or status in RETRYABLE_STATUS:
        return Failure.PEER
    if status == 413:  # the peer (or its proxy) will never take a package this large
        return Failure.REFUSED
    if 400 <= status < 500:
        return Failure.REFUSED if contract_answer else Failure.PROTOCOL
    return Failure.PROTOCOL  # 1xx, 3xx (redirects are not followed: a moved endpoint is an operator's matter)


def delivery_error(
    failure: Failure, message: str, *, sent: bool = True, peer_answer: str | None = None, **detail: Any
) -> DeliveryError:
    """The :mod:`gateway.ports` error for ``failure``; ``sent`` only matters (and is only passed) for a timeout."""
    cls = _ERRORS[failure]
    if cls is DeliveryTimeout:
        return DeliveryTimeout(message, sent=sent, peer_answer=peer_answer, **detail)
    return cls(message, peer_answer=peer_answer, **detail)


def transport_error(exc: BaseException, what: str, **detail: Any) -> DeliveryError:
    """``classify_exception`` then :func:`delivery_error`: ``"<what>: <reason>"``."""
    c = classify_exception(exc)
    return delivery_error(c.failure, f"{what}: {c.reason}", sent=c.sent, **detail)


def mount_pools(
    session: requests.Session,
    *,
    connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
    host_pools: int = DEFAULT_HOST_POOLS,
    max_retries: Retry | int = 0,
) -> requests.Session:
    """Size ``session``'s keep-alive pools for concurrent sends, and return it.

    ``pool_block`` stays False: a thread beyond ``connections_per_host`` opens one more connection (closed after
    use) instead of waiting for a free one with no deadline. ``requests.Session`` is shared by the worker's
    threads: urllib3's pools are thread-safe, and the adapters keep no per-request state on the session.
    """
    per_host = max(1, int(connections_per_host))
    for prefix in ("http://", "https://"):
        session.mount(
            prefix,
            HTTPAdapter(pool_connections=max(1, int(host_pools)), pool_maxsize=per_host, max_retries=max_retries),
        )
    return session


def pool_size(settings: Any) -> int:
    """Connections kept per host for ``settings``: the worker's thread count, at least the per-peer concurrency
    (``delivery_threads`` / ``delivery_peer_concurrency``; read with defaults so older settings still work)."""
    threads = int(getattr(settings, "delivery_threads", DEFAULT_CONNECTIONS_PER_HOST))
    per_peer = int(getattr(settings, "delivery_peer_concurrency", 4))
    return max(threads, per_peer, 1)


def read_answer(response: requests.Response, *, max_bytes: int, seconds: float) -> bytes:
    """The body of a ``stream=True`` response, at most ``max_bytes`` (:class:`AnswerTooLarge`) and whole within
    ``seconds`` from now (:class:`SlowAnswer`).

    ``requests``' read timeout bounds each socket read, not the answer, so a peer sending a byte a second would hold
    a worker's thread (and its lease) indefinitely; and ``iter_content``/``read(n)`` block until ``n`` bytes came,
    so a deadline checked between their chunks is passed unnoticed (a 60-byte answer trickled over 12 s went
    through a 1 s deadline). ``read1`` returns what one socket read brings, so the deadline is checked at least
    once per read timeout. urllib3's own errors (a read timeout, a cut-off body) propagate for
    :func:`classify_exception`. On success the body is also the response's ``content`` and the connection goes
    back to the pool; on failure the response is closed.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise AnswerTooLarge(int(declared))
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            total += len(chunk)
            if total > max_bytes:
                raise AnswerTooLarge(total)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise SlowAnswer
    except BaseException:
        response.close()
        raise
    body = b"".join(chunks)
    response._content = body  # what .content/.text/.json() read
    response._content_consumed = True
    response.raw.release_conn()
    return body


__all__ = [
    "RETRYABLE_STATUS",
    "AnswerTooLarge",
    "Classified",
    "Failure",
    "SlowAnswer",
    "classify_exception",
    "classify_status",
    "delivery_error",
    "mount_pools",
    "pool_size",
    "read_answer",
    "transport_error",
]
