"""The ``soap`` channel: push a package to an agency's SOAP endpoint with zeep (gateway.md "Delivery").

The peer implements the reference receiver contract (:mod:`adapters.soap.contract`). Its agency ``endpoint`` is
either the service address (``https://qlvb.example.gov.vn/edoc-receiver``) — the committed
``wsdl/edoc-receiver.wsdl`` is bound to it, nothing is fetched — or a WSDL URL (``…?wsdl``), fetched once from the
peer through the same guarded transport and used with the address it declares. One zeep client per WSDL location is
kept in a small thread-safe LRU cache.

Every failure is translated here, once (STYLE.md rule 5), into a :class:`~gateway.ports.DeliveryError` whose code
and ``retryable`` flag the worker acts on — transport failures by the table every channel shares
(:mod:`adapters.peer_http`), the SOAP answer by its fault code:

=====================================================  ============================================  ============
what happened                                          error                                         retried?
=====================================================  ============================================  ============
no connection within the connect timeout               ``DELIVERY.TIMEOUT`` (``sent=False``)         yes
no answer within the read timeout, answer still        ``DELIVERY.TIMEOUT`` (``sent=True``: outcome  yes, same id
arriving at the deadline, connection broken after      unknown, the peer may have stored it)
it was made
connection refused, DNS, TLS                           ``DELIVERY.UNREACHABLE``                      yes
``soap:Server`` fault, HTTP 5xx/408/425/429 w/o XML    ``DELIVERY.PEER_ERROR``                       yes
HTML, garbage, a redirect (not followed), another 4xx  ``DELIVERY.PROTOCOL``                         yes
without XML, too large
``soap:Client`` fault, ``accepted=false``, HTTP 413    ``DELIVERY.REFUSED``                          no: dead
no endpoint, or not an http(s) URL                     ``DELIVERY.CONFIG``                           yes
=====================================================  ============================================  ============

The read timeout (and the deadline on the whole answer) is the adapter's unless the worker asks for another for one
attempt (``OutgoingPackage.read_timeout``): cached zeep clients are shared by the worker's threads, so the override
is per thread, on the transport (:meth:`_GuardedTransport.answer_timeout`), never on the shared client.
Answers are read with a size cap and parsed by zeep with DTDs, entities and external references forbidden.

Memory (issue 14): the package reaches the adapter spooled when it is big, but zeep builds the whole request — the
bytes (``OutgoingPackage.data``), their base64 text, the lxml envelope and its serialisation — before the first
byte goes out. Measured in the worker process (``tests/test_push_big.py``, SQLite and PostgreSQL alike): a 20 MB
package costs about +124 MiB (6.5× the package) per send in flight, a 10 MB one +63 MiB; with
``delivery_peer_concurrency`` 4 to one peer that is ~0.5 GB for four 20 MB packages at once. Streaming it would mean
writing the envelope ourselves around a base64 encoder fed from the spool file (as the SOAP edge's GetEdoc answer
does) instead of zeep: not done yet — VDXP streams (:mod:`adapters.vdxp.client`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions

from adapters.peer_http import (
    DEFAULT_CONNECTIONS_PER_HOST,
    AnswerTooLarge,
    SlowAnswer,
    classify_status,
    delivery_error,
    mount_pools,
    pool_size,
    read_answer,
    transport_error,
)
from adapters.soap.contract import BINDING, OPERATION, WSDL_PATH, delivery_result, receive_request
from gateway.config import Settings
from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryResult,
    OutgoingPackage,
    Peer,
)

#: Largest answer (or peer WSDL) read from a peer; the contract's answer is a few hundred bytes.
DEFAULT_MAX_ANSWER_BYTES: Final = 1024 * 1024
#: zeep clients kept (one per WSDL location).
DEFAULT_CLIENTS: Final = 32
_MAX_ANSWER_TEXT = 500


class _GuardedTransport(zeep.Transport):
    """zeep's transport with (connect, read) timeouts, a cap on what is read, a deadline on the whole answer (a peer
    trickling bytes must not hold a worker past its lease), keep-alive pools sized for concurrent sends, and a
    per-thread read timeout override (:meth:`answer_timeout`)."""

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_bytes: int, connections_per_host: int
    ) -> None:
        timeouts = (connect_timeout, read_timeout)
        session = mount_pools(requests.Session(), connections_per_host=connections_per_host)
        super().__init__(timeout=timeouts, operation_timeout=timeouts, session=session)
        self._close_session = True
        self._max = max_bytes
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._call = threading.local()  # this thread's override; the client (and this transport) are shared

    @contextmanager
    def answer_timeout(self, seconds: float | None) -> Iterator[None]:
        """Within the block, this thread's calls wait ``seconds`` for the answer (None: the transport's own)."""
        previous = getattr(self._call, "read_timeout", None)
        self._call.read_timeout = seconds
        try:
            yield
        finally:
            self._call.read_timeout = previous

    def _answer_seconds(self) -> float:
        override = getattr(self._call, "read_timeout", None)
        return self._read_timeout if override is None else override

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        read_timeout = self._answer_seconds()
        response = self.session.post(
            address,
            data=message,
            headers=headers,
            timeout=(self._connect_timeout, read_timeout),
            stream=True,
            allow_redirects=False,
        )
        response._content = read_answer(response, max_bytes=self._max, seconds=read_timeout)  # zeep reads this
        media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if response.status_code >= 300 and not media.endswith("xml"):
            # An error page (a proxy's 502, a framework's HTML 500), a redirect: zeep would read it as a SOAP answer.
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status_code}", status_code=response.status_code, content=response.content
            )
        return response

    def _load_remote_data(self, url: str) -> bytes:
        response = self.session.get(url, timeout=self.load_timeout, stream=True)
        content = read_answer(response, max_bytes=self._max, seconds=self._read_timeout)
        response.raise_for_status()
        return content


class SoapAdapter:
    """:class:`gateway.ports.PeerAdapter` for the ``soap`` channel (thread-safe)."""

    channel: ClassVar[str] = "soap"

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_clients: int = DEFAULT_CLIENTS,
        wsdl: Path = WSDL_PATH,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_answer = max_answer_bytes
        self._max_clients = max(1, max_clients)
        self._wsdl = wsdl
        self._connections_per_host = connections_per_host
        self._clients: OrderedDict[str, zeep.Client] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SoapAdapter:
        """The factory the worker's adapter registry calls."""
        return cls(
            connect_timeout=settings.adapter_connect_timeout,
            read_timeout=settings.adapter_read_timeout,
            connections_per_host=pool_size(settings),
        )

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        endpoint = (peer.endpoint or "").strip()
        if not endpoint:
            # Retryable: an operator can add the endpoint, and the delivery then goes out within its budget.
            raise DeliveryConfigError(f"agency {peer.organ_id} has no SOAP endpoint configured")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeliveryConfigError(f"the SOAP endpoint of {peer.organ_id} is not an http(s) URL")
        try:
            client, service = self._service(endpoint)
            with client.transport.answer_timeout(package.read_timeout):
                answer = getattr(service, OPERATION)(**receive_request(package))
        except DeliveryError:
            raise
        except _TRANSLATED as exc:
            raise _translate(exc) from exc
        # Anything else (a bug here or in zeep) propagates as is: the engine records DELIVERY.INTERNAL with its trace.
        return delivery_result(answer)

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.transport.session.close()

    # ------------------------------------------------------------------------------------------------ clients

    def _service(self, endpoint: str) -> tuple[Any, Any]:
        """``(client, service proxy)`` for ``endpoint``; the client carries the transport to set timeouts on."""
        if _is_wsdl_url(endpoint):
            client = self._client(endpoint)
            try:
                return client, client.service
            except (ValueError, LookupError, AttributeError) as exc:
                raise DeliveryProtocolError(f"the peer's WSDL declares no usable service: {exc}") from None
        client = self._client(str(self._wsdl))
        return client, client.create_service(BINDING, endpoint)

    def _client(self, location: str) -> zeep.Client:
        with self._lock:
            client = self._clients.get(location)
            if client is not None:
                self._clients.move_to_end(location)
                return client
        # Built outside the lock: loading a peer's WSDL is network I/O. Two threads may build one each; one wins.
        client = zeep.Client(
            location,
            transport=_GuardedTransport(
                connect_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
                max_bytes=self._max_answer,
                connections_per_host=self._connections_per_host,
            ),
            settings=zeep.Settings(
                strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
            ),
        )
        evicted: list[zeep.Client] = []
        with self._lock:
            current = self._clients.setdefault(location, client)
            self._clients.move_to_end(location)
            while len(self._clients) > self._max_clients:
                evicted.append(self._clients.popitem(last=False)[1])
        if current is not client:
            evicted.append(client)
        for old in evicted:
            old.transport.session.close()
        return current


def _is_wsdl_url(endpoint: str) -> bool:
    query = urlsplit(endpoint).query
    return query.split("&", 1)[0].split("=", 1)[0].lower() == "wsdl"


#: What :func:`_translate` knows how to read; any other exception is a bug, not the peer's answer.
_TRANSLATED: Final = (
    requests.RequestException,
    AnswerTooLarge,
    SlowAnswer,
    zeep.exceptions.Error,
    ValueError,
    LookupError,
)


def _translate(exc: Exception) -> DeliveryError:
    """zeep/requests failures → the DeliveryError the worker acts on (see the module table)."""
    if isinstance(exc, zeep.exceptions.Fault):
        code = str(exc.code or "")
        if not code:  # an XML error answer that is not a SOAP Fault
            return DeliveryPeerError(
                "the receiver answered an error without a SOAP fault", peer_answer=_snippet(exc.detail)
            )
        answer = f"{code}: {exc.message}"[:_MAX_ANSWER_TEXT]
        if code.rsplit(":", 1)[-1].startswith("Client"):
            return DeliveryRefused(f"the receiver refused the package ({code})", peer_answer=answer)
        return DeliveryPeerError(f"the receiver reported an error ({code or 'no fault code'})", peer_answer=answer)
    if isinstance(exc, zeep.exceptions.TransportError):  # an HTTP error without a SOAP answer
        status = exc.status_code
        return delivery_error(
            classify_status(status, contract_answer=False),
            f"the receiver answered HTTP {status} without a SOAP answer",
            peer_answer=f"HTTP {status}: {_snippet(exc.content)}",
            http_status=status,
        )
    if isinstance(exc, requests.HTTPError):  # fetching a peer's WSDL
        status = exc.response.status_code if exc.response is not None else 0
        return DeliveryProtocolError(f"the receiver's WSDL could not be loaded (HTTP {status})")
    if isinstance(exc, requests.RequestException | AnswerTooLarge | SlowAnswer):
        return transport_error(exc, "the receiver")
    return DeliveryProtocolError(
        f"the receiver's answer is not the contract's answer ({type(exc).__name__})",
        peer_answer=str(exc)[:_MAX_ANSWER_TEXT] or None,
    )


def _snippet(content: Any) -> str:
    if not content:
        return "(empty)"
    raw = content if isinstance(content, bytes) else str(content).encode()
    return raw[:200].decode("utf-8", errors="replace").replace("\n", " ")


__all__ = ["SoapAdapter"]
