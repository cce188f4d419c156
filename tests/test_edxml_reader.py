"""Reading the public samples and the tolerant variants of edxml.md §8–9."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from _samples import EDOCS, MALFORMED, STATUSES, WELL_FORMED, ids, sample
from lxml import etree

from gateway import ns
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


@pytest.mark.parametrize("path", WELL_FORMED, ids=ids(WELL_FORMED))
def test_every_well_formed_sample_reads(path):
    pkg = read_bytes(path.read_bytes())
    expected = PackageKind.STATUS if path in STATUSES else PackageKind.EDOC
    assert pkg.kind is expected
    assert pkg.document_id


def test_malformed_jmeter_template_is_refused_as_parse_error():
    with pytest.raises(EdxmlParseError) as err:
        read_bytes(sample(MALFORMED).read_bytes())
    assert err.value.code == "EDXML.PARSE"
    assert err.value.detail["line"] > 1


@pytest.mark.parametrize(
    ("name", "code"),
    [
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
    ],
)
def test_status_samples_map_to_their_codes(name, code):
    pkg = read_bytes(sample(name).read_bytes())
    assert isinstance(pkg, StatusPackage)
    assert pkg.status_code is StatusCode(code)
    assert pkg.response_for.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert pkg.timestamp is not None and pkg.timestamp.year in (2015, 2018)


def test_recall_13_comes_from_the_sender_and_names_the_receiver():
    pkg = read_bytes(sample("truclienthong-example__status_cancellation_13.edxml").read_bytes())
    assert pkg.status_code.sent_by_sender
    assert pkg.from_.organ_id == "000.00.00.G22"
    assert pkg.response_for.organ_id == "000.00.00.H41"


def test_edoc_new_sample_fields():
    pkg = read_bytes(sample("truclienthong-example__edoc_new.edxml").read_bytes())
    assert isinstance(pkg, EdocPackage)
    h = pkg.message_header
    assert h.from_.organ_id == "000.00.00.A80"
    assert pkg.recipients == ("28.22.H17",)
    assert h.code.code_number == "74fass22"
    assert h.promulgation_info.promulgation_date == date(2019, 1, 16)
    assert h.due_date == date(2018, 9, 28)
    assert h.document_type.type_name == "Công văn"
    assert h.other_info.priority is Priority.NORMAL
    assert h.other_info.direction is False
    assert h.other_info.appendixes == ("Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",)
    assert h.steering_type is SteeringType.STEERING
    assert h.to_places == ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP")
    assert pkg.bussiness_doc_type is BussinessDocType.NEW
    assert pkg.trace_header_list.trace_headers[0].timestamp == datetime(2018, 9, 28)
    assert pkg.signature is not None
    assert not pkg.signature.is_xmldsig  # the official dummy sits in the edXML namespace
    assert [r.content_id for r in pkg.references] == ["209"]
    assert pkg.attachments[0].content_id == "209"
    assert pkg.attachments[0].is_zip


def test_update_replacement_revocation_structures():
    upd = read_bytes(sample("truclienthong-example__edoc_update.edxml").read_bytes())
    b = upd.trace_header_list.bussiness
    assert b.bussiness_doc_type is BussinessDocType.UPDATE
    assert b.document_id == "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT"  # opaque: not a real date
    assert b.bussiness_document_info.document_receiver is True
    assert [(r.organ_id, r.receiver_type) for r in b.bussiness_document_info.receivers] == [
        ("000.00.00.H41", ReceiverType.REMOVED),
        ("000.00.00.H14", ReceiverType.ADDED),
    ]
    rep = read_bytes(sample("truclienthong-example__edoc_replacement.edxml").read_bytes())
    rb = rep.trace_header_list.bussiness
    assert rb.bussiness_doc_type is BussinessDocType.REPLACE
    assert len(rb.replacement_info_list) == 2
    assert rb.replacement_info_list[0].organ_ids == ("000.00.00.H41", "000.00.00.H14")
    rev = read_bytes(sample("truclienthong-example__edoc_revocation.edxml").read_bytes())
    assert rev.bussiness_doc_type is BussinessDocType.REVOKE
    assert rev.message_header.response_for[0].document_id == "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"


def test_order_insensitive_bussiness_before_traceheader():
    pkg = read_bytes(sample("truclienthong-example__dc0bdef0-c7a3-4aaf-b717-777303442973.edxml").read_bytes())
    assert pkg.trace_header_list.trace_headers[0].organ_id == "000.00.00.G22"
    assert pkg.trace_header_list.bussiness.bussiness_doc_type is BussinessDocType.NEW
    assert len(pkg.recipients) == 3


def test_dd_mm_yyyy_date_and_empty_elements_of_bkav_sample():
    pkg = read_bytes(sample("edoc-integrator__edoc_new.edxml").read_bytes())
    h = pkg.message_header
    assert h.promulgation_info.promulgation_date == date(2020, 10, 30)
    assert any("'30/10/2020' read as '2020/10/30'" in w for w in pkg.warnings)
    assert h.from_.organ_add is None  # <edXML:OrganAdd/>
    assert h.due_date is None  # <edXML:DueDate></edXML:DueDate>
    assert h.signer_info.full_name is None
    assert h.other_info.appendixes == ()  # <edXML:Appendix/>


def _mutate(name: str, fn) -> bytes:
    root = etree.fromstring(sample(name).read_bytes())
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _find(root, local):
    return next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == local)


def test_business_spelling_and_bare_cid_are_tolerated():
    def fn(root):
        _find(root, "Bussiness").tag = f"{{{ns.EDXML}}}Business"
        for e in root.iter(f"{{{ns.EDXML}}}ContentId"):
            e.text = "209"

    pkg = read_bytes(_mutate("truclienthong-example__edoc_new.edxml", fn))
    assert pkg.trace_header_list.bussiness.bussiness_doc_type is BussinessDocType.NEW
    assert pkg.attachments[0].content_id == "209"
    assert any("Business" in w for w in pkg.warnings)


def test_legacy_namespace_reads_like_qcvn():
    data = sample("truclienthong-example__status_acceptance_03.edxml").read_bytes()
    legacy = data.replace(ns.EDXML.encode(), ns.EDXML_LEGACY.encode())
    a, b = read_bytes(data), read_bytes(legacy)
    assert a == b
    assert any("legacy namespace" in w for w in b.warnings)


def test_iso_and_legacy_timestamps_and_status_code_variants():
    def fn(root):
        _find(root, "Timestamp").text = "20/09/2015 11:08:36"
        _find(root, "StatusCode").text = "3"

    pkg = read_bytes(_mutate("truclienthong-example__status_acceptance_03.edxml", fn))
    assert pkg.timestamp == datetime(2015, 9, 20, 11, 8, 36)
    assert pkg.status_code is StatusCode.ACCEPTED

    def fn14(root):
        _find(root, "Timestamp").text = "2015-09-20T04:08:36Z"
        _find(root, "StatusCode").text = "14"

    pkg = read_bytes(_mutate("truclienthong-example__status_change-acceptance_15.edxml", fn14))
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
def test_bad_values_are_refused_with_path(element, value, error):
    def fn(root):
        _find(root, element).text = value

    with pytest.raises(error) as err:
        read_bytes(_mutate("truclienthong-example__status_acceptance_03.edxml", fn))
    assert err.value.code == "EDXML.VALUE"
    assert err.value.path.endswith(element)


def test_missing_message_header_is_a_structure_error():
    def fn(root):
        mh = _find(root, "MessageHeader")
        mh.getparent().remove(mh)

    with pytest.raises(EdxmlStructureError) as err:
        read_bytes(_mutate("truclienthong-example__edoc_new.edxml", fn))
    assert err.value.code == "EDXML.STRUCTURE"
    assert err.value.path.endswith("MessageHeader")


def test_wrong_root_is_a_structure_error():
    with pytest.raises(EdxmlStructureError):
        read_bytes(b"<edXML/>")
    with pytest.raises(EdxmlStructureError):
        read_bytes(f'<other xmlns="{ns.EDXML}"/>'.encode())


def test_model_is_immutable():
    pkg = read_bytes(sample("truclienthong-example__status_inbox_01.edxml").read_bytes())
    with pytest.raises(dataclasses.FrozenInstanceError):
        pkg.description = "x"


@pytest.mark.parametrize("path", EDOCS, ids=ids(EDOCS))
def test_edoc_samples_have_matching_manifest_and_attachments(path):
    pkg = read_bytes(path.read_bytes())
    assert {r.content_id for r in pkg.references} == {a.content_id for a in pkg.attachments}
