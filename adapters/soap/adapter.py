"""The ``soap`` channel: push a package to an agency's SOAP endpoint with zeep (gateway.md "Delivery").

The peer implements the reference receiver contract (:mod:`adapters.soap.contract`). Its agency ``endpoint`` is
either the service address (``https://qlvb.example.gov.vn/edoc-receiver``) — the committed
``wsdl/edoc-receiver.wsdl`` is bound to it, nothing is fetched — or a WSDL URL (``…?wsdl``), fetched once from the
peer through the same guarded transport and used with the address it declares. One zeep client per WSDL location is
kept in a small thread-safe LRU cache.

Every failure is translated here, once (STYLE.md rule 5), into a :class:`~gateway.ports.DeliveryError` whose code
and ``retryable`` flag the worker acts on:

=============================================  ==========================  =========
what happened                                  error                       retried?
=============================================  ==========================  =========
connect/read timeout, answer too slow          ``DELIVERY.TIMEOUT``        yes
connection refused/reset, DNS, TLS             ``DELIVERY.UNREACHABLE``    yes
``soap:Server`` fault, HTTP 5xx without XML    ``DELIVERY.PEER_ERROR``     yes
HTML, garbage, not the contract's answer       ``DELIVERY.PROTOCOL``       yes
``soap:Client`` fault, ``accepted=false``,     ``DELIVERY.REFUSED``        no: dead-lettered
HTTP 413
=============================================  ==========================  =========

Answers are read with a size cap and parsed by zeep with DTDs, entities and external references forbidden.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions

from adapters.soap.contract import BINDING, OPERATION, WSDL_PATH, delivery_result, receive_request
from gateway.config import Settings
from gateway.ports import (
    DeliveryError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
)

#: Largest answer (or peer WSDL) read from a peer; the contract's answer is a few hundred bytes.
DEFAULT_MAX_ANSWER_BYTES: Final = 1024 * 1024
#: zeep clients kept (one per WSDL location).
DEFAULT_CLIENTS: Final = 32
_MAX_ANSWER_TEXT = 500


class _AnswerTooLarge(Exception):
    pass


class _SlowAnswer(Exception):
    pass


class _GuardedTransport(zeep.Transport):
    """zeep's transport with (connect, read) timeouts, a cap on what is read, and a deadline on the whole answer
    (a peer trickling bytes must not hold a worker past its lease)."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, max_bytes: int) -> None:
        timeouts = (connect_timeout, read_timeout)
        super().__init__(timeout=timeouts, operation_timeout=timeouts, session=requests.Session())
        self._close_session = True
        self._max = max_bytes
        self._read_timeout = read_timeout

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        response = self.session.post(
            address, data=message, headers=headers, timeout=self.operation_timeout, stream=True
        )
        response._content = self._read(response)  # what zeep's process_reply reads
        media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if response.status_code >= 400 and not media.endswith("xml"):
            # An error page (a proxy's 502, a framework's HTML 500): zeep would try to read it as a SOAP answer.
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status_code}", status_code=response.status_code, content=response.content
            )
        return response

    def _load_remote_data(self, url: str) -> bytes:
        response = self.session.get(url, timeout=self.load_timeout, stream=True)
        content = self._read(response)
        response.raise_for_status()
        return content

    def _read(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max:
            response.close()
            raise _AnswerTooLarge(int(declared))
        deadline = time.monotonic() + self._read_timeout
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > self._max:
                    raise _AnswerTooLarge(total)
                if time.monotonic() > deadline:
                    raise _SlowAnswer
                chunks.append(chunk)
        except (_AnswerTooLarge, _SlowAnswer):
            response.close()
            raise
        return b"".join(chunks)


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
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_answer = max_answer_bytes
        self._max_clients = max(1, max_clients)
        self._wsdl = wsdl
        self._clients: OrderedDict[str, zeep.Client] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SoapAdapter:
        """The factory the worker's adapter registry calls."""
        return cls(connect_timeout=settings.adapter_connect_timeout, read_timeout=settings.adapter_read_timeout)

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        endpoint = (peer.endpoint or "").strip()
        if not endpoint:
            # Retryable: an operator can add the endpoint, and the delivery then goes out within its budget.
            raise DeliveryError(f"agency {peer.organ_id} has no SOAP endpoint configured", retryable=True)
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeliveryError(f"the SOAP endpoint of {peer.organ_id} is not an http(s) URL", retryable=True)
        try:
            service = self._service(endpoint)
            answer = getattr(service, OPERATION)(**receive_request(package))
        except DeliveryError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        return delivery_result(answer)

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.transport.session.close()

    # ------------------------------------------------------------------------------------------------ clients

    def _service(self, endpoint: str) -> Any:
        if _is_wsdl_url(endpoint):
            client = self._client(endpoint)
            try:
                return client.service
            except (ValueError, LookupError, AttributeError) as exc:
                raise DeliveryProtocolError(f"the peer's WSDL declares no usable service: {exc}") from None
        return self._client(str(self._wsdl)).create_service(BINDING, endpoint)

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
                connect_timeout=self._connect_timeout, read_timeout=self._read_timeout, max_bytes=self._max_answer
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


def _translate(exc: Exception) -> DeliveryError:
    """zeep/requests failures → the DeliveryError the worker acts on (see the module table)."""
    if isinstance(exc, requests.Timeout | _SlowAnswer):
        return DeliveryTimeout(f"the receiver did not answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.ConnectionError):
        return DeliveryUnreachable(f"cannot connect to the receiver ({_reason(exc)})")
    if isinstance(exc, _AnswerTooLarge):
        return DeliveryProtocolError(f"the receiver's answer is larger than the limit ({exc.args[0]} bytes)")
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
    if isinstance(exc, zeep.exceptions.TransportError):
        status = exc.status_code
        answer = f"HTTP {status}: {_snippet(exc.content)}"
        if status == 413:
            return DeliveryRefused("the receiver refuses packages this large (HTTP 413)", peer_answer=answer)
        if status >= 500:
            return DeliveryPeerError(f"the receiver answered HTTP {status} without a SOAP answer", peer_answer=answer)
        return DeliveryProtocolError(f"the receiver answered HTTP {status} without a SOAP answer", peer_answer=answer)
    if isinstance(exc, requests.HTTPError):  # fetching a peer's WSDL
        status = exc.response.status_code if exc.response is not None else 0
        return DeliveryProtocolError(f"the receiver's WSDL could not be loaded (HTTP {status})")
    if isinstance(exc, zeep.exceptions.Error | requests.RequestException | ValueError | LookupError):
        return DeliveryProtocolError(
            f"the receiver's answer is not the contract's answer ({type(exc).__name__})",
            peer_answer=str(exc)[:_MAX_ANSWER_TEXT] or None,
        )
    return DeliveryError(f"unexpected failure calling the receiver ({type(exc).__name__})", retryable=True)


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Connection reset", "certificate verify failed"):
        if marker in text:
            return marker
    return type(exc).__name__


def _snippet(content: Any) -> str:
    if not content:
        return "(empty)"
    raw = content if isinstance(content, bytes) else str(content).encode()
    return raw[:200].decode("utf-8", errors="replace").replace("\n", " ")


__all__ = ["SoapAdapter"]
