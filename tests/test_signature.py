"""XML-DSig of edXML packages: signing, verification policy, an attack corpus, and interop with xmlsec1.

Everything is real: a demo PKI generated per session (``pki`` fixture), the sample packages (the project's own
corpus, and the real samples when present: the ``corpus`` fixture), signxml and cryptography, and the ``xmlsec1``
command line tool in both directions.
"""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _samples import sample_params
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.demo.pki import AgencyCredentials, DemoPki
from gateway.errors import ConfigError, EdxmlParseError, EdxmlStructureError, SignatureError
from gateway.ns import DSIG, EDXML
from gateway.xmlcheck.paths import SIGNATURE_PATH
from gateway.xmlcheck.safe import parse_bytes
from gateway.xmlcheck.signature import SignatureCheck, SignatureState, VerifyPolicy, inspect_signature, verify_package
from gateway.xmlcheck.signing import SigningKey, place_signature_placeholder, sign_package
from gateway.xmlcheck.trust import TrustStore

#: Roles (tests/_samples.py): a small edoc with the official dummy <Signature> (edXML namespace) ...
SMALL = "edoc_three_to"
#: ... the new-document sample (a zipped base64 attachment, dummy signature) ...
BIG = "edoc_new"
#: ... and a status package without any Signature element.
STATUS = "status"

E = f"{{{EDXML}}}"
DS = f"{{{DSIG}}}"
XMLSEC1 = shutil.which("xmlsec1")
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SUBJECT_RE = re.compile(rb"<edXML:Subject>[^<]*</edXML:Subject>")


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_files(pki.trust, pki.crls)


def _key(cred: AgencyCredentials, pki: DemoPki) -> SigningKey:
    return SigningKey.from_files(cred.key, cred.cert, pki.chain)


@pytest.fixture(scope="module")
def agency_key(pki: DemoPki) -> SigningKey:
    return _key(pki.agencies["000.00.01.H53"], pki)


@pytest.fixture(scope="module")
def signed_small(corpus, agency_key: SigningKey) -> bytes:
    return sign_package(corpus.read(SMALL), agency_key)


def _reason(exc_info: pytest.ExceptionInfo[SignatureError]) -> str:
    assert exc_info.value.code == "EDXML.SIGNATURE"
    return exc_info.value.detail["reason"]


def _refused(data: bytes, trust: TrustStore, policy: VerifyPolicy | None = None) -> str:
    with pytest.raises(SignatureError) as exc_info:
        verify_package(data, trust, policy or VerifyPolicy())
    return _reason(exc_info)


def _tree(data: bytes) -> etree._Element:
    return parse_bytes(data).getroot()


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _header(root: etree._Element) -> etree._Element:
    return root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")


def _signature(root: etree._Element) -> etree._Element:
    return _header(root).find(f"{DS}Signature")


class _LegacySigner(XMLSigner):
    """signxml refuses to create SHA-1 signatures; legacy peers still send them, so the tests need some."""

    def check_deprecated_methods(self) -> None:
        pass


def _sign_with_signxml(data: bytes, key: SigningKey, signer: XMLSigner, prepare=None, **sign_kwargs: object) -> bytes:
    root = _tree(data)
    if prepare is not None:
        prepare(root)
    place_signature_placeholder(root)
    signed = signer.sign(root, key=key.private_key, cert=[key.certificate, *key.chain], **sign_kwargs)
    return _bytes(signed)


# ------------------------------------------------------------------------------------------ good signatures


def test_rsa_signature_verifies_and_names_the_agency(corpus, pki, trust, agency_key):
    signed = sign_package(corpus.read(STATUS), agency_key)
    check = verify_package(signed, trust)

    cert = x509.load_pem_x509_certificate(pki.agencies["000.00.01.H53"].cert.read_bytes())
    assert check.state is SignatureState.VALID
    assert check.signer_subject == cert.subject.rfc4514_string()
    assert "000.00.01.H53" in check.signer_subject
    assert check.signer_fingerprint == cert.fingerprint(hashes.SHA256()).hex()
    assert check.signer_serial == cert.serial_number
    assert check.issuer_subject == cert.issuer.rfc4514_string()
    assert check.organ_ids == ("000.00.01.H53",)
    assert check.is_bound_to("000.00.01.H53")
    assert not check.is_bound_to("000.00.00.H53")
    assert check.signature_algorithm == SignatureMethod.RSA_SHA256.value
    assert check.digest_algorithm == DigestAlgorithm.SHA256.value
    assert check.not_before == cert.not_valid_before_utc
    assert check.not_after == cert.not_valid_after_utc
    assert check.revocation == "good"
    assert len(check.chain_subjects) == 3
    assert check.signed_root is not None
    assert check.signed_root.tag == f"{E}edXML"
    assert check.signed_root.find(f".//{DS}Signature") is None


def test_signature_shape_is_the_one_we_promise(signed_small):
    root = _tree(signed_small)
    assert signed_small.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    sigs = list(root.iter(f"{DS}Signature"))
    assert len(sigs) == 1
    sig = sigs[0]
    header = _header(root)
    assert sig.getparent() is header
    assert [etree.QName(c).localname for c in header if isinstance(c.tag, str)] == [
        "MessageHeader",
        "TraceHeaderList",
        "Signature",
    ]
    assert sig.get("Id") is None
    signed_info = sig.find(f"{DS}SignedInfo")
    assert signed_info.find(f"{DS}CanonicalizationMethod").get("Algorithm") == EXC_C14N
    refs = signed_info.findall(f"{DS}Reference")
    assert [r.get("URI") for r in refs] == [""]
    assert [t.get("Algorithm") for t in refs[0].iterfind(f"{DS}Transforms/{DS}Transform")] == [
        ENVELOPED,
        EXC_C14N,
    ]
    certs = sig.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert len(certs) == 2  # signer, then the intermediate
    first = x509.load_der_x509_certificate(base64.b64decode("".join(certs[0].text.split())))
    assert "000.00.01.H53" in first.subject.rfc4514_string()


def test_ecdsa_signature_verifies(corpus, pki, trust):
    key = _key(pki.ecdsa, pki)
    assert key.is_ec
    check = verify_package(sign_package(corpus.read(SMALL), key), trust)
    assert check.state is SignatureState.VALID
    assert check.signature_algorithm == SignatureMethod.ECDSA_SHA256.value
    assert check.organ_ids == ("000.00.00.H53",)


@pytest.mark.parametrize("digest", ["sha384", "sha512"])
def test_stronger_digests_verify(corpus, trust, agency_key, digest):
    check = verify_package(sign_package(corpus.read(STATUS), agency_key, digest=digest), trust)
    assert check.digest_algorithm.endswith(digest)


def test_signing_an_official_sample_replaces_its_dummy_and_keeps_the_rest(corpus, trust, signed_small):
    original = corpus.read(SMALL)
    assert inspect_signature(_tree(original)) is SignatureState.LEGACY_PLACEHOLDER
    root = _tree(signed_small)
    assert _header(root).find(f"{E}Signature") is None  # the dummy is gone
    assert inspect_signature(root) is SignatureState.PRESENT

    check = verify_package(signed_small, trust)
    assert check.state is SignatureState.VALID

    # What the signature covers is the original document minus its dummy block.
    expected = _tree(original)
    dummy = _header(expected).find(f"{E}Signature")
    _remove_with_tail(dummy)
    assert etree.tostring(check.signed_root, method="c14n", exclusive=True) == etree.tostring(
        expected, method="c14n", exclusive=True
    )
    # Byte-for-byte up to where the dummy stood, but for the CRLF -> LF every XML parser applies (XML 1.0 §2.11).
    normalised = original.replace(b"\r\n", b"\n")
    cut = normalised.index(b"<Signature")  # the dummy: <Signature> in the real samples, with xmlns in ours
    assert signed_small[:cut] == normalised[:cut]
    assert signed_small[cut:].startswith(b"<ds:Signature ")


def test_signing_a_large_sample_with_its_attachment(corpus, trust, agency_key):
    signed = sign_package(corpus.read(BIG), agency_key)
    check = verify_package(signed, trust)
    assert check.state is SignatureState.VALID
    assert check.signed_root.find(f"{E}AttachmentEncoded") is not None


def test_attachment_over_libxml2_text_limit_signs_and_verifies(corpus, trust, agency_key):
    """One base64 text node above 10 MB: every internal re-parse must use huge_tree (safe.py rule 4)."""
    big = base64.b64encode(bytes(7_700_000))  # > 10 MB of base64
    data = re.sub(rb"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", lambda m: m.group(1) + big, corpus.read(BIG), count=1)
    assert len(data) > 10_000_000
    check = verify_package(sign_package(data, agency_key), trust)
    assert check.state is SignatureState.VALID


def test_verify_accepts_a_parsed_tree(trust, signed_small):
    tree = parse_bytes(signed_small)
    check = verify_package(tree, trust)
    assert check.state is SignatureState.VALID
    assert check.signed_root.getroottree() is not tree  # signxml's copy, never the input


def test_comments_are_not_signed_and_not_returned(trust, signed_small):
    injected = signed_small.replace(b"<edXML:Subject>", b"<!-- unsigned remark --><edXML:Subject>", 1)
    check = verify_package(injected, trust)
    assert check.state is SignatureState.VALID
    assert not list(check.signed_root.iter(etree.Comment))


# ------------------------------------------------------------------------------------------ tampering


def test_tampered_content_is_bad_digest(trust, signed_small):
    tampered = SUBJECT_RE.sub("<edXML:Subject>Giả mạo</edXML:Subject>".encode(), signed_small, count=1)
    assert tampered != signed_small
    assert _refused(tampered, trust) == "bad-digest"


def test_tampered_signature_value_is_bad_signature(trust, signed_small):
    root = _tree(signed_small)
    value = _signature(root).find(f"{DS}SignatureValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    assert _refused(_bytes(root), trust) == "bad-signature"


def test_certificate_substitution_is_bad_signature(corpus, pki, trust, agency_key):
    """Signed with one agency's key, but another agency's (valid) certificate put in KeyInfo."""
    other = x509.load_pem_x509_certificate(pki.agencies["000.00.00.G22"].cert.read_bytes())
    root = _tree(sign_package(corpus.read(STATUS), agency_key))
    node = _signature(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    node.text = base64.b64encode(other.public_bytes(serialization.Encoding.DER)).decode()
    assert _refused(_bytes(root), trust) == "bad-signature"


# ------------------------------------------------------------------------------------------ trust policy


def test_signer_from_rogue_ca_is_untrusted(corpus, pki, trust):
    rogue = SigningKey.from_files(pki.rogue.key, pki.rogue.cert, pki.rogue_ca_cert)
    # The rogue CA copies the trusted root's name and claims the same agency: only signatures tell.
    assert rogue.chain[0].subject == x509.load_pem_x509_certificate(pki.root_cert.read_bytes()).subject
    signed = sign_package(corpus.read(SMALL), rogue)
    assert _refused(signed, trust) == "untrusted"


def test_leaf_without_its_chain_is_untrusted_unless_the_store_has_the_intermediate(corpus, pki):
    cred = pki.agencies["000.00.00.G22"]
    signed = sign_package(corpus.read(STATUS), SigningKey.from_files(cred.key, cred.cert))
    assert _refused(signed, TrustStore.from_files(pki.trust, pki.crls)) == "untrusted"
    with_inter = TrustStore.from_files(pki.trust, pki.crls, intermediate_paths=[pki.chain])
    assert verify_package(signed, with_inter).state is SignatureState.VALID


def test_expired_certificate(corpus, pki, trust):
    key = _key(pki.expired, pki)
    signed = sign_package(corpus.read(SMALL), key)
    assert _refused(signed, trust) == "expired"
    inside = key.certificate.not_valid_before_utc + timedelta(days=30)
    check = verify_package(signed, trust, VerifyPolicy(at=inside))
    assert check.state is SignatureState.VALID
    assert check.not_after < datetime.now(UTC)


def test_validated_paths_are_reused_but_never_past_their_validity(corpus, pki):
    trust = TrustStore.from_files(pki.trust, pki.crls)  # a fresh store: an empty cache
    key = _key(pki.expired, pki)
    signed = sign_package(corpus.read(SMALL), key)
    inside = key.certificate.not_valid_before_utc + timedelta(days=30)
    first = verify_package(signed, trust, VerifyPolicy(at=inside))
    (entry,) = trust._paths.values()
    second = verify_package(signed, trust, VerifyPolicy(at=inside + timedelta(seconds=5)))
    assert first.signer_fingerprint == second.signer_fingerprint
    assert next(iter(trust._paths.values())) is entry  # reused, not recomputed
    verify_package(signed, trust, VerifyPolicy(at=inside + timedelta(seconds=61)))
    assert next(iter(trust._paths.values())) is not entry  # older than PATH_CACHE_SECONDS: recomputed
    # the cached path must not outlive the certificate, nor serve an earlier validation time
    assert _refused(signed, trust) == "expired"
    before = key.certificate.not_valid_before_utc - timedelta(days=1)
    assert _refused(signed, trust, VerifyPolicy(at=before)) == "not-yet-valid"


def test_not_yet_valid_at_an_earlier_validation_time(corpus, pki, trust, agency_key):
    signed = sign_package(corpus.read(STATUS), agency_key)
    before = agency_key.certificate.not_valid_before_utc - timedelta(days=1)
    assert _refused(signed, trust, VerifyPolicy(at=before)) == "not-yet-valid"


def test_revoked_certificate(corpus, pki, trust):
    signed = sign_package(corpus.read(SMALL), _key(pki.revoked, pki))
    assert _refused(signed, trust) == "revoked"
    unchecked = verify_package(signed, trust, VerifyPolicy(check_revocation=False))
    assert unchecked.state is SignatureState.VALID
    assert unchecked.revocation == "not-checked"


def test_missing_crl_fails_hard_unless_soft_fail(pki, signed_small):
    only_root_crl = TrustStore.from_files(pki.trust, [pki.root_crl])
    assert _refused(signed_small, only_root_crl) == "crl-unavailable"
    check = verify_package(signed_small, only_root_crl, VerifyPolicy(crl_soft_fail=True))
    assert check.state is SignatureState.VALID
    assert check.revocation == "soft-fail"
    assert any("Demo Issuing CA" in w for w in check.warnings)


def test_stale_crl_is_unavailable(pki, signed_small, tmp_path):
    inter_key = load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    inter_cert = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    now = datetime.now(UTC)
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter_cert.subject)
        .last_update(now - timedelta(days=30))
        .next_update(now - timedelta(days=23))
        .sign(inter_key, hashes.SHA256())
    )
    path = tmp_path / "stale.crl.der"
    path.write_bytes(stale.public_bytes(serialization.Encoding.DER))
    store = TrustStore.from_files(pki.trust, [path, pki.root_crl])
    assert _refused(signed_small, store) == "crl-unavailable"


def test_crl_signed_by_someone_else_is_ignored(corpus, pki, signed_small, tmp_path):
    """A CRL with the intermediate's name but the rogue CA's signature must not count as the CRL."""
    rogue_key = load_pem_private_key(pki.rogue_ca_key.read_bytes(), None)
    inter_cert = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    now = datetime.now(UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter_cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=30))
        .sign(rogue_key, hashes.SHA256())
    )
    path = tmp_path / "forged.crl.pem"
    path.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    store = TrustStore.from_files(pki.trust, [path, pki.root_crl])
    assert _refused(signed_small, store) == "crl-unavailable"


# ------------------------------------------------------------------------------------------ SHA-1


def _sha1_signed(
    data: bytes, key: SigningKey, *, method=SignatureMethod.RSA_SHA1, digest=DigestAlgorithm.SHA1
) -> bytes:
    signer = _LegacySigner(
        signature_algorithm=method,
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    return _sign_with_signxml(data, key, signer)


def test_sha1_is_refused_by_default_and_accepted_by_opt_in(corpus, trust, agency_key):
    signed = _sha1_signed(corpus.read(SMALL), agency_key)
    assert _refused(signed, trust) == "weak-algorithm"
    check = verify_package(signed, trust, VerifyPolicy(allow_sha1=True))
    assert check.state is SignatureState.VALID
    assert check.signature_algorithm == SignatureMethod.RSA_SHA1.value
    assert check.digest_algorithm == DigestAlgorithm.SHA1.value


def test_sha1_digest_under_sha256_signature_is_still_weak(corpus, trust, agency_key):
    signed = _sha1_signed(corpus.read(SMALL), agency_key, method=SignatureMethod.RSA_SHA256)
    assert _refused(signed, trust) == "weak-algorithm"
    assert verify_package(signed, trust, VerifyPolicy(allow_sha1=True)).state is SignatureState.VALID


def test_sha224_is_weak_whatever_the_policy(corpus, trust, agency_key):
    signed = _sha1_signed(
        corpus.read(SMALL), agency_key, method=SignatureMethod.RSA_SHA224, digest=DigestAlgorithm.SHA224
    )
    assert _refused(signed, trust, VerifyPolicy(allow_sha1=True)) == "weak-algorithm"


# ------------------------------------------------------------------------------------------ wrapping


def _forge_subject(el: etree._Element) -> None:
    el.find(f".//{E}Subject").text = "Giả mạo: chuyển tiền ngay"


def _assert_wrapping(data: bytes, trust: TrustStore) -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify_package(data, trust)
    assert _reason(exc_info) == "wrapping"
    assert exc_info.value.path == SIGNATURE_PATH


def test_wrapping_forged_message_header_next_to_the_signed_one(trust, signed_small):
    root = _tree(signed_small)
    header = _header(root)
    forged = copy.deepcopy(header.find(f"{E}MessageHeader"))
    _forge_subject(forged)
    header.insert(0, forged)
    _assert_wrapping(_bytes(root), trust)


def test_wrapping_forged_envelope_with_the_signed_original_moved_aside(trust, signed_small):
    original = _tree(signed_small)
    envelope = original.find(f"{E}edXMLEnvelope")
    forged_envelope = copy.deepcopy(envelope)
    _forge_subject(forged_envelope)
    forged_header = forged_envelope.find(f"{E}edXMLHeader")
    forged_header.remove(forged_header.find(f"{DS}Signature"))
    forged_root = etree.Element(f"{E}edXML", nsmap={None: EDXML})
    forged_root.append(forged_envelope)
    hiding_place = etree.SubElement(forged_root, f"{E}Extension")
    hiding_place.append(envelope)  # the genuine, signed envelope with its signature
    _assert_wrapping(_bytes(forged_root), trust)


def test_wrapping_second_envelope_appended(trust, signed_small):
    root = _tree(signed_small)
    forged = copy.deepcopy(root.find(f"{E}edXMLEnvelope"))
    _forge_subject(forged)
    forged_header = forged.find(f"{E}edXMLHeader")
    forged_header.remove(forged_header.find(f"{DS}Signature"))
    root.insert(0, forged)
    _assert_wrapping(_bytes(root), trust)


def test_wrapping_reference_to_a_sub_element(corpus, trust, agency_key):
    """A genuine signature over MessageHeader only (URI="#mh") leaves recipients and attachments unsigned."""

    def give_id(root: etree._Element) -> None:
        _header(root).find(f"{E}MessageHeader").set("Id", "mh")

    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = _sign_with_signxml(corpus.read(SMALL), agency_key, signer, prepare=give_id, reference_uri="#mh")
    root = _tree(signed)
    root.find(f"{E}AttachmentEncoded/{E}Attachment/{E}AttachmentName").text = "malware.exe"
    attacked = _bytes(root)

    # The attack is real: plain signxml accepts it and would hand back only the MessageHeader.
    plain = XMLVerifier().verify(
        attacked,
        x509_cert=agency_key.certificate,
        expect_config=SignatureConfiguration(location=f"./{E}edXMLEnvelope/{E}edXMLHeader/"),
    )
    assert etree.QName(plain.signed_xml).localname == "MessageHeader"

    _assert_wrapping(attacked, trust)


def test_wrapping_two_references(trust, signed_small):
    root = _tree(signed_small)
    signed_info = _signature(root).find(f"{DS}SignedInfo")
    signed_info.append(copy.deepcopy(signed_info.find(f"{DS}Reference")))
    _assert_wrapping(_bytes(root), trust)


@pytest.mark.parametrize("where", ["header", "body", "attachments"])
def test_wrapping_two_signatures(trust, signed_small, where):
    root = _tree(signed_small)
    twin = copy.deepcopy(_signature(root))
    target = {
        "header": _header(root),
        "body": root.find(f"{E}edXMLEnvelope/{E}edXMLBody"),
        "attachments": root.find(f"{E}AttachmentEncoded"),
    }[where]
    target.append(twin)
    _assert_wrapping(_bytes(root), trust)


def test_wrapping_legacy_dummy_next_to_a_real_signature(corpus, trust, signed_small):
    root = _tree(signed_small)
    dummy = _header(_tree(corpus.read(SMALL))).find(f"{E}Signature")
    _header(root).append(dummy)
    _assert_wrapping(_bytes(root), trust)


@pytest.mark.parametrize("where", ["root", "envelope", "body", "message-header"])
def test_wrapping_signature_moved(trust, signed_small, where):
    root = _tree(signed_small)
    sig = _signature(root)
    target = {
        "root": root,
        "envelope": root.find(f"{E}edXMLEnvelope"),
        "body": root.find(f"{E}edXMLEnvelope/{E}edXMLBody"),
        "message-header": _header(root).find(f"{E}MessageHeader"),
    }[where]
    target.append(sig)  # lxml moves the element
    _assert_wrapping(_bytes(root), trust)


# ------------------------------------------------------------------------------------------ malformed


def test_keyinfo_without_certificate_is_malformed(trust, signed_small):
    root = _tree(signed_small)
    x509_data = _signature(root).find(f"{DS}KeyInfo/{DS}X509Data")
    for cert in x509_data.findall(f"{DS}X509Certificate"):
        x509_data.remove(cert)
    etree.SubElement(x509_data, f"{DS}X509SubjectName").text = "CN=someone"
    assert _refused(_bytes(root), trust) == "malformed"


def test_garbage_certificate_is_malformed(trust, signed_small):
    root = _tree(signed_small)
    _signature(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate").text = "AAAA"
    assert _refused(_bytes(root), trust) == "malformed"


def test_unsupported_transform_is_malformed(trust, signed_small):
    root = _tree(signed_small)
    transforms = _signature(root).find(f"{DS}SignedInfo/{DS}Reference/{DS}Transforms")
    etree.SubElement(transforms, f"{DS}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    assert _refused(_bytes(root), trust) == "malformed"


def test_malformed_sample_is_a_parse_error_not_a_crash(corpus, trust):
    with pytest.raises(EdxmlParseError):
        verify_package(corpus.read("malformed"), trust)


# ------------------------------------------------------------------------------------------ unsigned


def test_unsigned_package(corpus, trust):
    data = corpus.read(STATUS)
    assert inspect_signature(_tree(data)) is SignatureState.UNSIGNED
    assert _refused(data, trust) == "missing"
    check = verify_package(data, trust, VerifyPolicy(require_signature=False))
    assert check == SignatureCheck(state=SignatureState.UNSIGNED)
    assert check.signed_root is None
    assert check.signer_subject is None


def test_official_dummy_is_a_legacy_placeholder(corpus, trust):
    data = corpus.read(SMALL)
    assert inspect_signature(parse_bytes(data)) is SignatureState.LEGACY_PLACEHOLDER
    assert SignatureState.LEGACY_PLACEHOLDER.label == "unsigned (legacy placeholder)"
    assert _refused(data, trust) == "missing"
    check = verify_package(data, trust, VerifyPolicy(require_signature=False))
    assert check.state is SignatureState.LEGACY_PLACEHOLDER
    assert check.signer_fingerprint is None
    assert check.signed_root is None


@pytest.mark.parametrize("path", sample_params())
def test_every_sample_is_classified_without_crashing(trust, path):
    data = path.read_bytes()
    state = inspect_signature(_tree(data))
    assert state in {SignatureState.UNSIGNED, SignatureState.LEGACY_PLACEHOLDER}
    assert verify_package(data, trust, VerifyPolicy(require_signature=False)).state is state


# ------------------------------------------------------------------------------------------ API edges


def test_sign_refuses_what_it_cannot_sign_correctly(corpus, agency_key):
    with pytest.raises(EdxmlStructureError):
        sign_package(b"<notEdxml/>", agency_key)
    root = _tree(corpus.read(STATUS))
    root.set("Id", "doc")  # signxml would write URI="#doc"
    with pytest.raises(EdxmlStructureError):
        sign_package(_bytes(root), agency_key)
    with pytest.raises(ValueError, match="sha1"):
        sign_package(corpus.read(STATUS), agency_key, digest="sha1")


def test_resigning_replaces_the_previous_signature(pki, trust, signed_small):
    resigned = sign_package(signed_small, _key(pki.agencies["000.00.00.G22"], pki))
    assert len(list(_tree(resigned).iter(f"{DS}Signature"))) == 1
    assert verify_package(resigned, trust).organ_ids == ("000.00.00.G22",)


def test_signing_key_must_match_its_certificate(pki):
    one, other = pki.agencies["000.00.00.H53"], pki.agencies["000.00.00.G22"]
    with pytest.raises(ConfigError):
        SigningKey.from_files(one.key, other.cert)


def test_trust_store_loading_errors_are_config_errors(pki, tmp_path):
    with pytest.raises(ConfigError):
        TrustStore.from_files(tmp_path / "missing.pem")
    bad = tmp_path / "bad.crl"
    bad.write_bytes(b"not a crl")
    with pytest.raises(ConfigError):
        TrustStore.from_files(pki.trust, [bad])


# ------------------------------------------------------------------------------------------ xmlsec1 interop


def _xmlsec1(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1, "xmlsec1 is required for the interop tests (apt-get install xmlsec1)"
    return subprocess.run([XMLSEC1, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def _xmlsec1_verify(pki: DemoPki, path: Path) -> subprocess.CompletedProcess[str]:
    return _xmlsec1(
        "--verify",
        # Only URI="" references, only certificate-based keys, and only the Signature at its edXML place.
        "--enabled-reference-uris",
        "empty",
        "--enabled-key-data",
        "x509",
        "--node-xpath",
        f"/*[local-name()='edXML']/*[local-name()='edXMLEnvelope']/*[local-name()='edXMLHeader']"
        f"/*[local-name()='Signature' and namespace-uri()='{DSIG}']",
        "--trusted-pem",
        pki.trust,
        "--untrusted-pem",
        pki.chain,
        path,
    )


@pytest.mark.parametrize("which", ["rsa", "ecdsa"])
def test_xmlsec1_verifies_our_signature_and_refuses_a_tampered_copy(corpus, pki, tmp_path, which):
    key = _key(pki.agencies["000.00.01.H53"] if which == "rsa" else pki.ecdsa, pki)
    signed = sign_package(corpus.read(SMALL), key)
    good = tmp_path / "signed.edxml"
    good.write_bytes(signed)
    result = _xmlsec1_verify(pki, good)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr

    bad = tmp_path / "tampered.edxml"
    bad.write_bytes(SUBJECT_RE.sub(b"<edXML:Subject>tampered</edXML:Subject>", signed, count=1))
    result = _xmlsec1_verify(pki, bad)
    assert result.returncode != 0
    assert "FAIL" in result.stdout + result.stderr


def test_xmlsec1_refuses_the_rogue_signer(corpus, pki, tmp_path):
    rogue = SigningKey.from_files(pki.rogue.key, pki.rogue.cert, pki.rogue_ca_cert)
    path = tmp_path / "rogue.edxml"
    path.write_bytes(sign_package(corpus.read(SMALL), rogue))
    assert _xmlsec1_verify(pki, path).returncode != 0


_TEMPLATE = f"""<ds:Signature xmlns:ds="{DSIG}">
<ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>
<ds:SignatureMethod Algorithm="{SignatureMethod.RSA_SHA256.value}"/>
<ds:Reference URI="">
<ds:Transforms>
<ds:Transform Algorithm="{ENVELOPED}"/>
<ds:Transform Algorithm="{EXC_C14N}"/>
</ds:Transforms>
<ds:DigestMethod Algorithm="{DigestAlgorithm.SHA256.value}"/>
<ds:DigestValue/>
</ds:Reference>
</ds:SignedInfo>
<ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
</ds:Signature>"""


@pytest.mark.parametrize("role", [SMALL, STATUS], ids=["edoc", "status"])
def test_package_signed_by_xmlsec1_verifies_with_us(corpus, pki, trust, tmp_path, role):
    root = _tree(corpus.read(role))
    placeholder = place_signature_placeholder(root)
    template = etree.fromstring(_TEMPLATE)
    template.tail = placeholder.tail
    placeholder.getparent().replace(placeholder, template)
    template_path = tmp_path / "template.edxml"
    template_path.write_bytes(_bytes(root))
    out = tmp_path / "xmlsec1-signed.edxml"
    cred = pki.agencies["000.00.00.G22"]
    result = _xmlsec1(
        "--sign",
        "--privkey-pem",
        f"{cred.key},{cred.cert},{pki.chain}",
        "--output",
        out,
        template_path,
    )
    assert result.returncode == 0, result.stderr

    check = verify_package(out.read_bytes(), trust)
    assert check.state is SignatureState.VALID
    assert check.organ_ids == ("000.00.00.G22",)

    tampered = out.read_bytes().replace(b"000.00.00.G22", b"000.00.00.G23", 1)
    assert tampered != out.read_bytes()
    assert _refused(tampered, trust) == "bad-digest"


# ------------------------------------------------------------------------------------------ helpers


def _remove_with_tail(el: etree._Element | None) -> None:
    if el is None:
        return
    parent = el.getparent()
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + (el.tail or "")
    else:
        parent.text = (parent.text or "") + (el.tail or "")
    parent.remove(el)
