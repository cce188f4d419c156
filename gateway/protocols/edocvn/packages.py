"""Whole documents and statuses of the e-doc.vn profile ↔ the model's packages: the one conversion the legacy edge
(``gateway.web.legacy``) and the legacy peer adapter (``adapters.edocvn``) share, in both directions.

* a SendDocument request (edge, intake) and a GetDocument answer (adapter, pull) both carry a document as
  ``MessageHeader`` + ``TraceHeaderList`` in the SOAP Header, a ``Manifest`` in the Body and one MIME part per file:
  :func:`edoc_from_legacy` turns that into an :class:`~gateway.edxml.model.EdocPackage` (then
  :func:`gateway.edxml.writer.render` gives the canonical package every other channel stores);
* a stored package → a GetDocument answer (:func:`get_document_body`, edge) or a SendDocument request
  (:func:`gateway.protocols.edocvn.calls.send_document_request`, adapter);
* a status: UpdateTraces' unqualified ``Status`` and GetTraces' qualified ones are read by
  :func:`gateway.protocols.edocvn.statuses.read_status`; :func:`traces_body` answers GetTraces.

GetDocument is written in Bkav's database shape (§6.5: ``xlink:href``, ``OrganInCharge``, times on dates) with one
deliberate difference (§16): ``MessageHeader/DocumentId`` is the sender's edXML DocumentId, never the axis id, so a
legacy recipient's statuses (``ResponseFor/DocumentId``) name the document the way the sender knows it. The axis id
is what GetPendingDocumentIds listed and what the client asked for; it needs no echo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from lxml import etree

from gateway.edxml.model import EdocPackage, StatusPackage
from gateway.errors import EdxmlStructureError
from gateway.protocols.edocvn.answers import document_answer, traces_answer
from gateway.protocols.edocvn.attachments import (
    PAYLOAD_RAW,
    Payload,
    manifest_element,
    match,
    out_parts,
    references,
    to_model,
)
from gateway.protocols.edocvn.documents import message_header_element, read_header, trace_header_list_element
from gateway.protocols.edocvn.envelope import OURS, child
from gateway.protocols.edocvn.mime import Part
from gateway.protocols.edocvn.mimebuild import MultipartBody
from gateway.protocols.edocvn.statuses import status_element


def edoc_from_legacy(
    message_header: etree._Element | None,
    trace_header_list: etree._Element | None,
    manifest: etree._Element | None,
    parts: Mapping[str, Part],
    payload: Payload = PAYLOAD_RAW,
) -> EdocPackage:
    """The document a SendDocument request or a GetDocument answer carries, attachments included.

    Every part must be named by the Manifest (``R.AttachmentName`` otherwise, §7.1); a Reference without a part is
    left out (Bkav does the same); no Manifest is a document without attachments (§7.4). ``payload`` says how the
    parts carry the files: raw (or CTE-base64) bytes, or Bkav's Base64 text labelled ``binary`` (§7.3)."""
    pkg = read_header(message_header, trace_header_list)
    manifest_refs, files = to_model(match(references(manifest), parts), payload)
    return dataclasses.replace(pkg, references=manifest_refs, attachments=files)


def edoc_from_answer(
    header: etree._Element | None,
    manifest: etree._Element | None,
    parts: Mapping[str, Part],
    payload: Payload = PAYLOAD_RAW,
) -> EdocPackage:
    """The document of a GetDocument answer (:attr:`gateway.protocols.edocvn.answers.Answer.header` / ``manifest``)."""
    if header is None:
        raise EdxmlStructureError("the GetDocument answer has no SOAP Header", path="/Envelope/Header")
    return edoc_from_legacy(
        child(header, "MessageHeader", OURS), child(header, "TraceHeaderList", OURS), manifest, parts, payload
    )


def get_document_body(pkg: EdocPackage, payload: Payload = PAYLOAD_RAW) -> MultipartBody:
    """A GetDocument answer (§6.5) for a stored document: the envelope as root part, one part per attachment."""
    header = [message_header_element(pkg, db_shape=True), trace_header_list_element(pkg, db_shape=True)]
    envelope = document_answer(header, manifest_element(pkg.attachments, db_shape=True))
    return MultipartBody(envelope, out_parts(pkg.attachments, payload))


def traces_body(statuses: Iterable[StatusPackage]) -> bytes:
    """A GetTraces answer (§6.8): qualified ``Status`` elements in the order given (newest first, as Bkav)."""
    return traces_answer(status_element(s, qualified=True) for s in statuses)
