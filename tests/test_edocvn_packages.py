"""Whole documents and statuses of the e-doc.vn profile ↔ canonical packages (gateway.protocols.edocvn.packages),
built from the spec's own examples (legacy-edoc-vn.md §6.3, §6.5, §6.7, §6.8, §7)."""

from __future__ import annotations

import io

import pytest
from lxml import etree

from gateway.edxml import reader, writer
from gateway.edxml.model import EdocPackage, StatusPackage
from gateway.protocols import edocvn
from gateway.protocols.edocvn.names import Operation
from gateway.protocols.edocvn.packages import edoc_from_answer, edoc_from_legacy, get_document_body, traces_body
from tests import _edocvn_vectors as v
from tests.test_edocvn_protocol import http_body


def _send_document() -> EdocPackage:
    ctype, body = http_body(v.SEND_DOCUMENT_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
        return edoc_from_legacy(req.message_header, req.trace_header_list, req.manifest, rel.attachments)


def test_send_document_of_the_spec_becomes_a_canonical_package() -> None:
    """§6.3 → the canonical edXML every channel stores: the header's facts and the file's exact bytes survive."""
    pkg = _send_document()
    assert pkg.message_header.from_.organ_id == "000.00.12.H53"
    assert [a.attachment_name for a in pkg.attachments] == [r.attachment_name for r in pkg.references]
    assert pkg.attachments[0].data == b"%PDF-1.4 \xe2\x80\xa6 (raw file bytes) \xe2\x80\xa6"
    again = reader.read_bytes(writer.render(pkg))
    assert isinstance(again, EdocPackage)
    assert again.message_header == pkg.message_header and again.attachments == pkg.attachments


@pytest.mark.parametrize("payload", [edocvn.PAYLOAD_RAW, edocvn.PAYLOAD_BASE64_TEXT])
def test_get_document_answer_carries_the_stored_package_back(payload: str) -> None:
    """§6.5: our answer, read as a Bkav client reads it, is the same document; the sender's DocumentId stays (§16)."""
    pkg = _send_document()
    body = get_document_body(pkg, payload)
    data = body.to_bytes()
    assert len(body) == len(data)
    with edocvn.read_related(io.BytesIO(data), body.content_type) as rel:
        answer = edocvn.read_answer(rel.root.read(), Operation.GET_DOCUMENT)
        assert answer.ok
        got = edoc_from_answer(answer.header, answer.manifest, rel.attachments, payload)
        root_text = rel.root.read()
    assert got.message_header == pkg.message_header
    assert got.message_header.document_id == pkg.message_header.document_id
    assert got.attachments == pkg.attachments
    assert b"xlink:href" in root_text and b"OrganInCharge" in root_text  # Bkav's database shape


def test_a_part_the_manifest_does_not_name_is_refused() -> None:
    """§7.1: ``R.AttachmentName`` — a file no Reference names is never stored nameless."""
    ctype, body = http_body(v.SEND_DOCUMENT_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
        with pytest.raises(edocvn.ProfileError) as err:
            edoc_from_legacy(req.message_header, req.trace_header_list, None, rel.attachments)
    assert edocvn.report_for(err.value).errors[0].code == "R.AttachmentName"


def test_get_document_answer_without_header_is_a_structure_error() -> None:
    with pytest.raises(Exception) as err:
        edoc_from_answer(None, None, {})
    assert getattr(err.value, "code", "") == "EDXML.STRUCTURE"


def test_update_traces_status_comes_back_in_get_traces() -> None:
    """§6.7 → §6.8: an UpdateTraces Status, read and answered by GetTraces, reads back the same status."""
    req = edocvn.read_request(v.UPDATE_TRACES_REQUEST.encode(), Operation.UPDATE_TRACES)
    status = edocvn.read_status(req.status)
    assert isinstance(status, StatusPackage)
    answer = edocvn.read_answer(traces_body([status, status]), Operation.GET_TRACES)
    assert len(answer.statuses) == 2
    assert all(etree.QName(s).namespace == edocvn.EDOC for s in answer.statuses)
    back = edocvn.read_status(answer.statuses[0])
    assert back.status_code == status.status_code and back.description == status.description
    assert back.response_for.organ_id == status.response_for.organ_id
    assert back.response_for.code == status.response_for.code
    assert edocvn.read_answer(traces_body([]), Operation.GET_TRACES).statuses == ()
