"""Fuzz targets for the parser surfaces of issue 10 (package reader, certificate loading, the JSON edge parse).

Each target states the contract the edges rely on: whatever the bytes, the parser answers a value or raises the
gateway's own error class for that surface — never another exception, which the edges would turn into
``GATEWAY.INTERNAL``. Hypothesis mutates committed seeds (the crash cases of issue 10 among them, as ``@example``s
and seed inputs) and also generates raw input. Bounded for CI (a few seconds per target with the default
``FUZZ_EXAMPLES``); ``FUZZ_EXAMPLES=100000 pytest tests/test_fuzz_parsers.py`` for a longer local run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from der import mutations, sample_certificate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.demo.documents import demo_package, status_for
from gateway.edxml import StatusCode, from_json, parse_json, read_bytes, render, to_json
from gateway.errors import EdxmlError, SizeLimitError
from gateway.validation import validate_package
from gateway.xmlcheck.certs import UnreadableCertificate, is_ca, load_der_certificate, organ_ids, subject

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 1000,  # CI: reproducible; a long local run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# --------------------------------------------------------------------------------------------- seeds


@functools.cache
def package_seeds() -> tuple[bytes, ...]:
    """Good packages, and the issue 10 crash cases built from them."""
    edoc = render(demo_package())
    status = render(status_for(demo_package(), "000.00.00.G22", StatusCode.ARRIVED))
    offset = re.sub(rb"(<edXML:Timestamp>)[^<]*", rb"\g<1>2026-12-01T10:00:00+57:00", status, count=1)
    rel_ns = edoc.replace(b"</edXML:edXMLHeader>", b'<Signature><X xmlns="rel">1</X></Signature></edXML:edXMLHeader>')
    split = re.sub(rb"(<edXML:From>\s*<edXML:OrganId>000\.00\.)", rb"\g<1><!-- -->", edoc, count=1)
    return edoc, status, offset, rel_ns, split


HOSTILE_SNIPPETS = (
    b"<!-- -->",
    b"<?pi x?>",
    b'xmlns="rel"',
    b"+57:00",
    b"&#1;",
    b"&#xD800;",
    b"<![CDATA[x]]>",
    b'xsi:nil="true"',
    b"\xff\xfe",
    b"<Signature/>",
    b"</",
    b"9999-12-31T23:59:59Z",
)


@st.composite
def mutated_packages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(package_seeds())))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("flip", "insert", "delete", "snippet")))
        if action == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.sampled_from(HOSTILE_SNIPPETS))
    return bytes(data)


# --------------------------------------------------------------------------------------------- package


@FUZZ
@given(mutated_packages() | st.binary(max_size=512))
@example(package_seeds()[2])
@example(package_seeds()[3])
@example(package_seeds()[4])
def test_package_reader_raises_only_edxml_errors(data: bytes) -> None:
    for read in (read_bytes, validate_package):
        with contextlib.suppress(EdxmlError, SizeLimitError):
            read(data)


# --------------------------------------------------------------------------------------------- certificates


@functools.cache
def certificate_seeds() -> tuple[bytes, ...]:
    good = sample_certificate()
    return (good, *mutations(good).values())


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(certificate_seeds())))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    return bytes(data)


# A zero or negative serial number loads with a deprecation warning (a future cryptography refuses it; the loader's
# except clause then covers it): the certificate is still read as today, which is what this target checks.
@pytest.mark.filterwarnings("ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning")
@FUZZ
@given(mutated_der() | st.binary(max_size=256))
def test_certificate_loading_raises_only_unreadable_certificate(der: bytes) -> None:
    try:
        cert = load_der_certificate(der)
    except UnreadableCertificate:
        return
    # What the verifier and the trust side read next never fails on a certificate that loaded.
    is_ca(cert)
    organ_ids(cert)
    subject(cert)
    cert.public_bytes(serialization.Encoding.DER)
    assert isinstance(cert, x509.Certificate)


# --------------------------------------------------------------------------------------------- JSON edge

_any_text = st.text(st.characters(codec=None, categories=None), max_size=12)  # controls and surrogates included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_any_text, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """Mostly near-valid packages (a canonical JSON with one field replaced), else arbitrary JSON or bytes."""
    kind = draw(st.sampled_from(("package", "value", "bytes", "deep")))
    if kind == "bytes":
        return draw(st.binary(max_size=256))
    if kind == "deep":
        depth = draw(st.integers(60, 200_000))
        return b"[" * depth + b"]" * depth
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    doc = to_json(demo_package())
    header = doc["messageHeader"]
    key = draw(st.sampled_from(sorted(header)))
    header[key] = draw(json_values)
    return json.dumps(doc).encode()  # ensure_ascii: lone surrogates travel as \\udxxx escapes


@FUZZ
@given(json_bodies())
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'{"kind": "edoc", "messageHeader": {"subject": "\\u0001"}}')
@example(b'{"kind": "status", "description": "\\ud800"}')
def test_json_edge_parse_raises_only_edxml_errors(body: bytes) -> None:
    with contextlib.suppress(EdxmlError):
        render(from_json(parse_json(body)))
