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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
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
    """The signed receipt XML (UTF-8, with declaration)."""
    root = etree.Element(f"{_R}Receipt", nsmap={None: RECEIPT_NS})
    for name, value in (
        ("DocId", doc_id),
        ("Kind", kind.value),
        ("DocumentId", document_id),
        ("Sha256", sha256),
        ("ReceivedAt", format_time(received_at)),
    ):
        etree.SubElement(root, f"{_R}{name}").text = value
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256 if key.is_ec else SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(root, key=key.private_key, cert=list(key.certificates))
    return etree.tostring(signed, encoding="UTF-8", xml_declaration=True)


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
