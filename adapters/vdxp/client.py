"""A VDXP REST client (edxml.md §11): the calls of the VNPT SDK, over ``requests``, in :mod:`gateway.protocols.vdxp`.

It talks to the national axis, to a provincial axis, or to another edoc-gateway's ``/vdxp`` edge alike. What it
does differently from the SDK, on purpose:

* each call signs only its own parameters with a fresh timestamp (the SDK re-sends stale parameters and one
  timestamp for the life of its client object — a server may act on the former and reject the latter), and
  the timestamps one client signs strictly increase (at the format's millisecond grain): two identical calls in
  the same millisecond would otherwise be one signature, the second refused by a server that accepts each
  signature once (our edge's ``strict`` systems, issue 10 finding 7);
* ``sendEdoc`` posts the package bytes exactly, without the SDK's trailing CRLF (``append_crlf=True`` restores
  it for a server that turns out to need it); ``hash-file`` is written in the SDK's form, the one form the
  national axis is known to accept (our own edge accepts both);
* a big package (a spooled :class:`~gateway.payload.Payload`, issue 14) is streamed: the body is read from the spool
  file in pieces with an exact ``Content-Length`` (:class:`adapters.request_body.PayloadBody`), and ``hash-file``
  comes from the payload's SHA-256, counted in pieces when the store spooled it — the only thing the signature
  binds the body with (edxml.md §11.2: the HMAC covers the headers, ``hash-file`` the body). A 20 MB ``sendEdoc``
  costs the worker about 1 MiB of buffers, not the package;
* the signed header is ASCII-only (``\\uXXXX``) and parameter headers are sent as UTF-8 bytes, so a Vietnamese
  ``description`` survives (``http.client`` would encode str headers as Latin-1).

Retries: only connection failures before anything was sent (connection refused, connect timeout) are retried,
``connect_retries`` times with a short backoff — such a request cannot have reached the server. A read timeout,
a reset after sending, or a 5xx is NOT retried here: the delivery worker owns retries (exponential backoff,
dead-lettering), and retrying in both places would multiply attempts and could send a package twice to a
server that does not de-duplicate. Errors are :class:`VdxpError`, with a :class:`Failure` kind, ``sent`` and
``retryable`` for the worker; transport failures are classified by the table every channel shares
(:mod:`adapters.peer_http`: a read timeout or a connection broken after it was made is an *unknown* outcome).

Responses are read with a size cap (``max_response_bytes``) and a deadline on the whole answer (the read timeout:
a trickling answer must not hold a worker's thread) before JSON parsing; redirects are not followed. A call may
wait longer than the client's read timeout for one answer (``read_timeout=`` on :meth:`VdxpClient.send_edoc`).
The client is shared by the worker's threads: its session's keep-alive pool is sized by ``connections_per_host``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import requests
from urllib3.util.retry import Retry

from adapters.peer_http import (
    DEFAULT_CONNECTIONS_PER_HOST,
    RETRYABLE_STATUS,
    AnswerTooLarge,
    Failure,
    SlowAnswer,
    classify_exception,
    classify_status,
    mount_pools,
    read_answer,
)
from adapters.request_body import PayloadBody
from gateway.edxml.codes import PackageKind
from gateway.edxml.dates import VN_TZ
from gateway.errors import GatewayError
from gateway.payload import Payload
from gateway.protocols import vdxp
from gateway.protocols.vdxp import AgencyItem, Operation, ReceivedItem

#: getEdoc of a 50 MB package is ~67 MB of base64; the national agency list is ~10 MB.
DEFAULT_MAX_RESPONSE_BYTES = 200 * 1024 * 1024


class VdxpError(GatewayError):
    """A VDXP call that failed: the peer answered FAIL (``error_code`` = its ``ErrorCode``) or could not be reached.

    ``retryable`` is true for every :class:`Failure` but ``REFUSED``; ``sent`` (meaningful for ``TIMEOUT``) says
    whether the request may have reached the peer — False only when no connection was ever made.
    """

    code: ClassVar[str] = "VDXP.ERROR"
    message_vi: ClassVar[str] = "Trục VDXP trả lỗi hoặc không liên lạc được"

    def __init__(
        self, message: str, failure: Failure, *, answer: str | None = None, sent: bool = True, **detail: Any
    ) -> None:
        super().__init__(message, **detail)
        self.failure = failure
        self.sent = sent
        self.retryable = failure is not Failure.REFUSED  # type: ignore[misc]  # per instance
        #: A loggable summary of what the peer answered (:func:`gateway.protocols.vdxp.answer_summary`).
        self.answer = answer

    @property
    def error_code(self) -> str | None:
        """The peer's ``ErrorCode`` (passed as ``error_code=``), when it answered FAIL."""
        return self.detail.get("error_code")

    @property
    def http_status(self) -> int | None:
        """The HTTP status of the peer's answer (passed as ``http_status=``), when there was one."""
        return self.detail.get("http_status")


class VdxpClient:
    """One system (``system_id`` + ``secret``) talking to one VDXP endpoint; thread-safe like ``requests.Session``."""

    def __init__(
        self,
        endpoint: str,
        system_id: str,
        secret: str,
        *,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        connect_retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
        user_agent: str = vdxp.SDK_USER_AGENT,
        append_crlf: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not endpoint or not system_id or not secret:
            raise ValueError("a VDXP client needs an endpoint, a system id and a secret")
        self.endpoint = endpoint.rstrip("/")
        self.system_id = system_id
        self._secret = secret
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_response = max_response_bytes
        self._user_agent = user_agent
        self._append_crlf = append_crlf
        self._clock = clock or (lambda: datetime.now(VN_TZ))
        self._last_stamp: datetime | None = None
        self._stamp_lock = threading.Lock()
        retry = Retry(
            total=connect_retries,
            connect=connect_retries,
            read=False,  # a read error re-raises as itself (ReadTimeout), never retried here
            status=0,
            other=0,
            redirect=0,
            backoff_factor=0.2,
            allowed_methods=None,
            raise_on_status=False,
        )
        self._session = mount_pools(requests.Session(), connections_per_host=connections_per_host, max_retries=retry)

    # ------------------------------------------------------------------------------------------ operations

    def send_edoc(
        self,
        package: bytes | Payload,
        *,
        sender: str,
        kind: PackageKind,
        to: str | None = None,
        read_timeout: float | None = None,
    ) -> str:
        """``sendEdoc``: the axis's DocId for the package. ``to`` is passed through verbatim when given (the
        SDK sends it as raw JSON text; routing is by the package's own ``To``). ``read_timeout`` replaces the
        client's for this call (the worker waits longer after an unknown outcome). A spooled payload is streamed
        (module docstring); bytes, and a payload in memory, are posted as they are."""
        params = vdxp.send_edoc_params(package, sender=sender, kind=kind, to=to)
        trailer = vdxp.CRLF if self._append_crlf else b""
        body: bytes | PayloadBody
        if isinstance(package, Payload) and not package.in_memory:
            body = PayloadBody(package, trailer)
        else:
            data = package.read() if isinstance(package, Payload) else package
            body = data + trailer if trailer else data
        try:
            answer = self._call(Operation.SEND_EDOC, params, body, read_timeout=read_timeout)
        finally:
            if isinstance(body, PayloadBody):
                body.close()
        doc_id = vdxp.answer_doc_id(answer)
        if doc_id is None:
            raise VdxpError(
                "sendEdoc answered OK without a DocId", Failure.PROTOCOL, answer=vdxp.answer_summary(answer)
            )
        return doc_id

    def received_list(
        self, kind: PackageKind, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[ReceivedItem]:
        """``getReceivedEdocList``: what waits for this system's agencies (items without a ``docId`` skipped)."""
        answer = self._call(Operation.GET_RECEIVED_EDOC_LIST, vdxp.received_list_params(kind, since=since, until=until))
        parsed = (ReceivedItem.from_wire(i, message_type=PackageKind(kind).value) for i in _items(answer))
        return [item for item in parsed if item is not None]

    def get_edoc(self, doc_id: str) -> bytes:
        """``getEdoc``: the package bytes (the answer's ``data`` is their base64)."""
        answer = self._call(Operation.GET_EDOC, vdxp.get_edoc_params(doc_id))
        try:
            return vdxp.answer_package(answer)
        except ValueError as exc:
            raise VdxpError(f"getEdoc answered {exc}", Failure.PROTOCOL, answer=vdxp.answer_summary(answer)) from None

    def update_status(self, doc_id: str, status: vdxp.UpdateStatus | str, description: str | None = None) -> None:
        """``updateStatus``: ``done`` | ``fail`` | ``processing`` (ValueError otherwise) for a received message."""
        self._call(Operation.UPDATE_STATUS, vdxp.update_status_params(doc_id, status, description))

    def sent_list(
        self,
        kind: PackageKind = PackageKind.EDOC,
        *,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """``getSentEdocList``: one item per (document, recipient), with the keys of :class:`vdxp.SentItem`."""
        params = vdxp.sent_list_params(kind, doc_id=doc_id, since=since, until=until)
        return _items(self._call(Operation.GET_SENT_EDOC_LIST, params))

    def agencies(self) -> list[AgencyItem]:
        """``getAgenciesList``: every agency the axis knows."""
        return [AgencyItem.from_wire(a) for a in _items(self._call(Operation.GET_AGENCIES_LIST, {}))]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> VdxpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ HTTP

    def _call(
        self,
        operation: Operation,
        params: Mapping[str, str],
        body: bytes | PayloadBody = b"{}",
        *,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Sign, POST, read (capped, within the read timeout), and check ``status``/``ErrorCode``: the answer
        object, or VdxpError."""
        entries = vdxp.request_entries(
            operation, self.system_id, vdxp.format_timestamp(self._next_stamp()), list(params.items())
        )
        headers = vdxp.signed_headers(self._secret, entries, user_agent=self._user_agent, ascii_only=True)
        wire = {name: value.encode("utf-8") for name, value in headers.items()}
        url = f"{self.endpoint}/{operation.value}"
        wait = self._read_timeout if read_timeout is None else read_timeout
        try:
            resp = self._session.post(
                url,
                data=body,
                headers=wire,
                timeout=(self._connect_timeout, wait),
                stream=True,
                allow_redirects=False,
            )
            with resp:
                raw = read_answer(resp, max_bytes=self._max_response, seconds=wait)
        except (requests.RequestException, AnswerTooLarge, SlowAnswer) as exc:  # one table: adapters.peer_http
            c = classify_exception(exc)
            raise VdxpError(f"{operation.value}: {url}: {c.reason}", c.failure, sent=c.sent) from None
        status = resp.status_code
        answer = vdxp.decode_answer(raw)
        if answer is None:
            raise VdxpError(
                f"{operation.value}: {url} answered HTTP {status} without a VDXP answer",
                Failure.PROTOCOL if status < 300 else classify_status(status, contract_answer=False),
                http_status=status,
                answer=raw[:200].decode("utf-8", "replace"),
            )
        if status == 200 and vdxp.is_ok(answer):
            return answer
        if status in (200, 413):
            failure = Failure.REFUSED  # the peer's final word about this request
        elif status >= 500 or status in RETRYABLE_STATUS:
            failure = Failure.PEER
        else:
            failure = Failure.PROTOCOL  # 404/405/411/415…: the wrong URL or a broken client, not this package
        error_code = vdxp.text(answer.get("ErrorCode"))
        description = vdxp.text(answer.get("ErrorDesc"))[:500]
        raise VdxpError(
            f"{operation.value}: {url} answered {error_code or 'FAIL'}: {description or 'no description'}",
            failure,
            error_code=error_code or None,
            http_status=status,
            answer=vdxp.answer_summary(answer),
        )

    def _next_stamp(self) -> datetime:
        """Now, or 1 ms after the last timestamp this client signed when the clock has not moved past it."""
        now = self._clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        with self._stamp_lock:
            if self._last_stamp is not None and now <= self._last_stamp:
                now = self._last_stamp + timedelta(milliseconds=1)
            self._last_stamp = now
        return now


def _items(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    try:
        return vdxp.answer_items(answer)
    except ValueError as exc:
        raise VdxpError(str(exc), Failure.PROTOCOL, answer=vdxp.answer_summary(answer)) from None


__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Failure", "VdxpClient", "VdxpError"]
