"""Issue 10 findings 5 and 9: inputs that ended in ``GATEWAY.INTERNAL`` (or in a traceback on the command line), and
identity confusions — each now a stable client-error code, at the unit level and through the edge where it was seen
(SOAP and the JSON edge on a served gateway, on SQLite and PostgreSQL, nothing stored).

The malformed certificates and zips are built at test time: a good certificate DER-edited (:mod:`der`), zips
written by :mod:`zipfile` and then patched at their header offsets.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import re
import struct
import time
import urllib.error
import urllib.request
import uuid
import zipfile

import click
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from der import mutations
from test_e2e import A, B, C, _fault_code, _package, gateway  # noqa: F401  (gateway: the served fixture)
from zeep.exceptions import Fault

from gateway.cli import main
from gateway.cli.common import _Group
from gateway.demo.documents import demo_package, status_for
from gateway.edxml import (
    Attachment,
    BussinessDocType,
    EdocPackage,
    StatusCode,
    extract,
    from_json,
    parse_json,
    read_bytes,
    render,
    to_json,
)
from gateway.edxml.dates import parse_timestamp
from gateway.errors import (
    AttachmentError,
    EdxmlParseError,
    EdxmlValueError,
    SignatureError,
)
from gateway.validation import validate_package
from gateway.xmlcheck.certs import UnreadableCertificate, load_der_certificate
from gateway.xmlcheck.signature import verify_package
from gateway.xmlcheck.signing import SigningKey, sign_package
from gateway.xmlcheck.trust import TrustStore

# ------------------------------------------------------------------------------------------ builders


def _status_with_timestamp(value: str) -> bytes:
    text = render(status_for(demo_package(), B, StatusCode.ARRIVED)).decode()
    return re.sub(r"(<edXML:Timestamp>)[^<]*(</edXML:Timestamp>)", rf"\g<1>{value}\g<2>", text, count=1).encode()


def _with_legacy_signature(data: bytes, signature: str) -> bytes:
    return data.replace(b"</edXML:edXMLHeader>", signature.encode() + b"</edXML:edXMLHeader>", 1)


def _split_sender(data: bytes, insert: str) -> bytes:
    text = data.decode()
    m = re.search(r"(<edXML:From>\s*<edXML:OrganId>)([^<]*)(</edXML:OrganId>)", text)
    assert m is not None
    organ = m.group(2)
    return (text[: m.start(2)] + organ[:7] + insert + organ[7:] + text[m.end(2) :]).encode()


def _leaf_der(pki, organ: str) -> bytes:
    cert = x509.load_pem_x509_certificate(pki.agencies[organ].cert.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def _with_keyinfo_cert(signed: bytes, good_der: bytes, bad_der: bytes) -> bytes:
    """The signed package with the signer's KeyInfo certificate swapped for ``bad_der``."""
    text = signed.decode()
    nodes = re.findall(r"<ds:X509Certificate>([^<]*)</ds:X509Certificate>", text)
    [leaf] = [n for n in nodes if base64.b64decode("".join(n.split())) == good_der]
    return text.replace(leaf, base64.b64encode(bad_der).decode(), 1).encode()


CERT_MUTATIONS = sorted(
    [
        "duplicate-extension",
        "invalid-version",
        "unknown-signature-oid",
        "garbage-subject",
        "bad-printable-issuer",
        "garbage-extension-values",
        "unknown-key-algorithm",
        "bad-validity-time",
    ]
)


def _zip_variants() -> dict[str, bytes]:
    """Zips that made :mod:`zipfile` raise something other than BadZipFile (issue 10: ``extract`` crashed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("letter.txt", b"Kinh gui " * 200)
    good = buf.getvalue()
    cd = good.rindex(b"PK\x01\x02")  # the central directory entry
    out = {}
    method = bytearray(good)  # compression method 99 (AES) in both headers: NotImplementedError on open
    struct.pack_into("<H", method, 8, 99)
    struct.pack_into("<H", method, cd + 10, 99)
    out["unsupported-compression"] = bytes(method)
    offset = bytearray(good)  # local header offset pointing before the archive: "negative seek value"
    struct.pack_into("<i", offset, cd + 42, -27)
    out["negative-offset"] = bytes(offset)
    version = bytearray(good)  # "needs version 25.5" in the central directory: NotImplementedError at open
    struct.pack_into("<B", version, cd + 6, 255)
    out["zip-version"] = bytes(version)
    empty_name = io.BytesIO()  # an entry with an empty name: ZipInfo.is_dir() raised IndexError
    with zipfile.ZipFile(empty_name, "w") as zf:
        zf.writestr(zipfile.ZipInfo("x"), b"data")
    raw = bytearray(empty_name.getvalue())
    lh, cdh = 0, raw.rindex(b"PK\x01\x02")
    struct.pack_into("<H", raw, lh + 26, 0)
    struct.pack_into("<H", raw, cdh + 28, 0)
    del raw[cdh + 46 : cdh + 47]  # the central name byte
    del raw[lh + 30 : lh + 31]  # the local name byte
    eocd = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<I", raw, eocd + 12, struct.unpack_from("<I", raw, eocd + 12)[0] - 1)
    struct.pack_into("<I", raw, eocd + 16, struct.unpack_from("<I", raw, eocd + 16)[0] - 1)
    out["empty-entry-name"] = bytes(raw)
    utf8 = bytearray(good)  # flag 0x800 (UTF-8 names) with a name that is not UTF-8
    struct.pack_into("<H", utf8, cd + 8, 0x800)
    utf8[cd + 46] = 0xFF
    utf8[30] = 0xFF
    out["name-not-utf8"] = bytes(utf8)
    return out


# ------------------------------------------------------------------------------------------ unit level


@pytest.mark.parametrize(
    "value",
    ["2026-12-01T10:00:00+57:00", "2026/12/01 10:00:00+05:99", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"],
)
def test_impossible_timestamps_are_value_errors(value):
    with pytest.raises(EdxmlValueError) as err:
        validate_package(_status_with_timestamp(value))
    assert err.value.path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Timestamp"
    assert parse_timestamp("2026-12-01T10:00:00+23:59") is not None  # extreme but possible offsets still read


def test_a_legacy_signature_c14n_cannot_canonicalise_is_a_signature_error():
    data = _with_legacy_signature(render(demo_package()), '<Signature><X xmlns="rel">1</X></Signature>')
    for read in (read_bytes, validate_package):
        with pytest.raises(SignatureError) as err:
            read(data)
        assert err.value.detail["reason"] == "malformed"
        assert err.value.path == "/edXML/edXMLEnvelope/edXMLHeader/Signature"


@pytest.mark.parametrize("name", CERT_MUTATIONS)
def test_a_malformed_keyinfo_certificate_is_a_signature_error(pki, name):
    good = _leaf_der(pki, A)
    bad = mutations(good)[name]
    with pytest.raises(UnreadableCertificate):
        load_der_certificate(bad)
    cred = pki.agencies[A]
    signed = sign_package(render(demo_package()), SigningKey.from_files(cred.key, cred.cert, pki.chain))
    with pytest.raises(SignatureError) as err:
        verify_package(_with_keyinfo_cert(signed, good, bad), TrustStore.from_files(pki.trust, pki.crls))
    assert err.value.detail["reason"] == "malformed"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "nested deeper"),
        (b'{"kind": "edoc", "x": "a\\u0001b"}', "U+0001"),
        (b'{"kind": "edoc", "x": "\\ud800"}', "U+D800"),
        (b'{"\\udfff": 1}', "U+DFFF"),
        (b"1" * 5000, "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"\xff{}", "not UTF-8"),
    ],
)
def test_json_bodies_that_crashed_are_parse_errors(body, needle):
    with pytest.raises(EdxmlParseError) as err:
        parse_json(body)
    assert needle in err.value.message


def test_from_json_refuses_text_xml_cannot_carry():
    doc = to_json(demo_package())
    doc["messageHeader"]["subject"] = "a\x01b"
    with pytest.raises(EdxmlValueError) as err:
        from_json(doc)
    assert err.value.path == "$.messageHeader.subject"


@pytest.mark.parametrize("name", sorted(_zip_variants()))
def test_a_crafted_zip_attachment_is_an_attachment_error(name):
    data = _zip_variants()[name]
    attachment = Attachment(content_id="1", attachment_name="a.txt", content_type="application/zip", data=data)
    if name == "empty-entry-name":  # a nameless entry is a file like any other (it crashed is_dir())
        [file] = extract(attachment)
        assert (file.name, file.data) == ("a.txt", b"data")
        return
    with pytest.raises(AttachmentError):
        extract(attachment)


def test_inspect_extract_prints_one_line_never_a_traceback(tmp_path):
    pkg = demo_package()
    assert isinstance(pkg, EdocPackage) and pkg.attachments
    att = dataclasses.replace(pkg.attachments[0], data=_zip_variants()["negative-offset"])
    path = tmp_path / "p.edxml"
    path.write_bytes(render(dataclasses.replace(pkg, attachments=(att, *pkg.attachments[1:]))))
    result = CliRunner().invoke(main, ["inspect", str(path), "--extract", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{path}: EDXML.ATTACHMENT: ")


def test_every_cli_failure_is_one_coded_line_even_a_defect():
    """The catch-all of the real root group class: a defect is ``SOURCE: GATEWAY.INTERNAL: …``, exit 1."""

    @click.group(cls=_Group)
    def root() -> None:
        pass

    @root.command()
    def broken() -> None:
        raise ZeroDivisionError("boom\nsecond line")

    result = CliRunner().invoke(root, ["broken"])
    assert result.exit_code == 1
    assert result.stderr == "broken: GATEWAY.INTERNAL: unexpected ZeroDivisionError: boom second line\n"


def test_build_with_hostile_json_is_a_parse_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    result = CliRunner().invoke(main, ["build", "--json", str(path), str(tmp_path / "out.edxml")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}: EDXML.PARSE: ")


@pytest.mark.parametrize("insert", ["<!-- -->", "<?x y?>", "<b/>"])
def test_a_field_split_by_a_comment_pi_or_element_is_refused(insert):
    data = _split_sender(render(demo_package()), insert)
    # An element inside is already an XSD refusal (EDXML.SCHEMA) on the intake path; the reader refuses it too.
    for read in (read_bytes,) if insert == "<b/>" else (read_bytes, validate_package):
        with pytest.raises(EdxmlValueError) as err:
            read(data)
        assert err.value.path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId"


# ------------------------------------------------------------------------------------------ through the edges


def _rest_post(gw, system: str, body: bytes) -> tuple[int, dict]:
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(gw.secrets[system].encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        gw.url + "/rest/v1/packages",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Edoc-System": system,
            "X-Edoc-Timestamp": ts,
            "X-Edoc-Signature": sig,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _refused_soap(gw, fn) -> str:
    before = gw.stored()
    with pytest.raises(Fault) as err:
        fn()
    assert gw.stored() == before  # nothing stored
    return _fault_code(err.value)


def test_hostile_packages_through_the_soap_edge_are_stable_refusals(gateway, pki):  # noqa: F811
    sa, sb, sc = gateway.client("SA"), gateway.client("SB"), gateway.client("SC")
    sent, pkg = _package(pki, number="901")
    sa.send_edoc(sent)  # a real document from A to B and C

    status = render(status_for(pkg, B, StatusCode.ARRIVED)).decode()
    offset = re.sub(r"(<edXML:Timestamp>)[^<]*(<)", r"\g<1>2026-12-01T10:00:00+57:00\g<2>", status, count=1)
    assert _refused_soap(gateway, lambda: sb.send_status(offset.encode())) == "EDXML.VALUE"

    unsigned, _ = _package(pki, number="902", sender=C, to=(B,), sign=False)
    rel = _with_legacy_signature(unsigned, '<Signature><X xmlns="rel">1</X></Signature>')
    assert _refused_soap(gateway, lambda: sc.send_edoc(rel)) == "EDXML.SIGNATURE"

    good_der = _leaf_der(pki, A)
    for name, bad in sorted(mutations(good_der).items()):
        signed, _ = _package(pki, number=f"91{CERT_MUTATIONS.index(name)}")
        forged = _with_keyinfo_cert(signed, good_der, bad)
        assert _refused_soap(gateway, lambda data=forged: sa.send_edoc(data)) == "EDXML.SIGNATURE", name

    split = _split_sender(_package(pki, number="903", sender=C, to=(B,), sign=False)[0], "<!-- -->")
    assert _refused_soap(gateway, lambda: sc.send_edoc(split)) == "EDXML.VALUE"

    # C issues a new document under A's DocumentId, then "revokes" A's document: both refused.
    under_a = _retargeted(pki, pkg, sender=C, document_id=pkg.document_id)
    assert _refused_soap(gateway, lambda: sc.send_edoc(under_a)) == "EDXML.DOCUMENT_ID"
    revoke = _retargeted(pki, pkg, sender=C, document_id=f"{C},2026/11/28,904/VP", revoke=pkg.document_id)
    assert _refused_soap(gateway, lambda: sc.send_edoc(revoke)) == "EDXML.DOCUMENT_ID"
    # Under the default (standard) a DocumentId merely naming another issuer is accepted (producers copy templates,
    # as the SDK's own edoc_new sample does) — and cannot block the real issuer's document under that id later.
    preempt = f"{A},2026/11/28,999/VP"
    assert sc.send_edoc(_retargeted(pki, pkg, sender=C, document_id=preempt)).duplicate is False
    assert sa.send_edoc(_retargeted(pki, pkg, sender=A, document_id=preempt, sign=True)).duplicate is False
    # An opaque (UUID) DocumentId is accepted once; another agency cannot take it afterwards.
    opaque = str(uuid.uuid4())
    sc.send_edoc(_retargeted(pki, pkg, sender=C, document_id=opaque))
    taken = _retargeted(pki, pkg, sender=A, document_id=opaque, sign=True)
    assert _refused_soap(gateway, lambda: sa.send_edoc(taken)) == "EDXML.DOCUMENT_ID"

    before = gateway.stored()
    for body, needle in (
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"kind": "edoc", "messageHeader": {"subject": "a\\u0001"}}', "U+0001"),
        (b'{"kind": "status", "description": "\\ud800"}', "U+D800"),
    ):
        status, answer = _rest_post(gateway, "SB", body)
        assert (status, answer["code"]) == (400, "EDXML.PARSE"), answer
        assert needle in answer["message"]
    assert gateway.stored() == before
    log = gateway.log.read_text(encoding="utf-8")
    assert "GATEWAY.INTERNAL" not in log and "internal error" not in log


def _retargeted(
    pki, pkg: EdocPackage, *, sender: str, document_id: str, revoke: str | None = None, sign: bool = False
) -> bytes:
    """``pkg`` re-issued by ``sender`` under ``document_id`` (to B), optionally as a revocation of ``revoke``."""
    from gateway.edxml import Bussiness, Organization, TraceHeaderList

    h = dataclasses.replace(
        pkg.message_header,
        from_=Organization(organ_id=sender, organ_name=sender),
        to=(Organization(organ_id=B, organ_name=B),),
        document_id=document_id,
    )
    trace = pkg.trace_header_list
    if revoke is not None:
        bussiness = Bussiness(bussiness_doc_type=BussinessDocType.REVOKE, document_id=revoke)
        trace = TraceHeaderList(trace_headers=trace.trace_headers, bussiness=bussiness)
    data = render(dataclasses.replace(pkg, message_header=h, trace_header_list=trace))
    if sign:
        cred = pki.agencies[sender]
        data = sign_package(data, SigningKey.from_files(cred.key, cred.cert, pki.chain))
    return data


def test_the_der_editor_builds_what_cryptography_loads_lazily(pki):
    """The precondition of the certificate tests: some variants load and fail only at first access."""
    lazy = 0
    for bad in mutations(_leaf_der(pki, A)).values():
        try:
            x509.load_der_x509_certificate(bad)
            lazy += 1
        except (ValueError, x509.InvalidVersion):
            pass
    assert lazy >= 5
