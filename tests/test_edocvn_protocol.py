"""The e-doc.vn protocol module against the spec's own examples (legacy-edoc-vn.md §6) and quirks (§2.3, §9)."""

from __future__ import annotations

import io
import os
import tracemalloc
from datetime import datetime

import pytest
from lxml import etree

from gateway.errors import EdxmlForbiddenError, RequestError, SizeLimitError
from gateway.protocols import edocvn
from gateway.protocols.edocvn.names import Operation
from tests import _edocvn_vectors as v

EDOC = "http://www.e-doc.vn/Schema/"
TOKEN = "RXhhbXBsZVRva2VuRm9yUmVjdjE="


def http_body(message: str) -> tuple[str, bytes]:
    """Split one of the spec's HTTP examples into its Content-Type and body (its lines are LF-terminated)."""
    head, _, body = message.partition("\n\n")
    ctype = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("Content-Type:"))
    return ctype, body.encode()


def canon(el: etree._Element) -> tuple:
    """Structure for comparison: Clark names (namespaces included), attributes, trimmed text, children."""
    kids = [c for c in el if isinstance(c.tag, str)]
    return (el.tag, dict(el.attrib), (el.text or "").strip() if not kids else "", [canon(c) for c in kids])


def body_of(xml: bytes | str) -> etree._Element:
    data = xml.encode() if isinstance(xml, str) else xml
    if data.lstrip().startswith(b"<soapenv:Body"):
        data = (
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            + data
            + b"</soapenv:Envelope>"
        )
    return edocvn.split_envelope(data)[2]


# ------------------------------------------------------------------------------------------ requests (§6, §2.3)


def test_check_permission_request_of_the_spec_multipart() -> None:
    """§6.1: the whole SwA request; the pair is read from the Header's unqualified CheckPermission."""
    ctype, body = http_body(v.CHECK_PERMISSION_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        assert rel.root.content_id == "root-cp" and rel.attachments == {}
        req = edocvn.read_request(rel.root.read(), Operation.CHECK_PERMISSION)
    assert (req.organ_id, req.token) == ("000.00.13.H53", TOKEN)


@pytest.mark.parametrize(
    ("vector", "operation", "organ", "token", "doc_id"),
    [
        (v.GET_ORGANIZATIONS_REQUEST, Operation.GET_ORGANIZATIONS, "000.00.13.H53", TOKEN, None),
        (v.GET_PENDING_REQUEST, Operation.GET_PENDING_DOCUMENT_IDS, "000.00.13.H53", TOKEN, None),
        (v.GET_DOCUMENT_REQUEST, Operation.GET_DOCUMENT, "000.00.13.H53", TOKEN, "48213"),
        (v.CONFIRM_RECEIVED_REQUEST, Operation.CONFIRM_RECEIVED, "000.00.13.H53", TOKEN, "48213"),
        (v.GET_TRACES_REQUEST, Operation.GET_TRACES, "000.00.12.H53", "Qm9ndXNUb2tlbkV4YW1wbGUwMDE=", None),
    ],
)
def test_spec_requests_read(vector: str, operation: Operation, organ: str, token: str, doc_id: str | None) -> None:
    req = edocvn.read_request(vector.encode(), operation)
    assert (req.operation, req.organ_id, req.token, req.document_id, req.since) == (
        operation, organ, token, doc_id, None
    )  # fmt: skip


def test_send_document_request_of_the_spec() -> None:
    """§6.3: SwA, raw PDF bytes in the part, Manifest href → part, header read into the model."""
    ctype, body = http_body(v.SEND_DOCUMENT_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
        assert (req.organ_id, req.token) == ("000.00.12.H53", "Qm9ndXNUb2tlbkV4YW1wbGUwMDE=")
        pkg = edocvn.read_header(req.message_header, req.trace_header_list)
        refs, files = edocvn.to_model(edocvn.match(edocvn.references(req.manifest), rel.attachments))
    h = pkg.message_header
    assert h.from_.organ_id == "000.00.12.H53" and h.from_.organization_in_charge == "UBND tỉnh"
    assert [t.organ_id for t in h.to] == ["000.00.13.H53"]
    assert h.document_id == "000.00.12.H53,2024/05/06,125/SXD-VP"
    assert str(h.code) == "125/SXD-VP" and h.subject == "V/v góp ý dự thảo quy chế"
    assert h.other_info.typer_notation == "VP" and h.due_date.isoformat() == "2024-05-20"
    assert pkg.trace_header_list.bussiness.bussiness_doc_reason == "Văn bản mới"
    assert [(f.content_id, f.attachment_name, f.content_type) for f in files] == [
        ("att-1@qlvb.example", "125-SXD-VP.pdf", "application/pdf")
    ]
    assert files[0].data == "%PDF-1.4 … (raw file bytes) …".encode()
    assert refs[0].description == "Công văn 125"


def test_update_traces_request_of_the_spec() -> None:
    req = edocvn.read_request(v.UPDATE_TRACES_REQUEST.encode(), Operation.UPDATE_TRACES)
    assert (req.organ_id, req.token) == ("000.00.13.H53", TOKEN)
    status = edocvn.read_status(req.status)
    assert status.status_code.value == "03" and status.response_for.code == "125/SXD-VP"
    assert status.timestamp == datetime(2024, 5, 6, 14, 2, 10) and status.staff_info.staff == "Lê Văn C"


@pytest.mark.parametrize("action", ["GetTraces", '"GetTraces"', ' "GetTraces" '])
def test_soap_action_quoted_or_not(action: str) -> None:
    assert edocvn.parse_soap_action(action) is Operation.GET_TRACES


@pytest.mark.parametrize("action", [None, "", "gettraces", "GetTrace", '""', "urn:GetTraces"])
def test_soap_action_exact(action: str | None) -> None:
    assert edocvn.parse_soap_action(action) is None


def _variant(vector: str, old: str, new: str) -> bytes:
    assert old in vector
    return vector.replace(old, new).encode()


@pytest.mark.parametrize("prefix", ["soapenv", "s", "S11", "env"])
def test_any_envelope_prefix(prefix: str) -> None:
    req = edocvn.read_request(_variant(v.GET_DOCUMENT_REQUEST, "SOAP-ENV", prefix), Operation.GET_DOCUMENT)
    assert req.document_id == "48213"


def test_qualified_wrapper_accepted_with_a_warning() -> None:
    data = _variant(v.GET_TRACES_REQUEST, "<GetTraces>", f'<GetTraces xmlns="{EDOC}">')
    req = edocvn.read_request(data, Operation.GET_TRACES)
    assert req.organ_id == "000.00.12.H53" and "Bkav requires none" in req.warnings[0]


def test_qualified_status_and_check_permission_accepted() -> None:
    data = _variant(v.UPDATE_TRACES_REQUEST, "<Status>", f'<Status xmlns="{EDOC}">')
    assert edocvn.read_status(edocvn.read_request(data, Operation.UPDATE_TRACES).status).status_code.value == "03"
    _, body = http_body(v.CHECK_PERMISSION_HTTP)
    root = body.split(b"\n\n", 1)[1].rsplit(b"--b-cp-01--", 1)[0]
    data = root.replace(b"<CheckPermission>", f'<edXML:CheckPermission xmlns:edXML="{EDOC}">'.encode()).replace(
        b"</CheckPermission>", b"</edXML:CheckPermission>"
    )
    assert edocvn.read_request(data, Operation.CHECK_PERMISSION).organ_id == "000.00.13.H53"


@pytest.mark.parametrize(
    "element",
    ["<DocumentId>48213</DocumentId>", "<documentId> 48213 </documentId>", "<DOCUMENTID>48213</DOCUMENTID>",
     f'<edXML:DocumentId xmlns:edXML="{EDOC}">48213</edXML:DocumentId>'],
)  # fmt: skip
def test_document_id_prefixed_or_not_any_case(element: str) -> None:
    data = _variant(v.CONFIRM_RECEIVED_REQUEST, "<DocumentId>48213</DocumentId>", element)
    assert edocvn.read_request(data, Operation.CONFIRM_RECEIVED).document_id == "48213"


def test_whitespace_around_organ_id_and_token_is_trimmed() -> None:
    data = _variant(v.GET_PENDING_REQUEST, f"<Token>{TOKEN}</Token>", f"<Token>\n   {TOKEN}\r\n  </Token>")
    data = data.replace(b"<OrganId>000.00.13.H53</OrganId>", b"<OrganId> 000.00.13.H53\t</OrganId>")
    req = edocvn.read_request(data, Operation.GET_PENDING_DOCUMENT_IDS)
    assert (req.organ_id, req.token) == ("000.00.13.H53", TOKEN)


def test_soap12_refused_with_a_clear_report() -> None:
    data = _variant(v.GET_TRACES_REQUEST, "http://schemas.xmlsoap.org/soap/envelope/", edocvn.SOAP12)
    with pytest.raises(edocvn.ProfileError) as caught:
        edocvn.read_request(data, Operation.GET_TRACES)
    answer = edocvn.read_answer(edocvn.error_answer(Operation.GET_TRACES, caught.value), Operation.GET_TRACES)
    assert not answer.ok and answer.report.errors[0].code == "REQUEST.INVALID"
    assert "SOAP 1.2" in answer.report.errors[0].description


@pytest.mark.parametrize(
    ("vector", "operation", "old", "new", "code", "description"),
    [
        (v.GET_PENDING_REQUEST, Operation.GET_PENDING_DOCUMENT_IDS, f"<Token>{TOKEN}</Token>", "",
         "CheckPermission", "OrganId or Token is required"),
        (v.GET_DOCUMENT_REQUEST, Operation.GET_DOCUMENT, "<DocumentId>48213</DocumentId>", "",
         "M.GetDocument", "OrganId and documentId required!"),
        (v.CONFIRM_RECEIVED_REQUEST, Operation.CONFIRM_RECEIVED, "<DocumentId>48213</DocumentId>", "<DocumentId/>",
         "M.DocumentId", "DocumentId is required."),
        (v.UPDATE_TRACES_REQUEST, Operation.UPDATE_TRACES, "<edXML:KeyInfo>", "<edXML:KeyInfoX>",
         "CheckSignature", "Error get KeyInfo"),
    ],
)  # fmt: skip
def test_refusals_carry_bkav_codes(vector, operation, old, new, code, description) -> None:
    data = _variant(vector, old, new).replace(b"</edXML:KeyInfo>", b"</edXML:KeyInfoX>")
    with pytest.raises(edocvn.ProfileError) as caught:
        edocvn.read_request(data, operation)
    assert (caught.value.report_code, caught.value.report_description) == (code, description)


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE x [<!ENTITY e "boom">]><Envelope>&e;</Envelope>',
        b'<?xml version="1.0"?>\n<!DOCTYPE foo SYSTEM "http://evil.example/x.dtd"><foo/>',
    ],
)
def test_hostile_xml_refused(data: bytes) -> None:
    with pytest.raises(EdxmlForbiddenError):
        edocvn.read_request(data, Operation.GET_TRACES)


# ---------------------------------------------------------------------------------------- answers (§4, §6)


def test_check_permission_answer_is_the_spec_shape() -> None:
    built = edocvn.report_answer(Operation.CHECK_PERMISSION, edocvn.OK)
    assert canon(etree.fromstring(built)) == canon(etree.fromstring(v.CHECK_PERMISSION_OK.encode()))


def test_send_document_answers_are_the_spec_shapes() -> None:
    built = etree.fromstring(edocvn.send_document_answer("48213"))
    assert canon(built) == canon(etree.fromstring(v.SEND_DOCUMENT_OK.encode()))
    exc = edocvn.ProfileError(
        "Document Type value is only math '1' or '2' ", report_code="M.MessageHeader.DocumentType.Type"
    )
    built_error = body_of(edocvn.error_answer(Operation.SEND_DOCUMENT, exc))
    assert canon(built_error) == canon(body_of(v.SEND_DOCUMENT_ERROR_BODY))
    # read back as a client: Bkav's description is wire data, trailing space included (§10)
    read = edocvn.read_answer(edocvn.error_answer(Operation.SEND_DOCUMENT, exc), Operation.SEND_DOCUMENT)
    assert (
        read.report is not None and read.report.errors[0].description == "Document Type value is only math '1' or '2' "
    )
    assert edocvn.read_answer(etree.tostring(built.getroottree()), Operation.SEND_DOCUMENT).document_id == "48213"


def test_pending_confirm_and_get_document_error_answers_are_the_spec_shapes() -> None:
    assert canon(body_of(edocvn.pending_answer(["48213", "48217"]))) == canon(body_of(v.GET_PENDING_BODY))
    confirm = edocvn.report_answer(Operation.CONFIRM_RECEIVED, edocvn.OK)
    assert canon(body_of(confirm)) == canon(body_of(v.CONFIRM_RECEIVED_BODY))
    report = edocvn.Report(False, (edocvn.ReportError("M.GetDocumentCheckAllow",
        "Not find document pending in cache, database docId 48299 organId 000.00.13.H53"),))  # fmt: skip
    assert canon(body_of(edocvn.report_answer(Operation.GET_DOCUMENT, report))) == canon(
        body_of(v.GET_DOCUMENT_ERROR_BODY)
    )


def test_organizations_answer_is_the_spec_shape_and_reads_back() -> None:
    from gateway.edxml.model import Organization

    org = Organization(
        organ_id="000.00.12.H53", organization_in_charge="UBND tỉnh", organ_name="Sở Xây dựng",
        organ_add="12 Đường A, TP. B", email="sxd@example.gov.vn", telephone="0276000000", fax="", website="",
    )  # fmt: skip
    built = edocvn.organizations_answer([org])
    assert canon(body_of(built)) == canon(body_of(v.GET_ORGANIZATIONS_BODY))
    assert edocvn.read_answer(built, Operation.GET_ORGANIZATIONS).organizations == (org,)


def test_traces_answer_is_the_spec_shape_and_reads_back() -> None:
    req = edocvn.read_request(v.UPDATE_TRACES_REQUEST.encode(), Operation.UPDATE_TRACES)
    status = edocvn.read_status(req.status)
    built = edocvn.traces_answer([edocvn.status_element(status, qualified=True)])
    assert canon(body_of(built)) == canon(body_of(v.GET_TRACES_BODY))
    back = edocvn.read_answer(built, Operation.GET_TRACES)
    assert [edocvn.read_status(s) for s in back.statuses] == [status]


def test_get_document_database_path_answer_reads_back() -> None:
    """§6.5: the spec's answer, read as a client: Header → model, Base64-text part labelled binary → file bytes."""
    ctype, body = http_body(v.GET_DOCUMENT_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        answer = edocvn.read_answer(rel.root.read(), Operation.GET_DOCUMENT)
        assert answer.ok and answer.report is None
        header = answer.header
        mh = next(c for c in header if etree.QName(c).localname == "MessageHeader")
        tl = next(c for c in header if etree.QName(c).localname == "TraceHeaderList")
        pkg = edocvn.read_header(mh, tl)
        pairs = edocvn.match(edocvn.references(answer.manifest), rel.attachments)
        _refs, files = edocvn.to_model(pairs, edocvn.PAYLOAD_BASE64_TEXT)
    assert pkg.message_header.promulgation_info.promulgation_date.isoformat() == "2024-05-06"
    assert pkg.trace_header_list.trace_headers[0].timestamp == datetime(2024, 5, 6, 9, 15)
    assert files[0].data == b"%PDF-1.4\n% demo attachment\n"


# ------------------------------------------------------------------------------------------- round trips


def _spec_package():
    ctype, body = http_body(v.SEND_DOCUMENT_HTTP)
    with edocvn.read_related(io.BytesIO(body), ctype) as rel:
        req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
        pkg = edocvn.read_header(req.message_header, req.trace_header_list)
        refs, files = edocvn.to_model(edocvn.match(edocvn.references(req.manifest), rel.attachments))
    import dataclasses

    return dataclasses.replace(pkg, references=refs, attachments=files, warnings=())


@pytest.mark.parametrize("payload", [edocvn.PAYLOAD_RAW, edocvn.PAYLOAD_BASE64_TEXT])
def test_send_document_round_trip(payload: str) -> None:
    pkg = _spec_package()
    body = edocvn.send_document_request(pkg, "000.00.12.H53", "tok=", payload=payload)
    data = body.to_bytes()
    assert len(body) == len(data)
    with edocvn.read_related(io.BytesIO(data), body.content_type) as rel:
        req = edocvn.read_request(rel.root.read(), Operation.SEND_DOCUMENT)
        again = edocvn.read_header(req.message_header, req.trace_header_list)
        _refs, files = edocvn.to_model(edocvn.match(edocvn.references(req.manifest), rel.attachments), payload)
    assert again.message_header == pkg.message_header
    assert again.trace_header_list == pkg.trace_header_list
    assert files == pkg.attachments


def test_manifest_without_attachments_and_missing_manifest() -> None:
    pkg = _spec_package()
    envelope = edocvn.send_document_envelope(pkg, (), "000.00.12.H53", "tok=")
    assert b"<edXML:Manifest/>" in envelope
    req = edocvn.read_request(envelope, Operation.SEND_DOCUMENT)
    assert edocvn.match(edocvn.references(req.manifest), {}) == []
    no_manifest = envelope.replace(b"<edXML:Manifest/>", b"")
    req = edocvn.read_request(no_manifest, Operation.SEND_DOCUMENT)
    assert req.manifest is None and edocvn.references(None) == ()


def test_href_prefixed_or_not_and_unnamed_part_refused() -> None:
    pkg = _spec_package()
    envelope = edocvn.send_document_envelope(pkg, pkg.attachments, "o", "t")
    xlinked = envelope.replace(b' href="cid:', b' xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:')
    for data in (envelope, xlinked):
        req = edocvn.read_request(data, Operation.SEND_DOCUMENT)
        assert [r.content_id for r in edocvn.references(req.manifest)] == ["att-1@qlvb.example"]
    with edocvn.single_part(b"x", "application/pdf") as parts, pytest.raises(edocvn.ProfileError) as caught:
        edocvn.match(edocvn.references(req.manifest), {"other@x": parts.root})
    assert caught.value.report_code == "R.AttachmentName"


@pytest.mark.parametrize(
    "operation",
    [Operation.CHECK_PERMISSION, Operation.GET_ORGANIZATIONS, Operation.GET_PENDING_DOCUMENT_IDS,
     Operation.GET_DOCUMENT, Operation.CONFIRM_RECEIVED, Operation.GET_TRACES],
)  # fmt: skip
def test_client_requests_read_back(operation: Operation) -> None:
    since = datetime(2024, 5, 1) if operation is Operation.GET_TRACES else None
    data = edocvn.simple_request(operation, "000.00.13.H53", TOKEN, document_id="48213", since=since)
    root = etree.fromstring(data)
    assert root.prefix == "SOAP-ENV"
    for el in root.iter():  # Bkav's style B: the wrapper and its fields in no namespace, none in scope
        if etree.QName(el).namespace is None:
            assert None not in el.nsmap
    req = edocvn.read_request(data, operation)
    assert (req.organ_id, req.token, req.since, req.warnings) == ("000.00.13.H53", TOKEN, since, ())
    assert req.document_id == ("48213" if operation in (Operation.GET_DOCUMENT, Operation.CONFIRM_RECEIVED) else None)


def test_update_traces_round_trip() -> None:
    status = edocvn.read_status(edocvn.read_request(v.UPDATE_TRACES_REQUEST.encode(), Operation.UPDATE_TRACES).status)
    data = edocvn.update_traces_request(status, "000.00.13.H53", TOKEN)
    req = edocvn.read_request(data, Operation.UPDATE_TRACES)
    assert etree.QName(req.status).namespace is None and req.warnings == ()
    assert edocvn.read_status(req.status) == status


# ------------------------------------------------------------------------------------------- MIME


def test_base64_labelled_part_is_decoded_and_lf_framing_accepted() -> None:
    body = (
        b"--B\nContent-Type: text/xml\nContent-ID: <r>\n\n<x/>\n--B\nContent-Type: application/pdf\n"
        b"Content-Transfer-Encoding: base64\nContent-ID: <a>\n\nJVBERi0x\nLjQK\n--B--\n"
    )
    with edocvn.read_related(io.BytesIO(body), 'multipart/related; boundary=B; start="<r>"') as rel:
        assert rel.root.read() == b"<x/>" and rel.attachments["a"].read() == b"%PDF-1.4\n"


def test_mtom_request_recognised() -> None:
    body = b'--B\r\nContent-Type: application/xop+xml; type="text/xml"\r\n\r\n<x/>\r\n--B--\r\n'
    with edocvn.read_related(io.BytesIO(body), 'multipart/related; type="application/xop+xml"; boundary=B') as rel:
        assert rel.xop and rel.root.read() == b"<x/>"


class _Stream(io.RawIOBase):
    """A request body produced on the fly: envelope part, then ``size`` bytes of attachment, never all in memory."""

    def __init__(self, size: int) -> None:
        head = (
            b"--B\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--B\r\nContent-ID: <big>\r\nContent-Type: application/pdf\r\n\r\n"
        )
        self.pieces = iter([head, *([os.urandom(1 << 16)] * (size >> 16)), b"\r\n--B--\r\n"])
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while len(self.pending) < n and (nxt := next(self.pieces, None)) is not None:
            self.pending += nxt
        out, self.pending = self.pending[:n], self.pending[n:]
        return out


def test_20_mb_part_streams_with_bounded_memory(tmp_path) -> None:
    size = 20 * 1024 * 1024
    stream = _Stream(size)
    tracemalloc.start()
    try:
        with edocvn.read_related(stream, "multipart/related; boundary=B", spool_dir=str(tmp_path)) as rel:
            peak = tracemalloc.get_traced_memory()[1]
            assert rel.attachments["big"].size == size
    finally:
        tracemalloc.stop()
    print(f"\n20 MB part: peak traced Python memory while parsing = {peak / 1024:.0f} KiB")
    assert peak < 2 * 1024 * 1024


def test_size_limit_refused_mid_stream() -> None:
    stream = _Stream(20 * 1024 * 1024)
    with pytest.raises(SizeLimitError):
        edocvn.read_related(stream, "multipart/related; boundary=B", max_bytes=1024 * 1024)
    assert next(stream.pieces, None) is not None  # refused before the body was read to its end


def test_truncated_multipart_refused() -> None:
    with pytest.raises(RequestError, match="closing boundary"):
        edocvn.read_related(io.BytesIO(b"--B\r\n\r\n<x/>"), "multipart/related; boundary=B")
