"""A stand-in for a Bkav e-doc.vn legacy axis, for tests only: a real WSGI app served on 127.0.0.1 that behaves as
legacy-edoc-vn.md describes Bkav's ``DynamicService`` (§2–§10), strict where Bkav is strict.

What it reproduces (section of the spec):

* SOAPAction dispatch, one pair of quotes stripped, exact names; unknown/absent → an empty SOAP Body (§2.1, §4.3);
  SOAP 1.2 → every operation fails (§2.2: here an empty Body);
* the namespace rules (§2.3) **strictly**: a body wrapper, ``Status`` or ``CheckPermission`` in a namespace is "not
  found", a prefixed ``DocumentId`` is not read (the parsing is :func:`gateway.protocols.edocvn.read_request`,
  liberal as our edge must be, and whatever it had to be liberal about — its warnings — is refused here as Bkav
  would); GetPendingDocumentIds without its wrapper → empty Body (§4.3);
* authentication per operation (§3): wrapper children or ``Header/Signature/KeyInfo``; a wrong pair → ``Report{false,
  ∅}``, on SendDocument/UpdateTraces → ``Permission``;
* SendDocument (§6.3): no Header or no ``ErrorList`` → empty Body (its structural check's result is thrown away);
  ``DocumentType/Type`` not 1 or 2 → ``M.MessageHeader.DocumentType.Type``; a ``To`` shorter than 11 characters →
  ``M.SaveDocError``; an unnamed part → ``R.AttachmentName``; a new document with a DocumentId it has → ``M.Exist``;
  parts stored **as received** (raw bytes expected, §7.1) in files; axis ids from 48213 up;
* GetPendingDocumentIds / GetDocument / ConfirmReceived (§6.4–§6.6): per-OrganId pending lists; GetDocument in the
  **database-path** shape (MessageHeader/DocumentId = the axis id, ``OrganInCharge``, ``dd/MM/yyyy`` dates,
  ``xlink:href``) with each file as **Base64 text labelled binary** (§7.3), no ``…Response`` wrapper; ConfirmReceived
  drops the id and records status 1 "Da nhan van ban ve he thong" by "EdocAdapter" for the sender;
* UpdateTraces / GetTraces (§6.7, §6.8): duplicate rule (not for 5), document found by (ResponseFor/OrganId,
  Code); consume mode (no TimeStamp: enabled traces, then disabled) and replay mode (TimeStamp ≥, nothing changes),
  newest first;
* answers in SwA (``multipart/related``, root ``binary``) or plain ``text/xml`` (``swa=False``), built with the
  protocol module's answer builders (the §4/§6 shapes).

Fault switches (:attr:`LegacyAxis.fault`): ``"slow"`` (answer after ``slow_seconds``), ``"500"``, ``"html"`` (a
proxy's HTML page with 200), ``"drop"`` (close the connection without answering), each for ``fault_count`` requests
(None: until cleared); :attr:`LegacyAxis.fault_only` limits them to one SOAPAction (e.g. ``ConfirmReceived``: the
acknowledgement lost after the document was taken in). Documents and traces live in memory; files in a temporary
directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gateway.edxml.codes import StatusCode
from gateway.edxml.model import Attachment, EdocPackage, Organization, ResponseFor, StaffInfo, StatusPackage
from gateway.errors import GatewayError
from gateway.protocols import edocvn
from gateway.protocols.edocvn import Operation, Report, ReportError
from gateway.protocols.edocvn.attachments import content_type_for
from gateway.protocols.edocvn.mimebuild import OutPart

BKAV_STRICT = ("Bkav requires none", "Bkav reads only an unprefixed")


@dataclass
class StoredDoc:
    axis_id: str
    pkg: EdocPackage  # attachments with empty data: the files are on disk
    files: list[tuple[Attachment, Path]]
    delivered_to: set[str]


@dataclass
class Trace:
    status: StatusPackage
    visible_to: str
    enabled: bool = True


@dataclass
class LegacyAxis:
    """State and switches of one stand-in axis (its WSGI app is :meth:`__call__`)."""

    tokens: dict[str, str]
    workdir: Path
    swa: bool = True
    fault: str | None = None
    fault_count: int | None = None
    #: The SOAPAction the fault applies to (None: every request).
    fault_only: str | None = None
    slow_seconds: float = 3.0
    #: How GetDocument parts carry the files: Bkav's Base64 text labelled binary (§7.3), or raw bytes.
    get_payload: str = "base64-text"
    documents: dict[str, StoredDoc] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    traces: list[Trace] = field(default_factory=list)
    #: (SOAPAction header, Content-Type, body bytes) of every request, for the tests to look at.
    seen: list[tuple[str | None, str, bytes]] = field(default_factory=list)
    keep_bodies: bool = True
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(48213))
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        action = environ.get("HTTP_SOAPACTION")
        ctype = environ.get("CONTENT_TYPE", "")
        stream = _Limited(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))
        fault = self._take_fault(edocvn.parse_soap_action(action))
        if fault == "drop":
            stream.drain()
            sock = environ.get("legacy.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise _Dropped
        try:
            related = edocvn.read_related(stream, ctype, spool_dir=str(self.workdir)) if edocvn.is_multipart(
                ctype) else edocvn.single_part(stream.read(), ctype or "text/xml")  # fmt: skip
        except GatewayError:
            return _respond(start_response, "500 Internal Server Error", "text/plain", [b"unparseable"])
        with related:
            root = related.root.read()
            with self.lock:
                self.seen.append((action, ctype, root if self.keep_bodies else b""))
            if fault == "slow":
                time.sleep(self.slow_seconds)
            if fault == "500":
                return _respond(start_response, "500 Internal Server Error", "text/xml", [edocvn.answer(None)])
            if fault == "empty":
                return self._answer(start_response, edocvn.answer(None))
            if fault == "html":
                return _respond(start_response, "200 OK", "text/html", [b"<html><body>Gateway Timeout</body></html>"])
            operation = edocvn.parse_soap_action(action)
            body = self._dispatch(operation, root, related) if operation is not None else edocvn.answer(None)
        return self._answer(start_response, body)

    def _take_fault(self, operation: Operation | None) -> str | None:
        with self.lock:
            if self.fault_only is not None and (operation is None or operation.value != self.fault_only):
                return None
            fault = self.fault
            if fault is not None and self.fault_count is not None:
                self.fault_count -= 1
                if self.fault_count <= 0:
                    self.fault, self.fault_count = None, None
            return fault

    def _answer(self, start_response: Any, body: bytes | edocvn.MultipartBody) -> list[bytes]:
        if isinstance(body, bytes):
            if not self.swa:
                return _respond(start_response, "200 OK", edocvn.names.PLAIN_RESPONSE_TYPE, [body])
            body = edocvn.MultipartBody(body, root_transfer_encoding="binary")
        start_response("200 OK", [("Content-Type", body.content_type), ("Content-Length", str(len(body)))])
        return body  # type: ignore[return-value]  # iterable of bytes, streamed

    # ------------------------------------------------------------------------------------------ operations

    def _dispatch(self, op: Operation, root: bytes, related: edocvn.Related) -> bytes | edocvn.MultipartBody:
        try:
            req = edocvn.read_request(root, op)
        except GatewayError as exc:
            if exc.detail.get("reason") == "soap12" or op is Operation.GET_PENDING_DOCUMENT_IDS:
                return edocvn.answer(None)  # §2.2, §4.3: nothing at all
            if op is Operation.SEND_DOCUMENT:
                return edocvn.answer(None)
            return edocvn.error_answer(op, exc)
        if any(marker in w for w in req.warnings for marker in BKAV_STRICT):
            if op is Operation.GET_PENDING_DOCUMENT_IDS:
                return edocvn.answer(None)
            if op in (Operation.GET_DOCUMENT,):
                return _report(op, "M.GetDocument", "OrganId and documentId required!")
            if op is Operation.CONFIRM_RECEIVED and any("DocumentId" in w for w in req.warnings):
                return _report(op, "M.DocumentId", "DocumentId is required.")
            return _report(op, f"M.{op.value}", f"Error when process {op.value}: element not found")
        if self.tokens.get(req.organ_id) != req.token:
            if op in (Operation.SEND_DOCUMENT, Operation.UPDATE_TRACES):
                return _report(op, "Permission", "The organization does not have permission to connect to the ESB!")
            return edocvn.report_answer(op, edocvn.DENIED)
        handler = getattr(self, f"_op_{op.name.lower()}")
        return handler(req, related)

    def _op_check_permission(self, req: edocvn.Request, _related: Any) -> bytes:
        return edocvn.report_answer(req.operation, edocvn.OK)

    def _op_get_organizations(self, req: edocvn.Request, _related: Any) -> bytes:
        return edocvn.organizations_answer(Organization(organ_id=o, organ_name=f"Đơn vị {o}") for o in self.tokens)

    def _op_send_document(self, req: edocvn.Request, related: edocvn.Related) -> bytes:
        op = req.operation
        if req.header is None or edocvn.envelope.child(req.header, "ErrorList", frozenset({edocvn.EDOC})) is None:
            return edocvn.answer(None)  # §4.3: the structural check's Report is thrown away
        try:
            pkg = edocvn.read_header(req.message_header, req.trace_header_list)
            pairs = edocvn.match(edocvn.references(req.manifest), related.attachments)
        except GatewayError as exc:
            return edocvn.error_answer(op, exc)
        if pkg.message_header.document_type.type not in ("1", "2"):
            return _report(op, "M.MessageHeader.DocumentType.Type", "Document Type value is only math '1' or '2' ")
        if any(len(r) < 11 for r in pkg.recipients):
            return _report(op, "M.SaveDocError", "Save document error cause [StringIndexOutOfBoundsException]")
        with self.lock:
            if pkg.bussiness_doc_type.value == 0 and any(
                d.pkg.document_id == pkg.document_id for d in self.documents.values()
            ):
                return _report(op, "M.Exist", "Document is exist on ESB !!!!")
            axis_id = str(next(self.ids))
            files = []
            for n, (ref, part) in enumerate(pairs, start=1):
                path = self.workdir / f"{axis_id}_{n}"
                with path.open("wb") as out:
                    shutil.copyfileobj(part.open(), out)  # stored as received (§7.1)
                ctype = content_type_for(ref.attachment_name, part.headers.get("Content-Type") and part.content_type)
                files.append((Attachment(content_id=part.content_id or ref.content_id,
                                         attachment_name=ref.attachment_name, description=ref.description,
                                         content_type=ctype), path))  # fmt: skip
            self.documents[axis_id] = StoredDoc(axis_id, pkg, files, set())
            for recipient in pkg.recipients:
                self.pending.setdefault(recipient, []).append(axis_id)
        return edocvn.send_document_answer(axis_id)

    def _op_get_pending_document_ids(self, req: edocvn.Request, _related: Any) -> bytes:
        with self.lock:
            return edocvn.pending_answer(list(self.pending.get(req.organ_id, [])))

    def _op_get_document(self, req: edocvn.Request, _related: Any) -> bytes | edocvn.MultipartBody:
        op = req.operation
        with self.lock:
            doc = self.documents.get(req.document_id or "")
            allowed = doc is not None and req.organ_id in doc.pkg.recipients
        if doc is None or not allowed:
            return _report(op, "M.GetDocumentCheckAllow", f"Not find document pending in cache, database docId "
                           f"{req.document_id} organId {req.organ_id}")  # fmt: skip
        header = [
            edocvn.documents.message_header_element(doc.pkg, db_shape=True, axis_id=doc.axis_id),
            edocvn.trace_header_list_element(doc.pkg, db_shape=True),
        ]
        renamed = [(dataclasses.replace(a, content_id=str(_uuid(doc.axis_id, n))), p) for n, (a, p) in
                   enumerate(doc.files)]  # fmt: skip  # fresh Content-IDs, as the database path writes
        manifest = edocvn.manifest_element([a for a, _ in renamed], db_shape=True)
        envelope = edocvn.document_answer(header, manifest)
        b64 = self.get_payload == "base64-text"  # §7.3: Base64 text, labelled binary
        parts = [OutPart(a.content_id, a.content_type or "application/octet-stream", p, base64_text=b64)
                 for a, p in renamed]  # fmt: skip
        return edocvn.MultipartBody(envelope, parts, root_transfer_encoding="binary")

    def _op_confirm_received(self, req: edocvn.Request, _related: Any) -> bytes:
        op = req.operation
        with self.lock:
            doc = self.documents.get(req.document_id or "")
            if doc is None:
                return _report(op, "M.ConfirmReceived", f"Not found document with document id {req.document_id}")
            queue = self.pending.get(req.organ_id, [])
            queue[:] = [i for i in queue if i != doc.axis_id]
            doc.delivered_to.add(req.organ_id)
            h = doc.pkg.message_header
            date = h.promulgation_info.promulgation_date
            status = StatusPackage(
                from_=Organization(organ_id=req.organ_id, organ_name=f"Đơn vị {req.organ_id}"),
                response_for=ResponseFor(
                    organ_id=doc.pkg.sender,
                    code=str(h.code),
                    promulgation_date=date,
                    document_id=f"{doc.pkg.sender},{date.strftime('%Y/%m/%d') if date else ''},{h.code}",
                ),
                status_code=StatusCode.ARRIVED,
                timestamp=datetime.now().replace(microsecond=0),
                staff_info=StaffInfo(department=f"Đơn vị {req.organ_id}", staff="EdocAdapter"),
                description="Da nhan van ban ve he thong",
            )
            self.traces.append(Trace(status, doc.pkg.sender))
        return edocvn.report_answer(op, edocvn.OK)

    def _op_update_traces(self, req: edocvn.Request, _related: Any) -> bytes:
        op = req.operation
        try:
            status = edocvn.read_status(req.status)  # type: ignore[arg-type]
        except GatewayError as exc:
            return _report(op, "M.UpdateTraces", f"Error process get update [{exc.code}]")
        rf = status.response_for
        with self.lock:
            if status.status_code is not StatusCode.IN_PROGRESS and any(
                t.status.sender == status.sender and t.status.response_for.organ_id == rf.organ_id
                and t.status.response_for.code == rf.code and t.status.status_code is status.status_code
                for t in self.traces
            ):  # fmt: skip
                return _report(op, "M.UpdateTraces", f"Exist trace on esb with code {rf.code} from_organ_domain "
                               f"{status.sender} to_organ_domain {rf.organ_id} status code {rf.code}")  # fmt: skip
            doc_sender = status.sender if status.status_code is StatusCode.RECALL_REQUESTED else rf.organ_id
            if not any(d.pkg.sender == doc_sender and str(d.pkg.message_header.code) == rf.code
                       for d in self.documents.values()):  # fmt: skip
                return _report(op, "M.UpdateStatusDoc", f"Not found document with document code {rf.code} to "
                               f"organ domain {rf.organ_id}!!!")  # fmt: skip
            self.traces.append(Trace(status, rf.organ_id))
        return edocvn.report_answer(op, edocvn.OK)

    def _op_get_traces(self, req: edocvn.Request, _related: Any) -> bytes:
        with self.lock:
            mine = [t for t in self.traces if t.visible_to == req.organ_id]
            if req.since is None:
                chosen = [t for t in mine if t.enabled]
                for t in chosen:
                    t.enabled = False
            else:
                chosen = [t for t in mine if t.status.timestamp is not None and t.status.timestamp >= req.since]
        chosen.sort(key=lambda t: t.status.timestamp or datetime.min, reverse=True)
        return edocvn.traces_body(t.status for t in chosen)

    # ------------------------------------------------------------------------------------------ test helpers

    def file_digests(self, axis_id: str) -> list[str]:
        return [hashlib.sha256(p.read_bytes()).hexdigest() for _, p in self.documents[axis_id].files]

    def add_trace(self, status: StatusPackage, visible_to: str) -> None:
        with self.lock:
            self.traces.append(Trace(status, visible_to))


class _Dropped(Exception):
    """The connection was closed on purpose: nothing to answer."""


def _report(op: Operation, code: str, description: str) -> bytes:
    return edocvn.report_answer(op, Report(False, (ReportError(code, description),)))


def _respond(start_response: Any, status: str, ctype: str, body: list[bytes]) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(sum(map(len, body))))])
    return body


def _uuid(axis_id: str, n: int) -> str:
    digest = hashlib.sha256(f"{axis_id}/{n}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class _Limited:
    """``wsgi.input`` cut at Content-Length (wsgiref's input would block at the end of a kept-alive request)."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream, self._left = stream, length

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(n)
        self._left -= len(data)
        return data

    def drain(self) -> None:
        while self.read(64 * 1024):
            pass


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env["legacy.socket"] = self.connection
        return env

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    def handle(self) -> None:
        with contextlib.suppress(_Dropped, OSError):
            super().handle()


class _Server(ThreadingMixIn, WSGIServer):
    # server_close() waits for the requests in flight: none writes into a work directory already removed
    daemon_threads = False
    block_on_close = True


@contextlib.contextmanager
def serve_axis(tokens: dict[str, str], **options: Any) -> Iterator[tuple[str, LegacyAxis]]:
    """A stand-in axis on 127.0.0.1 (a thread); yields ``(endpoint URL, axis)``."""
    workdir = Path(tempfile.mkdtemp(prefix="legacy-axis-"))
    axis = LegacyAxis(tokens=dict(tokens), workdir=workdir, **options)
    server = make_server("127.0.0.1", 0, axis, server_class=_Server, handler_class=_Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/EdocProxy", axis
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """``python tests/legacy_axis.py PORT ORGANID=TOKEN …``: serve until killed (for the CLI tests and by hand)."""
    import sys

    port = int(sys.argv[1])
    tokens = dict(arg.split("=", 1) for arg in sys.argv[2:])
    workdir = Path(tempfile.mkdtemp(prefix="legacy-axis-"))
    axis = LegacyAxis(tokens=tokens, workdir=workdir)
    server = make_server("127.0.0.1", port, axis, server_class=_Server, handler_class=_Handler)
    print(f"http://127.0.0.1:{server.server_port}/services/EdocProxy", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
