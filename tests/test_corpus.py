"""The project's own sample corpus (gateway.demo.corpus): deterministic, complete, and each file what it claims.

The other test modules run on this corpus (and on the real samples when present); this one checks the corpus
itself: that it shows every variant the real samples show, that every package passes the whole intake check
(safe parse, XSD, reader, business checks) or is refused with the code it names, and how the external corpus
is found.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from gateway import ns
from gateway.demo import corpus as corpus_module
from gateway.demo.corpus import SHARED_ENV, build_corpus, external_dir, external_samples, write_corpus
from gateway.edxml import BussinessDocType, EdocPackage, StatusCode, StatusPackage, from_json, json_schema
from gateway.errors import GatewayError
from gateway.validation import validate_package
from gateway.xmlcheck.safe import parse_bytes
from gateway.xmlcheck.signature import SignatureState, inspect_signature

ENTRIES = build_corpus()
PACKAGES = [e for e in ENTRIES if not e.is_json]


def _entry(name: str):
    return next(e for e in ENTRIES if e.name == name)


def test_two_builds_are_byte_identical(tmp_path):
    again = corpus_module.build_corpus.__wrapped__()
    assert [(e.name, e.data) for e in again] == [(e.name, e.data) for e in ENTRIES]
    first, second = tmp_path / "a", tmp_path / "b"
    paths = write_corpus(first)
    write_corpus(second)
    assert [p.name for p in paths] == [e.name for e in ENTRIES]
    for p in [*paths, first / "README.txt"]:
        assert p.read_bytes() == (second / p.name).read_bytes()


def test_write_replaces_its_own_files_only(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    (tmp_path / "status.edxml").write_bytes(b"stale")
    write_corpus(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep"
    assert (tmp_path / "status.edxml").read_bytes() == _entry("status.edxml").data
    readme = (tmp_path / "README.txt").read_text("utf-8")
    assert all(e.name in readme for e in ENTRIES)
    assert "edoc_jmeter_template.edxml: refused as EDXML.PARSE" in readme


@pytest.mark.parametrize("entry", PACKAGES, ids=lambda e: e.name)
def test_each_package_passes_the_intake_checks_or_is_refused_as_it_says(entry):
    if entry.refused:
        with pytest.raises(GatewayError) as err:
            validate_package(entry.data)
        assert err.value.code == entry.refused
        return
    result = validate_package(entry.data)
    assert result.package == entry.model
    assert result.package.kind is entry.kind


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.is_json], ids=lambda e: e.name)
def test_json_forms_are_canonical_or_refused_as_they_say(entry):
    if entry.refused == "EDXML.PARSE":
        with pytest.raises(json.JSONDecodeError):
            json.loads(entry.data)
        return
    doc = json.loads(entry.data)
    if entry.refused:
        with pytest.raises(GatewayError) as err:
            from_json(doc)
        assert err.value.code == entry.refused
        return
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    assert from_json(doc) == entry.model


def test_every_status_code_and_business_operation_is_there():
    statuses = [e.model for e in PACKAGES if isinstance(e.model, StatusPackage)]
    assert {s.status_code for s in statuses} == set(StatusCode)
    edocs = [e.model for e in PACKAGES if isinstance(e.model, EdocPackage)]
    assert {d.bussiness_doc_type for d in edocs} == set(BussinessDocType)


def test_the_shapes_the_real_samples_show_are_there():
    edocs = [e.model for e in PACKAGES if isinstance(e.model, EdocPackage)]
    assert max(len(d.recipients) for d in edocs) >= 3  # several To
    assert max(len(d.attachments) for d in edocs) >= 2  # several attachments
    attachments = [a for d in edocs for a in d.attachments]
    assert {a.is_zip for a in attachments} == {True, False}  # zipped the VNPT way, and not
    assert any(not r.startswith("000.") for d in edocs for r in d.recipients)  # 28.22.H17: outside the grammar
    update = next(d for d in edocs if d.bussiness_doc_type is BussinessDocType.UPDATE)
    assert update.trace_header_list.bussiness.bussiness_document_info.receivers
    replacement = next(d for d in edocs if d.bussiness_doc_type is BussinessDocType.REPLACE)
    assert len(replacement.trace_header_list.bussiness.replacement_info_list) == 2
    revocation = next(d for d in edocs if d.bussiness_doc_type is BussinessDocType.REVOKE)
    assert revocation.message_header.response_for


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("edoc_new_business_bare_cid.edxml", b"<edXML:Business>"),
        ("edoc_new_business_bare_cid.edxml", b"<ContentId>3126</ContentId>"),  # no cid: prefix
        ("edoc_new.edxml", b"<ContentId>cid:209</ContentId>"),
        ("edoc_new_day_first_empty.edxml", b"<edXML:PromulgationDate>30/09/2025</edXML:PromulgationDate>"),
        ("edoc_new_day_first_empty.edxml", b"<edXML:Competence></edXML:Competence>"),
        ("edoc_new_day_first_empty.edxml", b"<edXML:Appendix/>"),
        ("edoc_new_iso_dates_mime_base64.edxml", b"<edXML:Timestamp>2025-10-01T01:30:00Z</edXML:Timestamp>"),
        ("edoc_new_legacy_namespace.edxml", ns.EDXML_LEGACY.encode()),
        ("status_code_1_day_first.edxml", b"<edXML:StatusCode>1</edXML:StatusCode>"),
        ("status_code_14_iso.edxml", b"<edXML:StatusCode>14</edXML:StatusCode>"),
        ("status_inbox_01.edxml", b"\r\n"),
        ("edoc_jmeter_template.edxml", b"${__StringFromFile("),
    ],
)
def test_each_variant_is_in_the_bytes(name, needle):
    assert needle in _entry(name).data


def test_mime_base64_has_line_breaks_and_the_legacy_file_no_qcvn_namespace():
    data = _entry("edoc_new_iso_dates_mime_base64.edxml").data
    root = parse_bytes(data).getroot()
    text = next(el.text for el in root.iter(f"{{{ns.EDXML}}}ContentTransferEncoded"))
    assert text.count("\n") > 2
    assert ns.EDXML.encode() not in _entry("edoc_new_legacy_namespace.edxml").data


def test_signatures_are_the_official_placeholder_or_absent():
    states = {e.name: inspect_signature(parse_bytes(e.data)) for e in PACKAGES if not e.refused}
    assert states["edoc_new.edxml"] is SignatureState.LEGACY_PLACEHOLDER
    assert states["status.edxml"] is SignatureState.UNSIGNED
    assert set(states.values()) == {SignatureState.LEGACY_PLACEHOLDER, SignatureState.UNSIGNED}


# ------------------------------------------------------------------------------------------- external


def test_the_environment_variable_names_the_external_corpus(tmp_path):
    (tmp_path / "samples").mkdir()
    assert external_dir({SHARED_ENV: str(tmp_path)}) == tmp_path.resolve()
    assert external_samples({SHARED_ENV: str(tmp_path)}) is None  # no .edxml in it
    (tmp_path / "samples" / "x.edxml").write_bytes(b"<x/>")
    assert external_samples({SHARED_ENV: str(tmp_path)}) == tmp_path.resolve() / "samples"
    assert external_dir({SHARED_ENV: ""}) is None  # set but empty: the bare layout, even beside ../shared
    assert external_dir({SHARED_ENV: str(tmp_path / "missing")}) is None


def test_without_the_variable_it_is_shared_beside_the_checkout():
    repo = Path(corpus_module.__file__).resolve().parents[2]
    found = external_dir({})
    expected = repo.parent / "shared"
    assert found == (expected if expected.is_dir() else None)
