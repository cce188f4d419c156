"""Code lists, agency identifiers, dates, business checks, attachments and the JSON edge cases."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime

import pytest
from _samples import REPO

from gateway.edxml import (
    BussinessDocType,
    OrganId,
    Priority,
    StatusCode,
    add_files,
    check,
    extract,
    from_json,
    json_schema,
    make_attachment,
    read_bytes,
    render,
    to_json,
)
from gateway.edxml.dates import format_date, format_timestamp, parse_date, parse_timestamp
from gateway.errors import AttachmentError, EdxmlBusinessError, EdxmlStructureError, EdxmlValueError

REPO_SCHEMA = REPO / "xsd" / "edxml-package.schema.json"


@pytest.mark.parametrize(
    ("value", "level", "parent"),
    [
        ("000.00.00.H53", 1, None),
        ("000.00.01.H53", 2, "000.00.00.H53"),
        ("000.12.31.H53", 3, "000.00.31.H53"),
        ("001.12.31.H53", 4, "000.12.31.H53"),
        ("vxp.saas.02", None, None),
        ("28.22.H17", None, None),
    ],
)
def test_organ_id_levels_and_parents(value, level, parent):
    oid = OrganId(value)
    assert oid.level == level
    assert (str(oid.parent) if oid.parent else None) == parent


def test_organ_id_grammar_and_ancestry():
    for bad in ["", "a" * 36, "000..H53", "000.00.00.H53 ", "x/y"]:
        with pytest.raises(EdxmlValueError):
            OrganId(bad)
    assert OrganId("001.12.31.H53").is_within(OrganId("000.00.00.H53"))
    assert not OrganId("000.00.01.H54").is_within(OrganId("000.00.00.H53"))


def test_dates_tolerant_in_canonical_out():
    assert parse_date("30/10/2020") == parse_date("2020-10-30") == parse_date("2020/10/30") == date(2020, 10, 30)
    assert parse_date("2023/03/14 17:19:16") == date(2023, 3, 14)
    assert format_date(date(2020, 1, 2)) == "2020/01/02"
    assert parse_timestamp("2024-03-12T03:41:31Z") == datetime(2024, 3, 12, 10, 41, 31)
    assert format_timestamp(datetime(2024, 3, 12, 10, 41, 31)) == "2024/03/12 10:41:31"
    for bad in ["2020/13/01", "31/02/2020", "soon", "2020/01/01 25:00:00"]:
        with pytest.raises(EdxmlValueError):
            parse_timestamp(bad)


def test_code_lists(corpus):
    assert StatusCode.parse("1") == (StatusCode.ARRIVED, "StatusCode '1' read as '01'")
    assert StatusCode.RECALL_REQUESTED.sent_by_sender
    assert Priority.parse("3") is Priority.FLASH
    assert Priority.FLASH.label_vi == "Hỏa tốc"
    with pytest.raises(EdxmlValueError):
        Priority.parse("5")
    with pytest.raises(EdxmlValueError):
        BussinessDocType.parse("x")


def _edoc(corpus):
    return read_bytes(corpus.read("edoc_new"))


def test_business_checks_find_every_problem_at_once(corpus):
    pkg = _edoc(corpus)
    h = pkg.message_header
    bad = dataclasses.replace(
        pkg,
        message_header=dataclasses.replace(
            h, to=(h.to[0], h.to[0]), subject="", from_=dataclasses.replace(h.from_, organ_id="bad id")
        ),
    )
    with pytest.raises(EdxmlBusinessError) as err:
        check(bad).raise_if_errors()
    messages = [p["message"] for p in err.value.detail["problems"]]
    assert any("listed 2 times" in m for m in messages)
    assert any("Subject" in m for m in messages)
    assert any("'bad id'" in m for m in messages)


def test_update_must_name_the_document_it_updates(corpus):
    pkg = read_bytes(corpus.read("edoc_update"))
    b = dataclasses.replace(pkg.trace_header_list.bussiness, document_id=None)
    bad = dataclasses.replace(pkg, trace_header_list=dataclasses.replace(pkg.trace_header_list, bussiness=b))
    report = check(bad)
    assert [e["path"] for e in report.errors] == [
        "/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/DocumentId"
    ]


def test_replacement_and_revocation_need_their_targets(corpus):
    rep = read_bytes(corpus.read("edoc_replacement"))
    b = dataclasses.replace(rep.trace_header_list.bussiness, replacement_info_list=())
    bad = dataclasses.replace(rep, trace_header_list=dataclasses.replace(rep.trace_header_list, bussiness=b))
    assert check(bad).errors
    rev = read_bytes(corpus.read("edoc_revocation"))
    assert not check(rev).errors
    bad_rev = dataclasses.replace(rev, message_header=dataclasses.replace(rev.message_header, response_for=()))
    assert check(bad_rev).errors


def test_manifest_and_attachments_must_match(corpus):
    pkg = _edoc(corpus)
    with pytest.raises(AttachmentError) as err:
        check(dataclasses.replace(pkg, references=()))
    assert err.value.code == "EDXML.ATTACHMENT"


def test_long_fields_and_future_dates_are_warnings_not_errors(corpus):
    pkg = _edoc(corpus)
    h = dataclasses.replace(
        pkg.message_header,
        subject="x" * 600,
        promulgation_info=dataclasses.replace(pkg.message_header.promulgation_info, promulgation_date=date(2999, 1, 1)),
    )
    report = check(dataclasses.replace(pkg, message_header=h))
    assert not report.errors
    assert {w["path"].rsplit("/", 1)[-1] for w in report.warnings} >= {"Subject", "PromulgationDate"}


def test_add_and_extract_files_zipped_the_vnpt_way(corpus):
    pkg = dataclasses.replace(_edoc(corpus), references=(), attachments=())
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 50
    pkg = add_files(pkg, [("../../etc/Quyết định 12.pdf", pdf), ("note.txt", b"hello")])
    assert not check(pkg).errors
    back = read_bytes(render(pkg))
    assert back == pkg
    first = back.attachments[0]
    assert first.content_type == "application/zip"
    assert first.data[:4] == b"PK\x03\x04"
    assert first.attachment_name == "Quyết định 12.pdf"  # path parts dropped
    files = extract(first)
    assert [(f.name, f.data) for f in files] == [("Quyết định 12.pdf", pdf)]
    assert files[0].zip_entry.endswith(".pdf")


def test_unzipped_attachment_passes_through():
    ref, att = make_attachment("scan.pdf", b"%PDF-1.4 tiny", zip=False)
    assert att.content_type == "application/pdf"
    assert extract(att)[0].data == b"%PDF-1.4 tiny"
    assert ref.content_id == att.content_id


def test_json_errors_carry_a_json_path(corpus):
    doc = to_json(_edoc(corpus))
    with pytest.raises(EdxmlStructureError) as err:
        from_json({**doc, "kind": "letter"})
    assert err.value.path == "$.kind"
    broken = json.loads(json.dumps(doc))
    broken["messageHeader"]["otherInfo"]["priority"] = "urgent"
    with pytest.raises(EdxmlValueError) as err:
        from_json(broken)
    assert err.value.path == "$.messageHeader.otherInfo.priority"
    broken = json.loads(json.dumps(doc))
    del broken["messageHeader"]["from"]["organId"]
    with pytest.raises(EdxmlStructureError) as err:
        from_json(broken)
    assert err.value.path == "$.messageHeader.from.organId"
    broken = json.loads(json.dumps(doc))
    broken["messageHeader"]["color"] = "red"
    with pytest.raises(EdxmlStructureError):
        from_json(broken)


def test_published_json_schema_is_the_generated_one():
    """The committed schema must be regenerated whenever the model changes (edoc-gateway json-schema)."""
    committed = json.loads(REPO_SCHEMA.read_text("utf-8"))
    assert committed == json.loads(json.dumps(json_schema()))
