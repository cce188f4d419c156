"""Reading the sample corpora (the project's own, and the real samples when present) and the tolerant
variants of edxml.md §8–9."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from _samples import OWN, REAL, REAL_ABSENT, is_status, named_corpus, own_entries, real, sample_params
from lxml import etree

from gateway import ns
from gateway.demo.corpus_story import VPCP_DOCUMENT_ID
from gateway.edxml import (
    BussinessDocType,
    EdocPackage,
    PackageKind,
    Priority,
    ReceiverType,
    StatusCode,
    StatusPackage,
    SteeringType,
    read_bytes,
)
from gateway.errors import EdxmlParseError, EdxmlStructureError, EdxmlValueError

G22, H41, H14, G17 = "000.00.00.G22", "000.00.00.H41", "000.00.00.H14", "000.00.00.G17"
REAL_LETTER = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"


@pytest.mark.parametrize("path", sample_params())
def test_every_well_formed_sample_reads(path):
    pkg = read_bytes(path.read_bytes())
    expected = PackageKind.STATUS if is_status(path) else PackageKind.EDOC
    assert pkg.kind is expected
    assert pkg.document_id


@pytest.mark.parametrize("entry", [e for e in own_entries() if not e.is_json], ids=lambda e: e.name)
def test_every_own_sample_reads_as_the_model_it_was_built_from(entry):
    """The own corpus knows what each file means: the variants change bytes, never the reading."""
    if entry.refused:
        with pytest.raises(EdxmlParseError) as err:
            read_bytes(entry.data)
        assert err.value.code == entry.refused
        return
    pkg = read_bytes(entry.data)
    assert pkg == entry.model
    for expected in entry.warnings:
        assert any(expected in w for w in pkg.warnings), (expected, pkg.warnings)
    assert bool(pkg.warnings) == bool(entry.warnings)


def test_malformed_jmeter_template_is_refused_as_parse_error(corpus):
    with pytest.raises(EdxmlParseError) as err:
        read_bytes(corpus.read("malformed"))
    assert err.value.code == "EDXML.PARSE"
    assert err.value.detail["line"] > 1


_REAL_STATUS_CODES = [
    ("truclienthong-example__status_inbox_01.edxml", "01"),
    ("truclienthong-example__status.edxml", "01"),
    ("truclienthong-example__status_rejection_02.edxml", "02"),
    ("truclienthong-example__status_acceptance_03.edxml", "03"),
    ("truclienthong-example__status_assignment_04.edxml", "04"),
    ("truclienthong-example__status_processing_05.edxml", "05"),
    ("edoc-integrator__status_processing_05.edxml", "05"),
    ("truclienthong-example__status_finish_06.edxml", "06"),
    ("truclienthong-example__status_cancellation_13.edxml", "13"),
    ("truclienthong-example__status_change-acceptance_15.edxml", "15"),
    ("truclienthong-example__status_change-rejection_16.edxml", "16"),
]
_STATUS_CODES = [
    *(
        pytest.param(OWN, e.name, e.model.status_code.value, id=f"{OWN}/{e.name}")
        for e in own_entries()
        if isinstance(e.model, StatusPackage) and not e.is_json
    ),
    *(
        pytest.param(
            REAL, name, code, id=f"{REAL}/{name}", marks=[] if real() else [pytest.mark.skip(reason=REAL_ABSENT)]
        )
        for name, code in _REAL_STATUS_CODES
    ),
]
#: What the status samples are about: (DocumentId of the letter, the years of their timestamps).
_STATUS_FACTS = {OWN: (VPCP_DOCUMENT_ID, (2025,)), REAL: (REAL_LETTER, (2015, 2018))}


@pytest.mark.parametrize(("which", "name", "code"), _STATUS_CODES)
def test_status_samples_map_to_their_codes(which, name, code):
    pkg = read_bytes(named_corpus(which).read(name))
    assert isinstance(pkg, StatusPackage)
    assert pkg.status_code is StatusCode(code)
    letter, years = _STATUS_FACTS[which]
    assert pkg.response_for.document_id == letter
    assert pkg.timestamp is not None and pkg.timestamp.year in years


def test_recall_13_comes_from_the_sender_and_names_the_receiver(corpus):
    pkg = read_bytes(corpus.read("status_13"))
    assert pkg.status_code.sent_by_sender
    assert pkg.from_.organ_id == G22
    assert pkg.response_for.organ_id == H41


#: The new-document sample of each corpus: one To, every optional element, a zipped attachment "209".
_EDOC_NEW = {
    OWN: {
        "from": "000.00.00.A80",
        "code_number": "15",
        "promulgation_date": date(2025, 9, 29),
        "due_date": date(2025, 10, 9),
        "appendixes": ("Phụ lục: danh sách đầu mối liên thông",),
        "to_places": ("Như trên", "Lưu: VT"),
        "trace": datetime(2025, 9, 29),
    },
    REAL: {
        "from": "000.00.00.A80",
        "code_number": "74fass22",
        "promulgation_date": date(2019, 1, 16),
        "due_date": date(2018, 9, 28),
        "appendixes": ("Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",),
        "to_places": ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP"),
        "trace": datetime(2018, 9, 28),
    },
}


def test_edoc_new_sample_fields(corpus):
    facts = _EDOC_NEW[corpus.name]
    pkg = read_bytes(corpus.read("edoc_new"))
    assert isinstance(pkg, EdocPackage)
    h = pkg.message_header
    assert h.from_.organ_id == facts["from"]
    assert pkg.recipients == ("28.22.H17",)
    assert h.code.code_number == facts["code_number"]
    assert h.promulgation_info.promulgation_date == facts["promulgation_date"]
    assert h.due_date == facts["due_date"]
    assert h.document_type.type_name == "Công văn"
    assert h.other_info.priority is Priority.NORMAL
    assert h.other_info.direction is False
    assert h.other_info.appendixes == facts["appendixes"]
    assert h.steering_type is SteeringType.STEERING
    assert h.to_places == facts["to_places"]
    assert pkg.bussiness_doc_type is BussinessDocType.NEW
    assert pkg.trace_header_list.trace_headers[0].timestamp == facts["trace"]
    assert pkg.signature is not None
    assert not pkg.signature.is_xmldsig  # the official dummy sits in the edXML namespace
    assert [r.content_id for r in pkg.references] == ["209"]
    assert pkg.attachments[0].content_id == "209"
    assert pkg.attachments[0].is_zip


#: (updated DocumentId, update's receiver list, revoked DocumentId) per corpus.
_FOLLOW_UPS = {
    OWN: (VPCP_DOCUMENT_ID, [(G17, ReceiverType.REMOVED), (H14, ReceiverType.ADDED)], VPCP_DOCUMENT_ID),
    REAL: (
        "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT",  # opaque: not a real date
        [(H41, ReceiverType.REMOVED), (H14, ReceiverType.ADDED)],
        "000.00.04.G14,2012/08/06,267/VPCP-TTĐT",
    ),
}


def test_update_replacement_revocation_structures(corpus):
    updated, receivers, revoked = _FOLLOW_UPS[corpus.name]
    upd = read_bytes(corpus.read("edoc_update"))
    b = upd.trace_header_list.bussiness
    assert b.bussiness_doc_type is BussinessDocType.UPDATE
    assert b.document_id == updated
    assert b.bussiness_document_info.document_receiver is True
    assert [(r.organ_id, r.receiver_type) for r in b.bussiness_document_info.receivers] == receivers
    rep = read_bytes(corpus.read("edoc_replacement"))
    rb = rep.trace_header_list.bussiness
    assert rb.bussiness_doc_type is BussinessDocType.REPLACE
    assert len(rb.replacement_info_list) == 2
    assert rb.replacement_info_list[0].organ_ids == (H41, H14)
    rev = read_bytes(corpus.read("edoc_revocation"))
    assert rev.bussiness_doc_type is BussinessDocType.REVOKE
    assert rev.message_header.response_for[0].document_id == revoked


def test_order_insensitive_bussiness_before_traceheader(corpus):
    pkg = read_bytes(corpus.read("edoc_three_to"))
    assert pkg.trace_header_list.trace_headers[0].organ_id == G22
    assert pkg.trace_header_list.bussiness.bussiness_doc_type is BussinessDocType.NEW
    assert len(pkg.recipients) == 3


#: (PromulgationDate, the reader's warning about it) of the dd/MM/yyyy sample per corpus.
_DAY_FIRST = {
    OWN: (date(2025, 9, 30), "'30/09/2025' read as '2025/09/30'"),
    REAL: (date(2020, 10, 30), "'30/10/2020' read as '2020/10/30'"),
}


def test_dd_mm_yyyy_date_and_empty_elements_of_bkav_sample(corpus):
    day, warning = _DAY_FIRST[corpus.name]
    pkg = read_bytes(corpus.read("edoc_day_first"))
    h = pkg.message_header
    assert h.promulgation_info.promulgation_date == day
    assert any(warning in w for w in pkg.warnings)
    assert h.from_.organ_add is None  # <edXML:OrganAdd/>
    assert h.due_date is None  # <edXML:DueDate></edXML:DueDate>
    assert h.signer_info.full_name is None
    assert h.other_info.appendixes == ()  # <edXML:Appendix/>


def _mutate(data: bytes, fn) -> bytes:
    root = etree.fromstring(data)
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _find(root, local):
    return next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == local)


def test_business_spelling_and_bare_cid_are_tolerated(corpus):
    def fn(root):
        _find(root, "Bussiness").tag = f"{{{ns.EDXML}}}Business"
        for e in root.iter(f"{{{ns.EDXML}}}ContentId"):
            e.text = "209"

    pkg = read_bytes(_mutate(corpus.read("edoc_new"), fn))
    assert pkg.trace_header_list.bussiness.bussiness_doc_type is BussinessDocType.NEW
    assert pkg.attachments[0].content_id == "209"
    assert any("Business" in w for w in pkg.warnings)


def test_bkav_spelling_of_the_business_children_is_read_too(corpus):
    """Legacy profile §9: Bkav spells the block AND its children ``Business…``; their values must not be lost."""

    def fn(root):
        block = _find(root, "Bussiness")
        block.tag = f"{{{ns.EDXML}}}Business"
        for e in list(block.iter()):
            if isinstance(e.tag, str) and etree.QName(e).localname.startswith("BussinessDoc"):
                e.tag = f"{{{ns.EDXML}}}Business" + etree.QName(e).localname[len("Bussiness") :]
        _find(root, "BusinessDocType").text = "2"
        reason = (
            _find(root, "BusinessDocReason")
            if any(isinstance(e.tag, str) and etree.QName(e).localname == "BusinessDocReason" for e in root.iter())
            else etree.SubElement(block, f"{{{ns.EDXML}}}BusinessDocReason")
        )
        reason.text = "Cập nhật nơi nhận"

    pkg = read_bytes(_mutate(corpus.read("edoc_new"), fn))
    assert pkg.trace_header_list.bussiness.bussiness_doc_type is BussinessDocType.UPDATE
    assert pkg.trace_header_list.bussiness.bussiness_doc_reason == "Cập nhật nơi nhận"


def test_legacy_namespace_reads_like_qcvn(corpus):
    data = corpus.read("status_03")
    legacy = data.replace(ns.EDXML.encode(), ns.EDXML_LEGACY.encode())
    a, b = read_bytes(data), read_bytes(legacy)
    assert a == b
    assert any("legacy namespace" in w for w in b.warnings)


def test_iso_and_legacy_timestamps_and_status_code_variants(corpus):
    def fn(root):
        _find(root, "Timestamp").text = "20/09/2015 11:08:36"
        _find(root, "StatusCode").text = "3"

    pkg = read_bytes(_mutate(corpus.read("status_03"), fn))
    assert pkg.timestamp == datetime(2015, 9, 20, 11, 8, 36)
    assert pkg.status_code is StatusCode.ACCEPTED

    def fn14(root):
        _find(root, "Timestamp").text = "2015-09-20T04:08:36Z"
        _find(root, "StatusCode").text = "14"

    pkg = read_bytes(_mutate(corpus.read("status_15"), fn14))
    assert pkg.timestamp == datetime(2015, 9, 20, 11, 8, 36)  # UTC → Vietnam time
    assert pkg.status_code is StatusCode.CHANGE_ACCEPTED
    assert any("14" in w for w in pkg.warnings)


@pytest.mark.parametrize(
    ("element", "value", "error"),
    [
        ("StatusCode", "09", EdxmlValueError),
        ("StatusCode", "abc", EdxmlValueError),
        ("Timestamp", "yesterday", EdxmlValueError),
        ("PromulgationDate", "2015/02/30", EdxmlValueError),
    ],
)
def test_bad_values_are_refused_with_path(corpus, element, value, error):
    def fn(root):
        _find(root, element).text = value

    with pytest.raises(error) as err:
        read_bytes(_mutate(corpus.read("status_03"), fn))
    assert err.value.code == "EDXML.VALUE"
    assert err.value.path.endswith(element)


def test_missing_message_header_is_a_structure_error(corpus):
    def fn(root):
        mh = _find(root, "MessageHeader")
        mh.getparent().remove(mh)

    with pytest.raises(EdxmlStructureError) as err:
        read_bytes(_mutate(corpus.read("edoc_new"), fn))
    assert err.value.code == "EDXML.STRUCTURE"
    assert err.value.path.endswith("MessageHeader")


def test_wrong_root_is_a_structure_error():
    with pytest.raises(EdxmlStructureError):
        read_bytes(b"<edXML/>")
    with pytest.raises(EdxmlStructureError):
        read_bytes(f'<other xmlns="{ns.EDXML}"/>'.encode())


def test_model_is_immutable(corpus):
    pkg = read_bytes(corpus.read("status_01"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        pkg.description = "x"


@pytest.mark.parametrize("path", sample_params("edocs"))
def test_edoc_samples_have_matching_manifest_and_attachments(path):
    pkg = read_bytes(path.read_bytes())
    assert {r.content_id for r in pkg.references} == {a.content_id for a in pkg.attachments}
