"""The eight operations of the legacy e-doc.vn edge (legacy-edoc-vn.md §6), and how a refusal reads in a Report.

Each handler gets the parsed request (:class:`gateway.protocols.edocvn.Request`), the MIME parts and the call's
:class:`Call` (the use cases, the settings, the log line's fields) and returns the answer: envelope bytes in the §6
shapes, or a :class:`~gateway.protocols.edocvn.MultipartBody` (GetDocument). Authentication comes first in every
handler (OrganId + Token → the legacy system, :meth:`GatewayApi.authenticate_legacy`: audited, throttled); every
use case then works for that system only (:mod:`gateway.services.legacy`).

**Refusals** (:func:`report_of`): a Report with Bkav's code string first where Bkav has one for that failure
(§3, §6, §10) — its exact Description, as clients may match it — followed by our own stable code and message,
which say WHY (Bkav's wrong-token answer is an empty ErrorList, §3: ours always names ``AUTH.DENIED``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config import Settings
from gateway.edxml import EdocPackage, PackageKind, read_bytes, render
from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlError,
    GatewayError,
    NotFoundError,
    RouteError,
)
from gateway.protocols import edocvn
from gateway.protocols.edocvn import Operation, Report, ReportError
from gateway.services.api import GatewayApi
from gateway.web.rawhttp import log_safe

#: §3: Bkav's answer to a SendDocument / UpdateTraces whose KeyInfo does not authenticate or authorise.
PERMISSION: Final = ReportError("Permission", "The organization does not have permission to connect to the ESB!")
_SIGNED: Final = frozenset({Operation.SEND_DOCUMENT, Operation.UPDATE_TRACES})

Answer = bytes | edocvn.MultipartBody


@dataclass
class Call:
    """One request's context: what a handler needs besides the request, and what the log line says about it."""

    api: GatewayApi
    settings: Settings
    parts: Mapping[str, edocvn.Part]
    system: str = "-"
    organ: str = "-"
    code: str = "-"
    doc: str = "-"
    notes: list[str] = field(default_factory=list)

    def login(self, req: edocvn.Request) -> str:
        """OrganId + Token → the legacy system's id (AuthError otherwise); remembered for the log line."""
        self.organ = log_safe(req.organ_id, 40)
        self.system = self.api.authenticate_legacy(req.organ_id, req.token)
        return self.system


Handler = Callable[[edocvn.Request, Call], Answer]

# ==================================================================================================== operations


def check_permission(req: edocvn.Request, call: Call) -> Answer:
    """§6.1: the pair authenticates → ``Report{true}``; a wrong pair is the AuthError's Report."""
    call.login(req)
    return edocvn.report_answer(req.operation, edocvn.OK)


def get_organizations(req: edocvn.Request, call: Call) -> Answer:
    """§6.2: the active agencies of our registry."""
    call.login(req)
    return edocvn.organizations_answer(call.api.legacy_organizations())


def send_document(req: edocvn.Request, call: Call) -> Answer:
    """§6.3: the document → a canonical package → intake (idempotency, XSD, signature policy, routing)."""
    system = call.login(req)
    pkg = edocvn.edoc_from_legacy(req.message_header, req.trace_header_list, req.manifest, call.parts)
    call.api.authorise_legacy(system, pkg.sender)  # the axis's own "Permission" before intake says ACCESS.DENIED
    data = render(pkg)
    del pkg  # the model holds every file's bytes: let them go before intake parses the package (bench_legacy RSS)
    done = call.api.legacy_submit(system, data, PackageKind.EDOC)
    call.doc = done.receipt.doc_id
    if done.receipt.duplicate:
        call.notes.append("duplicate")
    return edocvn.send_document_answer(str(done.axis_id))


def get_pending_document_ids(req: edocvn.Request, call: Call) -> Answer:
    """§6.4: the axis ids waiting in the caller's own mailbox, oldest first."""
    system = call.login(req)
    return edocvn.pending_answer(str(n) for n in call.api.legacy_pending(system))


def get_document(req: edocvn.Request, call: Call) -> Answer:
    """§6.5: the caller's delivery of that document, rebuilt in Bkav's database shape (never an echo of the
    sender's envelope, §16); marks it fetched. Attachments as raw bytes, or Bkav's Base64 text for the OrganIds
    ``legacy_base64_text`` names."""
    system = call.login(req)
    raw = call.api.legacy_fetch(system, axis_id(req, call))
    pkg = read_bytes(raw, max_bytes=max(len(raw), call.settings.max_package_bytes))
    assert isinstance(pkg, EdocPackage), "an axis id names a document"
    chosen = call.settings.legacy_base64_text
    payload = edocvn.PAYLOAD_BASE64_TEXT if "*" in chosen or req.organ_id in chosen else edocvn.PAYLOAD_RAW
    if payload == edocvn.PAYLOAD_BASE64_TEXT:
        call.notes.append("base64-text")
    return edocvn.get_document_body(pkg, payload)


def confirm_received(req: edocvn.Request, call: Call) -> Answer:
    """§6.6: the mailbox acknowledgement; the receiver's "emit 01 on acknowledge" applies; repeating it is a no-op."""
    system = call.login(req)
    call.api.legacy_confirm(system, axis_id(req, call))
    return edocvn.report_answer(req.operation, edocvn.OK)


def update_traces(req: edocvn.Request, call: Call) -> Answer:
    """§6.7: the Status → a canonical status package → intake; the status relay routes it (to the document's
    sender, or for 13 to the receiver). ``From/OrganId`` must be one the system may send as (its legacy scope)."""
    system = call.login(req)
    assert req.status is not None  # read_request refuses an UpdateTraces without one
    status = edocvn.read_status(req.status)
    call.api.authorise_legacy(system, status.sender)
    done = call.api.legacy_submit(system, render(status), PackageKind.STATUS)
    call.doc = done.receipt.doc_id
    if done.receipt.duplicate:
        call.notes.append("duplicate")
    return edocvn.report_answer(req.operation, edocvn.OK)


def get_traces(req: edocvn.Request, call: Call) -> Answer:
    """§6.8: consume mode without TimeStamp (answered once), replay mode with it; newest first."""
    system = call.login(req)
    statuses = call.api.legacy_traces(system, req.since)
    call.notes.append(f"{'replay' if req.since else 'consume'}={len(statuses)}")
    return edocvn.traces_body(statuses)


HANDLERS: Final[Mapping[Operation, Handler]] = {
    Operation.CHECK_PERMISSION: check_permission,
    Operation.GET_ORGANIZATIONS: get_organizations,
    Operation.SEND_DOCUMENT: send_document,
    Operation.GET_PENDING_DOCUMENT_IDS: get_pending_document_ids,
    Operation.GET_DOCUMENT: get_document,
    Operation.CONFIRM_RECEIVED: confirm_received,
    Operation.UPDATE_TRACES: update_traces,
    Operation.GET_TRACES: get_traces,
}


def axis_id(req: edocvn.Request, call: Call) -> int:
    """The numeric axis id of GetDocument / ConfirmReceived (§5; a decimal ``long``). Not a number → the same
    answer as an unknown id (Bkav parses it to 0 and finds nothing)."""
    raw = req.document_id or ""
    call.doc = log_safe(raw, 24)
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        return int(raw)
    raise NotFoundError(f"{raw!r} is not an axis document id (a decimal number)", axis_id=raw[:40])


# ==================================================================================================== refusals


def report_of(operation: Operation | None, exc: GatewayError, req: edocvn.Request | None) -> Report:
    """The Report of a refusal: Bkav's entry for it first where it has one (module docstring), then ours."""
    ours = edocvn.report_for(exc)
    bkav = _bkav_entry(operation, exc, req)
    if bkav is None or any(e.code == bkav.code for e in ours.errors):
        return ours
    return Report(False, (bkav, *ours.errors))


def _bkav_entry(operation: Operation | None, exc: GatewayError, req: edocvn.Request | None) -> ReportError | None:
    organ = req.organ_id if req is not None else ""
    doc = req.document_id if req is not None and req.document_id else "0"
    if isinstance(exc, (AuthError, AccessError)) and operation in _SIGNED:
        return PERMISSION
    if isinstance(exc, NotFoundError) and operation is Operation.GET_DOCUMENT:
        text = f"Not find document pending in cache, database docId {doc} organId {organ}"
        return ReportError("M.GetDocumentCheckAllow", text)
    if isinstance(exc, NotFoundError) and operation is Operation.CONFIRM_RECEIVED:
        return ReportError("M.ConfirmReceived", f"Not found document with document id {doc}")
    if isinstance(exc, DuplicateError) and operation is Operation.SEND_DOCUMENT:
        return ReportError("M.Exist", "Document is exist on ESB !!!!")
    if isinstance(exc, (NotFoundError, RouteError)) and operation is Operation.UPDATE_TRACES:
        return ReportError(
            "M.UpdateStatusDoc", f"Not found document with the ResponseFor of this status: {exc.message}"
        )
    if isinstance(exc, EdxmlError) and operation is Operation.UPDATE_TRACES:
        return ReportError("M.UpdateTraces", f"Error process get update: {exc.message}")
    return None


__all__ = ["HANDLERS", "Call", "report_of"]
