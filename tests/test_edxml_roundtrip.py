"""Lossless round trips: XML → model → XML and XML → model → JSON → model → XML (issue 2 item 4)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from _samples import OWN, REAL, sample_params
from hypothesis import HealthCheck, given, settings
from lxml import etree
from strategies import packages

from gateway.edxml import from_json, json_schema, read_bytes, render, to_json
from gateway.xmlcheck import schema

_VALIDATOR = jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", sample_params())
def test_sample_round_trips_through_xml_and_json(path):
    pkg = read_bytes(path.read_bytes())
    xml = render(pkg)
    assert read_bytes(xml) == pkg
    assert render(read_bytes(xml)) == xml  # canonical output is a fixed point
    doc = json.loads(json.dumps(to_json(pkg), ensure_ascii=False))
    _VALIDATOR.validate(doc)
    assert from_json(doc) == pkg
    assert render(from_json(doc)) == xml


@pytest.mark.parametrize("path", sample_params())
def test_canonical_output_validates_against_our_xsd(path):
    pkg = read_bytes(path.read_bytes())
    schema.validate(etree.ElementTree(etree.fromstring(render(pkg))), pkg.kind)


def test_canonical_shape_matches_the_official_samples(corpus):
    pkg = read_bytes(corpus.read("edoc_new"))
    xml = render(pkg)
    assert xml.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    )
    assert b'<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">' in xml
    root = etree.fromstring(xml)
    # AttachmentEncoded is the envelope's sibling, unprefixed
    assert [etree.QName(c).localname for c in root] == ["edXMLEnvelope", "AttachmentEncoded"]
    assert b"<AttachmentEncoded>" in xml and b"<ContentId>cid:" in xml
    b64 = root.find(".//{*}ContentTransferEncoded").text
    assert "\n" not in b64 and len(b64) > 1000  # single-line base64


#: The dd/MM/yyyy PromulgationDate of each corpus' Bkav-style sample, as sent and as we write it.
_DAY_FIRST = {OWN: ("30/09/2025", "2025/09/30"), REAL: ("30/10/2020", "2020/10/30")}


def test_canonical_dates_are_yyyy_mm_dd(corpus):
    sent, canonical = _DAY_FIRST[corpus.name]
    data = corpus.read("edoc_day_first")
    assert f"<edXML:PromulgationDate>{sent}<".encode() in data
    assert f"<edXML:PromulgationDate>{canonical}</edXML:PromulgationDate>".encode() in render(read_bytes(data))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packages)
def test_any_model_round_trips_through_xml(pkg):
    xml = render(pkg)
    assert read_bytes(xml) == pkg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packages)
def test_any_model_round_trips_through_json_and_matches_the_json_schema(pkg):
    doc = json.loads(json.dumps(to_json(pkg)))
    _VALIDATOR.validate(doc)
    back = from_json(doc)
    assert back == pkg
    assert read_bytes(render(back)) == pkg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packages)
def test_any_rendered_model_validates_against_our_xsd(pkg):
    schema.validate(etree.ElementTree(etree.fromstring(render(pkg))), pkg.kind)
