"""A client of a legacy e-doc.vn axis (legacy-edoc-vn.md §6): the eight operations over ``requests``, with the wire
built and read by :mod:`gateway.protocols.edocvn` only.

It talks to Bkav's provincial axis and to another edoc-gateway's legacy edge alike (nothing here depends on which).
What it does, and why:

* every request is ``multipart/related; type="text/xml"`` with the envelope as root part — the one real client of the
  axis sends even its one-part requests so (§6.2 [ext]); SendDocument adds one part per attachment (§6.3, §7.1). The
  body is a :class:`~gateway.protocols.edocvn.MultipartBody`: a file-like object with a known length, read by the
  HTTP stack block by block, so a 20 MB attachment is never joined into one request string (and the peer gets a
  ``Content-Length``: legacy proxies may refuse chunked uploads);
* ``SOAPAction`` carries the bare operation name (unquoted, as the real client sends it; ``quoted_action=True``
  writes the SOAP 1.1 quoted form, which Bkav's transport also accepts, §2.1);
* an answer is either plain ``text/xml`` or ``multipart/related`` (SwA, §2.4): the latter is split by
  :func:`gateway.protocols.edocvn.read_related` with the parts spooled to disk (``spool_dir``), within
  ``max_response_bytes`` and within the read timeout for the whole answer (a trickling peer must not hold a worker);
* a refusal is an :class:`EdocvnError` carrying Bkav's ``Code`` and ``Description``. Bkav answers some failures with
  an empty SOAP Body (§4.3) — that is a refusal too (code ``EMPTY_BODY``, ours).

Classification (:class:`adapters.peer_http.Failure`), what the delivery worker does with it:

========================================================  ====================================================
what happened                                             failure
========================================================  ====================================================
transport (timeouts, refused, reset, not HTTP, too large)  the table every channel shares (:mod:`.peer_http`)
HTTP status other than 200 (no Report to read)            5xx/408/425/429 ``PEER``, 413 ``REFUSED``, else
                                                          ``PROTOCOL``
200 but not a SOAP 1.1 envelope (an HTML page, garbage)   ``PROTOCOL``
``IsSuccess=false`` with no error entry on a wrapper-auth  ``CONFIG`` — Bkav's answer to a wrong OrganId/Token
operation, or code ``Permission`` / ``CheckSignature``    (§3): our configuration, fixable by an operator
``IsSuccess=false`` with no entry on SendDocument          ``PEER`` — Bkav's failed file save (§7.2)
``IsSuccess=false`` with a code in :data:`TRANSIENT_CODES` ``PEER`` (the axis's database trouble)
any other ``IsSuccess=false``; an empty Body              ``REFUSED`` — the axis's final word
========================================================  ====================================================

Two refusals mean "already done" and are answered as such by the callers that can tell (the adapter): ``M.Exist``
on SendDocument (the axis stores a new document once per edXML DocumentId, §6.3 step 5) and ``M.UpdateTraces``
"Exist trace on esb" on UpdateTraces (§6.7 step 2) — see :attr:`EdocvnError.already_there`.

No retries here beyond connection attempts that cannot have sent anything (``connect_retries``): the worker owns
retries. The token is never logged nor put in an error message.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Final

import requests
import urllib3.exceptions
from urllib3.util.retry import Retry

from adapters.edocvn.errors import EdocvnError, Traces
from adapters.peer_http import (
    DEFAULT_CONNECTIONS_PER_HOST,
    AnswerTooLarge,
    Failure,
    SlowAnswer,
    classify_exception,
    classify_status,
    mount_pools,
    read_answer,
)
from gateway.edxml.model import EdocPackage, Organization, StatusPackage
from gateway.errors import GatewayError
from gateway.protocols import edocvn
from gateway.protocols.edocvn import Answer, Operation, Payload, Related, Report

log = logging.getLogger(__name__)

#: A GetDocument answer carries the files as Base64 text (§7.3): 50 MB of files is ~67 MB on the wire.
DEFAULT_MAX_RESPONSE_BYTES: Final = 200 * 1024 * 1024
#: The envelope part of an answer (the parts beside it are spooled files, not parsed XML).
MAX_ENVELOPE_BYTES: Final = 16 * 1024 * 1024
#: Report codes that say "the axis's own trouble, try later" (§6.7 ``M.UpdateStatus`` "Error update status !!!": a
#: failed database write). Everything else Bkav reports is about the request.
TRANSIENT_CODES: Final = frozenset({"M.UpdateStatus"})
#: Codes Bkav gives a wrong credential (§3).
CREDENTIAL_CODES: Final = frozenset({"Permission", "CheckSignature", "CheckPermission"})
#: Our code for Bkav's silent refusal (§4.3): not one of Bkav's strings.
EMPTY_BODY: Final = "EMPTY_BODY"
USER_AGENT: Final = "edoc-gateway-legacy-client"


class EdocvnClient:
    """One login (``organ_id`` + ``token``) at one legacy endpoint; thread-safe like ``requests.Session``.

    ``payload`` says how this axis's GetDocument parts carry the files: ``"base64-text"`` (Bkav, §7.3: Base64 text
    labelled ``binary``) or ``"raw"``. ``send_payload`` is what SendDocument writes: ``"raw"`` (what Bkav's intake
    stores, §7.1) unless the peer wants Base64 text too."""

    def __init__(
        self,
        endpoint: str,
        organ_id: str,
        token: str,
        *,
        payload: Payload = edocvn.PAYLOAD_BASE64_TEXT,
        send_payload: Payload = edocvn.PAYLOAD_RAW,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        connect_retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
        spool_dir: str | None = None,
        quoted_action: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        if not endpoint or not organ_id or not token:
            raise ValueError("a legacy client needs an endpoint, an OrganId and a token")
        self.endpoint = endpoint
        self.organ_id = organ_id
        self._token = token
        self.payload = payload
        self.send_payload = send_payload
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_response = max_response_bytes
        self._spool_dir = spool_dir
        self._quoted = quoted_action
        retry = Retry(total=connect_retries, connect=connect_retries, read=False, status=0, other=0, redirect=0,
                      backoff_factor=0.2, allowed_methods=None, raise_on_status=False)  # fmt: skip
        self._session = session or mount_pools(
            requests.Session(), connections_per_host=connections_per_host, max_retries=retry
        )

    # ------------------------------------------------------------------------------------------ operations

    def check_permission(self) -> None:
        """CheckPermission (§6.1): returns when the OrganId/Token pair is valid, else EdocvnError (``CONFIG``)."""
        self._simple(Operation.CHECK_PERMISSION)

    def organizations(self) -> list[Organization]:
        """GetOrganizations (§6.2): the axis's whole registry."""
        return list(self._simple(Operation.GET_ORGANIZATIONS).organizations)

    def send_document(self, pkg: EdocPackage, *, read_timeout: float | None = None) -> str:
        """SendDocument with SwA (§6.3): the axis document id of the new document."""
        body = edocvn.send_document_request(pkg, self.organ_id, self._token, payload=self.send_payload)
        answer, related = self._call(Operation.SEND_DOCUMENT, body, read_timeout=read_timeout)
        _close(related)
        self._check(answer)
        if not answer.document_id:
            raise EdocvnError("SendDocument answered IsSuccess=true without a DocumentId", Failure.PROTOCOL)
        return answer.document_id

    def pending(self) -> list[str]:
        """GetPendingDocumentIds (§6.4): axis ids waiting for this OrganId (they stay until ConfirmReceived)."""
        return list(self._simple(Operation.GET_PENDING_DOCUMENT_IDS).document_ids)

    def get_document(self, document_id: str) -> EdocPackage:
        """GetDocument (§6.5): the document with its attachments (decoded per :attr:`payload`). Does not take it:
        ConfirmReceived does."""
        request = edocvn.simple_request(Operation.GET_DOCUMENT, self.organ_id, self._token, document_id=document_id)
        answer, related = self._call(Operation.GET_DOCUMENT, request)
        try:
            self._check(answer)
            parts = related.attachments if related is not None else {}
            return edocvn.edoc_from_answer(answer.header, answer.manifest, parts, self.payload)
        except EdocvnError:
            raise
        except GatewayError as exc:  # a document our model cannot read: the axis's answer, final
            raise EdocvnError(
                f"GetDocument {document_id}: the document cannot be read: {exc.code}: {exc.message}",
                Failure.REFUSED,
                answer=exc.code,
            ) from None
        finally:
            _close(related)

    def confirm_received(self, document_id: str) -> None:
        """ConfirmReceived (§6.6): the document leaves our pending list; the axis records status 01 for its sender."""
        self._simple(Operation.CONFIRM_RECEIVED, document_id=document_id)

    def update_traces(self, status: StatusPackage) -> None:
        """UpdateTraces (§6.7): report a status; credentials in ``Header/Signature``, ``Status`` unqualified."""
        body = edocvn.MultipartBody(edocvn.update_traces_request(status, self.organ_id, self._token))
        answer, related = self._call(Operation.UPDATE_TRACES, body)
        _close(related)
        self._check(answer)

    def traces(self, since: datetime | None = None) -> Traces:
        """GetTraces (§6.8): without ``since`` the axis's *consume* mode (each status once: what it returns is
        disabled there); with ``since`` its replay mode (every status timestamped at or after it, nothing changes)."""
        answer = self._simple(Operation.GET_TRACES, since=since)
        statuses, unreadable = [], []
        for el in answer.statuses:
            code = (el.findtext("{*}StatusCode") or "").strip()
            if edocvn.is_send_failure(el):
                unreadable.append((code, "the axis's own 'send failed' trace (999), not a QCVN 102 status"))
                continue
            try:
                statuses.append(edocvn.read_status(el))
            except GatewayError as exc:
                unreadable.append((code, f"{exc.code}: {exc.message}"))
        return Traces(tuple(statuses), tuple(unreadable))

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> EdocvnClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ HTTP

    def _simple(self, operation: Operation, *, document_id: str | None = None, since: datetime | None = None) -> Answer:
        request = edocvn.simple_request(operation, self.organ_id, self._token, document_id=document_id, since=since)
        answer, related = self._call(operation, request)
        _close(related)
        self._check(answer)
        return answer

    def _call(
        self, operation: Operation, body: bytes | edocvn.MultipartBody, *, read_timeout: float | None = None
    ) -> tuple[Answer, Related | None]:
        """POST one request; the answer read (its parts spooled, open: the caller closes them)."""
        if isinstance(body, bytes):
            body = edocvn.MultipartBody(body)
        headers = {
            "SOAPAction": edocvn.soap_action_header(operation, quoted=self._quoted),
            "Content-Type": body.content_type,
            "Accept": "text/xml, multipart/related",
            "User-Agent": USER_AGENT,
        }
        wait = self._read_timeout if read_timeout is None else read_timeout
        what = f"{operation.value}: {self.endpoint}"
        try:
            resp = self._session.post(
                self.endpoint,
                data=body,
                headers=headers,
                timeout=(self._connect_timeout, wait),
                stream=True,
                allow_redirects=False,
            )
            with resp:
                return self._read(operation, resp, wait, what)
        except (requests.RequestException, urllib3.exceptions.HTTPError, AnswerTooLarge, SlowAnswer) as exc:
            c = classify_exception(exc)  # one table for every channel: adapters.peer_http
            raise EdocvnError(f"{what}: {c.reason}", c.failure, sent=c.sent) from None

    def _read(
        self, operation: Operation, resp: requests.Response, wait: float, what: str
    ) -> tuple[Answer, Related | None]:
        ctype = resp.headers.get("Content-Type", "")
        status = resp.status_code
        if status != 200:
            try:
                raw = read_answer(resp, max_bytes=64 * 1024, seconds=wait)
            except AnswerTooLarge:
                raw = b""
            raise EdocvnError(
                f"{what} answered HTTP {status}", classify_status(status, contract_answer=False),
                http_status=status, answer=_summary(raw),
            )  # fmt: skip
        related: Related | None = None
        try:
            if edocvn.is_multipart(ctype):
                reader = _DeadlineReader(resp, self._max_response, wait)
                related = edocvn.read_related(reader, ctype, max_bytes=self._max_response, spool_dir=self._spool_dir)
                envelope = _root_bytes(related)
            else:
                envelope = read_answer(resp, max_bytes=MAX_ENVELOPE_BYTES, seconds=wait)
            answer = edocvn.read_answer(envelope, operation, max_bytes=MAX_ENVELOPE_BYTES)
        except (AnswerTooLarge, SlowAnswer):
            _close(related)
            raise
        except GatewayError as exc:  # not multipart/related, not XML, not a SOAP 1.1 envelope, no result element
            _close(related)
            raise EdocvnError(f"{what}: not an e-doc.vn answer ({exc.code}: {exc.message})", Failure.PROTOCOL,
                              http_status=status) from None  # fmt: skip
        except BaseException:
            _close(related)
            raise
        return answer, related

    def _check(self, answer: Answer) -> None:
        """The answer's refusal, classified (module table), or nothing."""
        op = answer.operation
        if answer.empty:
            raise EdocvnError(
                f"{op.value}: the axis answered an empty SOAP Body (its silent refusal of a request it cannot "
                "process, legacy-edoc-vn.md §4.3)",
                Failure.REFUSED,
                report=Report(False, (edocvn.ReportError(EMPTY_BODY, "empty SOAP Body"),)),
            )
        if answer.ok:
            return
        report = answer.report
        assert report is not None
        codes = {e.code for e in report.errors}
        if not report.errors:
            failure = Failure.PEER if op is Operation.SEND_DOCUMENT else Failure.CONFIG
        elif codes & CREDENTIAL_CODES:
            failure = Failure.CONFIG
        elif codes <= TRANSIENT_CODES:
            failure = Failure.PEER
        else:
            failure = Failure.REFUSED
        first = report.errors[0] if report.errors else None
        said = f"{first.code}: {first.description[:300]}" if first else "IsSuccess=false without an error entry"
        if not report.errors and failure is Failure.CONFIG:
            said += " (the axis's answer to a wrong OrganId/Token)"
        raise EdocvnError(f"{op.value} refused by the axis: {said}", failure, report=report, answer=said)


class _DeadlineReader:
    """``read(n)`` over a streamed response, at most ``max_bytes`` in all and finished within ``seconds``: what
    :func:`adapters.peer_http.read_answer` enforces, for a body split as it arrives instead of held whole."""

    def __init__(self, resp: requests.Response, max_bytes: int, seconds: float) -> None:
        self._raw = resp.raw
        self._max = max_bytes
        self._deadline = time.monotonic() + seconds
        self._seen = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._raw.read1(size if size > 0 else 64 * 1024, decode_content=True)
        self._seen += len(chunk)
        if self._seen > self._max:
            raise AnswerTooLarge(self._seen)
        if chunk and time.monotonic() > self._deadline:
            raise SlowAnswer
        return chunk


def _root_bytes(related: Related) -> bytes:
    if related.root.size > MAX_ENVELOPE_BYTES:
        raise AnswerTooLarge(related.root.size)
    return related.root.read()


def _close(related: Related | None) -> None:
    if related is not None:
        related.close()


def _summary(raw: bytes) -> str:
    return " ".join(raw[:200].decode("utf-8", "replace").split())


__all__ = [
    "CREDENTIAL_CODES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "EMPTY_BODY",
    "TRANSIENT_CODES",
    "EdocvnClient",
    "EdocvnError",
    "Failure",
    "Traces",
]
