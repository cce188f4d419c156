"""The receipt's Signature from a per-key template (issue 14): the same bytes signxml writes, and it verifies.

``build_receipt`` fills the DigestValue and SignatureValue of a template signxml made once per key. RSA PKCS#1
v1.5 is deterministic, so with an RSA key the receipt must be byte-identical to signxml's own; ECDSA is not
(a fresh random k per signature), so with the gateway's EC key everything but the SignatureValue must be, and the
receipt must verify (our verifier, and ``xmlsec1`` trusting only the root, as tests/test_receipt_chain.py does).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_receipt_chain import _xmlsec1

from gateway.demo.pki import DemoPki
from gateway.edxml.codes import PackageKind
from gateway.services.receipt import _receipt_element, _signxml_receipt, build_receipt, verify_receipt
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

A = "000.00.01.H53"
AT = datetime(2026, 12, 3, 8, 30, 15, 123456, tzinfo=UTC)
#: Texts as intake passes them, some with what XML must escape (a DocumentId is the sender's text, edxml.md §6).
CASES = [
    {"doc_id": "6a61431ec3114aaeae47add34f926705", "kind": PackageKind.EDOC, "document_id": f"{A},2026/12/03,7/VP"},
    {"doc_id": "0" * 32, "kind": PackageKind.STATUS, "document_id": "x <&> \"'\t é ư 文"},
    {"doc_id": "f" * 32, "kind": PackageKind.EDOC, "document_id": "a\r\nb  c"},
]


def _fields(case: dict, shift: int) -> dict:
    return {**case, "sha256": "%064x" % (shift * 7919), "received_at": AT + timedelta(microseconds=shift)}


def _signature_value(receipt: bytes) -> bytes:
    [value] = re.findall(rb"<ds:SignatureValue>([^<]*)</ds:SignatureValue>", receipt)
    return value


@pytest.mark.parametrize("case", CASES)
def test_an_rsa_receipt_is_byte_identical_to_signxmls(pki: DemoPki, case: dict):
    cred = pki.agencies[A]  # the demo agencies sign with RSA-2048
    key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    assert not key.is_ec
    for shift in range(3):
        fields = _fields(case, shift)
        ours = build_receipt(key, **fields)
        assert ours == _signxml_receipt(_receipt_element(**fields), key)
    info = verify_receipt(ours, TrustStore.from_files(pki.trust))
    assert (info.doc_id, info.kind, info.document_id) == (case["doc_id"], case["kind"], case["document_id"])
    assert info.received_at == fields["received_at"]


@pytest.mark.parametrize("case", CASES)
def test_an_ec_receipt_differs_from_signxmls_only_in_its_random_signature(pki: DemoPki, case: dict):
    key = SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain)
    assert key.is_ec
    fields = _fields(case, 1)
    ours = build_receipt(key, **fields)
    theirs = _signxml_receipt(_receipt_element(**fields), key)
    assert len(_signature_value(ours)) == len(_signature_value(theirs)) == 88  # r || s, 32 bytes each, base64
    assert ours.replace(_signature_value(ours), b"") == theirs.replace(_signature_value(theirs), b"")
    info = verify_receipt(ours, TrustStore.from_files(pki.trust))
    assert (info.doc_id, info.sha256, info.received_at) == (case["doc_id"], fields["sha256"], fields["received_at"])


def test_a_changed_receipt_does_not_verify(pki: DemoPki):
    from gateway.errors import SignatureError

    key = SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain)
    receipt = build_receipt(key, **_fields(CASES[0], 2))
    forged = receipt.replace(b"<Kind>edoc</Kind>", b"<Kind>status</Kind>")
    with pytest.raises(SignatureError):
        verify_receipt(forged, TrustStore.from_files(pki.trust))


def test_xmlsec1_verifies_a_template_receipt_trusting_only_the_root(pki: DemoPki, tmp_path: Path):
    key = SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain)
    path = tmp_path / "receipt.xml"
    path.write_bytes(build_receipt(key, **_fields(CASES[1], 3)))
    result = _xmlsec1(path, pki.root_cert)
    assert result.returncode == 0, result.stderr
