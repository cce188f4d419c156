"""The intake receipt: a small XML document signed with the gateway's own key (gateway.md Intake 7).

Shape::

    <Receipt xmlns="urn:edoc-gateway:receipt:1">
      <DocId>…</DocId> <Kind>edoc|status</Kind> <DocumentId>…</DocumentId>
      <Sha256>hex of the package bytes as received</Sha256> <ReceivedAt>2026-01-02T03:04:05.123456Z</ReceivedAt>
      <ds:Signature>…</ds:Signature>
    </Receipt>

An enveloped XML-DSig with one whole-document reference, exclusive C14N, RSA-SHA256 (ECDSA-SHA256 for EC
keys) and the gateway certificate with its chain in KeyInfo: a sender can check it with stock tools
(``xmlsec1 --verify --trusted-pem ROOT``, the JDK's XML-DSig with a PKIX ``CertPathValidator``) trusting only
the root CA, and keep it as proof that the gateway received exactly these bytes at that time.
The key objects come pre-loaded in a :class:`~gateway.xmlcheck.signing.SigningKey` (no PEM parsing per
receipt). A duplicate answer re-issues a receipt with the ORIGINAL doc id and time, freshly signed.

The chain comes from the ``gateway_cert`` file: the gateway certificate followed by its intermediate CA
certificates (a "full chain" file, as nginx's ``ssl_certificate``). A leaf alone made receipts that only a
verifier pinning the leaf could check (issue 8, finding 12); :func:`receipt_chain_problem` says so at start-up.
The same certificates are published at ``GET /gateway/certificate.pem`` (:mod:`gateway.web.certificate`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException

from gateway.edxml.codes import PackageKind
from gateway.errors import SignatureError
from gateway.ns import DSIG
from gateway.xmlcheck.safe import make_parser, parse_bytes
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

RECEIPT_NS: Final = "urn:edoc-gateway:receipt:1"
_R: Final = f"{{{RECEIPT_NS}}}"
_MAX_RECEIPT_BYTES: Final = 256 * 1024
_MAX_CHAIN: Final = 6


@dataclass(frozen=True)
class ReceiptInfo:
    """What a verified receipt says (read from the signed content only)."""

    doc_id: str
    kind: PackageKind
    document_id: str
    sha256: str
    received_at: datetime
    signer_subject: str


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``: the receipt's time, exactly as stored."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_receipt(
    key: SigningKey, *, doc_id: str, kind: PackageKind, document_id: str, sha256: str, received_at: datetime
) -> bytes:
    """The signed receipt XML (UTF-8, with declaration).

    The very bytes signxml writes (:func:`_signxml_receipt`), without building its Signature element per receipt:
    for one key, everything in the Signature but the DigestValue and the SignatureValue is the same every time
    (:class:`_SignatureTemplate`, made once per key BY signxml), so intake fills those two holes (issue 14: signxml
    took ≈ 0.3 ms of a 10 KB intake rebuilding and re-serialising the same element and KeyInfo per receipt)."""
    root = _receipt_element(doc_id=doc_id, kind=kind, document_id=document_id, sha256=sha256, received_at=received_at)
    return _template(key).sign(root, key)


def _receipt_element(
    *, doc_id: str, kind: PackageKind, document_id: str, sha256: str, received_at: datetime
) -> etree._Element:
    root = etree.Element(f"{_R}Receipt", nsmap={None: RECEIPT_NS})
    for name, value in (
        ("DocId", doc_id),
        ("Kind", kind.value),
        ("DocumentId", document_id),
        ("Sha256", sha256),
        ("ReceivedAt", format_time(received_at)),
    ):
        etree.SubElement(root, f"{_R}{name}").text = value
    return root


def _signxml_receipt(root: etree._Element, key: SigningKey) -> bytes:
    """``root`` signed by signxml (enveloped, whole document, exclusive C14N): the receipt's reference form."""
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256 if key.is_ec else SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(root, key=key.private_key, cert=list(key.certificates))
    return etree.tostring(signed, encoding="UTF-8", xml_declaration=True)


_END: Final = b"</Receipt>"
_HOLE: Final = "HOLE0000"


@dataclass(frozen=True)
class _SignatureTemplate:
    """One key's Signature element as signxml serialises it, cut at its two per-receipt texts, and its canonical
    SignedInfo (what is signed) cut at the DigestValue — both taken from a receipt signxml signed, so the shape is
    signxml's by construction (tests/test_receipt_template.py compares the bytes with signxml's)."""

    before_digest: bytes
    before_value: bytes
    after_value: bytes
    info_before: bytes
    info_after: bytes

    @classmethod
    def of(cls, key: SigningKey) -> _SignatureTemplate:
        sample = _receipt_element(
            doc_id="0", kind=PackageKind.EDOC, document_id="0", sha256="0", received_at=datetime.now(UTC)
        )
        signed = etree.fromstring(_signxml_receipt(sample, key), make_parser())
        ds = f"{{{DSIG}}}"
        signature = signed.find(f"{ds}Signature")
        digest = signature.find(f"{ds}SignedInfo/{ds}Reference/{ds}DigestValue")
        value = signature.find(f"{ds}SignatureValue")
        digest.text, value.text = _HOLE, _HOLE
        # Cut from the whole document, as serialised in place (alone, lxml would also declare the default
        # namespace in scope on it).
        whole = etree.tostring(signed)
        element = whole[whole.index(b"<ds:Signature ") : -len(_END)]
        info = etree.tostring(signature.find(f"{ds}SignedInfo"), method="c14n", exclusive=True)
        before_digest, rest = element.split(_HOLE.encode(), 1)
        before_value, after_value = rest.split(_HOLE.encode(), 1)
        info_before, info_after = info.split(_HOLE.encode(), 1)
        return cls(before_digest, before_value, after_value, info_before, info_after)

    def sign(self, root: etree._Element, key: SigningKey) -> bytes:
        """``root`` (the Receipt without its Signature) signed: the enveloped-signature transform leaves exactly
        ``root``'s canonical form, whose SHA-256 is the DigestValue; the canonical SignedInfo is signed."""
        digest = base64.b64encode(hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).digest())
        value = base64.b64encode(_signature_value(key, self.info_before + digest + self.info_after))
        head = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
        if not head.endswith(_END):  # every Receipt has children: lxml writes its end tag, never <Receipt/>
            raise AssertionError("unexpected receipt serialisation")
        signature = self.before_digest + digest + self.before_value + value + self.after_value
        return head[: -len(_END)] + signature + _END


def _signature_value(key: SigningKey, signed_info: bytes) -> bytes:
    """As signxml computes it: RSA PKCS#1 v1.5, or ECDSA as r || s, each padded to the curve's size (XML-DSig
    ECDSA, RFC 4050 / xmldsig-core1 §6.4.3)."""
    private = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signed_info, ec.ECDSA(hashes.SHA256())))
        size = (private.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return private.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())


_TEMPLATES: dict[int, tuple[SigningKey, _SignatureTemplate]] = {}
_TEMPLATES_LOCK: Final = threading.Lock()


def _template(key: SigningKey) -> _SignatureTemplate:
    """The key's template, made on its first receipt (a process signs with one or two keys: a key rotation)."""
    found = _TEMPLATES.get(id(key))
    if found is not None and found[0] is key:
        return found[1]
    template = _SignatureTemplate.of(key)
    with _TEMPLATES_LOCK:
        if len(_TEMPLATES) >= 8:
            _TEMPLATES.clear()
        _TEMPLATES[id(key)] = (key, template)  # the key is held too: its id is not reused while cached
    return template


def receipt_chain_problem(key: SigningKey, trust: TrustStore) -> str | None:
    """Why a verifier trusting only a root CA could not check our receipts, or None when it can.

    It can when the certificates in KeyInfo lead from the gateway certificate, each issued by the next, to a
    self-signed root or to a certificate issued by an anchor of ``trust``. Otherwise the missing link is named,
    for the start-up log: the gateway still runs (a verifier that pins the gateway certificate is served), but
    the operator learns that the chain is missing from ``gateway_cert``.
    """
    current, pool = key.certificate, list(key.chain)
    for _ in range(_MAX_CHAIN):
        if _issued_by(current, current) or any(_issued_by(current, anchor) for anchor in trust.anchors):
            return None
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            return (
                f"receipts carry {len(key.certificates)} certificate(s) ending at "
                f"{current.subject.rfc4514_string()}, whose issuer {current.issuer.rfc4514_string()} is neither "
                "among them nor in the trust store: a verifier trusting only the root CA cannot check a receipt. "
                "Put the intermediate CA certificates after the gateway certificate in gateway_cert (leaf first)"
            )
        current = issuer
    return f"the receipts' certificate chain is longer than {_MAX_CHAIN} certificates"


def verify_receipt(data: bytes, trust: TrustStore | x509.Certificate) -> ReceiptInfo:
    """Check a receipt's signature and read it; :class:`SignatureError` when it does not verify.

    ``trust`` is either the gateway certificate itself (pinning) or a trust store the gateway certificate
    chains to (through the chain in KeyInfo). Revocation is not checked here: a receipt is evidence of what
    the gateway said at the time, checked by the party that keeps it.
    """
    root = parse_bytes(data, max_bytes=_MAX_RECEIPT_BYTES, what="receipt").getroot()
    certs = _keyinfo_certificates(root)
    if isinstance(trust, x509.Certificate):
        leaf = trust
    else:
        leaf = _leaf(certs)
        if not _chains(leaf, [c for c in certs if c != leaf] + list(trust.intermediates), trust.anchors):
            raise SignatureError("the receipt signer does not chain to a trusted CA", reason="untrusted")
    config = SignatureConfiguration(require_x509=True, expect_references=1, location="./")
    try:
        result = XMLVerifier().verify(data, x509_cert=leaf, parser=make_parser(), expect_config=config)
    except (SignXMLException, CryptoInvalidSignature, ValueError) as exc:
        raise SignatureError(f"the receipt signature does not verify: {exc}", reason="bad-signature") from exc
    signed = result.signed_xml
    if signed is None or signed.tag != f"{_R}Receipt":
        raise SignatureError("the receipt signature does not cover the Receipt element", reason="wrapping")

    def text(name: str) -> str:
        el = signed.find(f"{_R}{name}")
        if el is None or el.text is None:
            raise SignatureError(f"the receipt has no {name}", reason="malformed")
        return el.text

    return ReceiptInfo(
        doc_id=text("DocId"),
        kind=PackageKind(text("Kind")),
        document_id=text("DocumentId"),
        sha256=text("Sha256"),
        received_at=datetime.fromisoformat(text("ReceivedAt")),
        signer_subject=leaf.subject.rfc4514_string(),
    )


def _keyinfo_certificates(root: etree._Element) -> list[x509.Certificate]:
    ds = f"{{{DSIG}}}"
    certs = []
    for node in root.iterfind(f"{ds}Signature/{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate"):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()))))
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(f"unreadable certificate in the receipt: {exc}", reason="malformed") from exc
    if not certs:
        raise SignatureError("the receipt carries no certificate", reason="malformed")
    return certs


def _leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    leaves = [c for c in certs if not _is_ca(c)]
    if len(leaves) != 1:
        raise SignatureError("the receipt must carry exactly one end-entity certificate", reason="malformed")
    return leaves[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _chains(cert: x509.Certificate, pool: list[x509.Certificate], anchors: tuple[x509.Certificate, ...]) -> bool:
    """A verified signature path from ``cert`` to an anchor, each certificate valid now."""
    now = datetime.now(UTC)
    current = cert
    for _ in range(_MAX_CHAIN):
        if not (current.not_valid_before_utc <= now <= current.not_valid_after_utc):
            return False
        for anchor in anchors:
            if _issued_by(current, anchor):
                return True
        issuer = next((c for c in pool if _is_ca(c) and _issued_by(current, c)), None)
        if issuer is None:
            return False
        current = issuer
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (CryptoInvalidSignature, ValueError, TypeError):
        return False
    return True
