"""XML-DSig signing of edXML packages (edxml.md §10, gateway.md Intake 5, Intake 7 receipts).

Shape we emit: ONE enveloped ``ds:Signature`` (xmldsig namespace) at ``edXML/edXMLEnvelope/edXMLHeader/Signature``
with exactly one ``Reference URI=""`` (the whole document), transforms ``enveloped-signature`` + exclusive C14N,
RSA-SHA256 or ECDSA-SHA256 (or stronger), and the signer certificate followed by its chain in
``KeyInfo/X509Data``. This is what ``xmlsec1`` and the Java/.NET XML-DSig stacks produce and verify, so peers can
check us with stock tools — and exactly what :func:`gateway.xmlcheck.signature.verify_package` accepts.

Legacy: the official samples carry a dummy ``<Signature>`` in the edXML namespace (edxml.md §10.1 "Namespace
defect"); signing replaces it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.errors import ConfigError, EdxmlStructureError, SignatureError
from gateway.ns import DSIG, EDXML_READ
from gateway.xmlcheck.certs import MIN_RSA_BITS, load_certs
from gateway.xmlcheck.dsig import DS_SIGNATURE, local_name
from gateway.xmlcheck.paths import element_path
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, make_parser, parse_bytes

__all__ = ["SigningKey", "load_certificate_chain", "place_signature_placeholder", "sign_package"]

SigningPrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_EXC_C14N: Final = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_DIGESTS_FOR_SIGNING: Final = {
    "sha256": (SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256),
    "sha384": (SignatureMethod.RSA_SHA384, SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA384),
    "sha512": (SignatureMethod.RSA_SHA512, SignatureMethod.ECDSA_SHA512, DigestAlgorithm.SHA512),
}
_EC_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate and chain, parsed ONCE.

    Why: handing signxml PEM bytes makes it re-parse key and certificates on every signature (~40 ms
    measured); holding the loaded objects keeps signing at a few ms.

    ``chain`` is what a verifier needs besides its own trust anchors: the intermediate CA certificates, issuer
    after subject. KeyInfo carries :attr:`certificates` (the certificate, then the chain), so that a verifier
    trusting only the root — ``xmlsec1 --trusted-pem ROOT``, a JDK ``CertPathValidator`` — can build the path.
    A certificate given twice (a full-chain file plus the same chain again) is carried once.
    """

    private_key: SigningPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        chain = dict.fromkeys(c for c in self.chain if c != self.certificate)
        object.__setattr__(self, "chain", tuple(chain))
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ValueError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required")
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, _EC_CURVES):
                raise ValueError(f"unsupported EC curve {key.curve.name}")
        else:
            raise TypeError("signing key must be an RSA or EC private key")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != self.certificate.public_key().public_bytes(*spki):
            raise ValueError("the private key does not belong to the certificate")

    @classmethod
    def from_files(
        cls,
        key: str | os.PathLike[str],
        cert: str | os.PathLike[str],
        chain: str | os.PathLike[str] | None = None,
        *,
        password: bytes | None = None,
    ) -> SigningKey:
        """Load a PEM private key, its certificate (first cert of ``cert``) and an optional PEM chain bundle.

        Further certificates in the ``cert`` file are treated as chain, before those of ``chain``. Any
        problem (unreadable file, wrong password, key not matching the certificate) is ``CONFIG.INVALID``.
        """
        try:
            private_key = serialization.load_pem_private_key(Path(key).read_bytes(), password=password)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot load the private key {key}: {exc}") from exc
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key}: only RSA and EC keys can sign edXML")
        certs = load_certificate_chain(cert, chain)
        try:
            return cls(private_key=private_key, certificate=certs[0], chain=certs[1:])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key} / {cert}: {exc}") from exc

    @property
    def is_ec(self) -> bool:
        return isinstance(self.private_key, ec.EllipticCurvePrivateKey)

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """What ``KeyInfo/X509Data`` carries, in this order: the signer's certificate, then its chain."""
        return (self.certificate, *self.chain)


def load_certificate_chain(
    cert: str | os.PathLike[str], chain: str | os.PathLike[str] | None = None
) -> tuple[x509.Certificate, ...]:
    """The certificates KeyInfo carries for a key loaded from ``cert`` (+ ``chain``), in :attr:`SigningKey.certificates`
    order: the first certificate of ``cert``, then the rest of ``cert``, then ``chain``, each once.

    Whoever publishes the signer's certificates (``GET /gateway/certificate.pem``) reads them here, so what is
    published is what the signatures carry. ``CONFIG.INVALID`` for an unreadable or empty file.
    """
    certs = [*load_certs(cert), *(load_certs(chain) if chain is not None else [])]
    return tuple(dict.fromkeys(certs))


class _EdxmlSigner(XMLSigner):
    """signxml's signer, re-parsing its own copies with our parser factory.

    signxml's default parser lacks ``huge_tree``, so packages with a > 10 MB base64 attachment would fail.
    The input here is a tree already parsed by :func:`parse_bytes` and re-serialised by lxml (no DOCTYPE can
    appear), so lifting libxml2's size caps for these internal copies is safe.
    """

    @property
    def parser(self) -> etree.XMLParser:
        return make_parser(huge_tree=True)


def place_signature_placeholder(root: etree._Element) -> etree._Element:
    """Put signxml's ``<ds:Signature Id="placeholder"/>`` at ``edXMLHeader/Signature`` and return it.

    An existing Signature under the header (the legacy dummy in the edXML namespace, or an old xmldsig one)
    is replaced in place; otherwise the placeholder goes after the last child (TraceHeaderList), keeping the
    indentation of the document. Raises ``EDXML.STRUCTURE`` for documents that are not edXML packages or that
    carry xmldsig Signatures elsewhere (we would produce a package our own verifier refuses).
    """
    header = _header_or_raise(root)
    for stray in root.iter(DS_SIGNATURE):
        if stray.getparent() is not header:
            raise EdxmlStructureError(
                "package carries an xmldsig Signature outside edXMLHeader; refusing to sign it",
                path=element_path(stray),
            )
    placeholder = etree.Element(DS_SIGNATURE, {"Id": "placeholder"}, nsmap={"ds": DSIG})
    existing = [child for child in header if local_name(child) == "Signature"]
    if existing:
        placeholder.tail = existing[0].tail
        header.replace(existing[0], placeholder)
        for extra in existing[1:]:
            _remove_keeping_tail(extra)
    else:
        children = [child for child in header if isinstance(child.tag, str)]
        if children:
            last = children[-1]
            placeholder.tail = last.tail
            indent = header.text if header.text is not None and not header.text.strip() else None
            last.tail = indent
            last.addnext(placeholder)
        else:
            header.append(placeholder)
    return placeholder


def sign_package(data: bytes, key: SigningKey, *, digest: str = "sha256", max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Sign an edXML package: enveloped XML-DSig at ``edXMLHeader/Signature``, whole-document reference.

    RSA-SHA256 (ECDSA-SHA256 for EC keys; ``digest`` may raise both to sha384/sha512), exclusive C14N for
    SignedInfo and the Reference, ``KeyInfo/X509Data`` = signer certificate then chain. An existing
    Signature under the header (e.g. the official samples' dummy) is replaced. The rest of the document is
    kept as lxml serialises it (no pretty-printing); top-level comments/PIs outside the root are dropped
    because a whole-document signature would treat them differently across implementations.

    Returns UTF-8 bytes with an XML declaration. Line ends come out as LF (XML 1.0 §2.11 normalisation).
    Raises ``EDXML.STRUCTURE`` for what cannot be signed as specified, ``EDXML.SIGNATURE`` (reason
    ``sign-failed``) should signxml ever write anything but one ``Reference URI=""``.
    """
    try:
        rsa_method, ec_method, digest_alg = _DIGESTS_FOR_SIGNING[digest.lower()]
    except KeyError:
        raise ValueError(f"unsupported digest {digest!r}; use one of {sorted(_DIGESTS_FOR_SIGNING)}") from None
    root = parse_bytes(data, max_bytes=max_bytes, what="edXML package").getroot()
    # signxml turns the default Reference into URI="#<Id>" when the root has an Id/ID attribute; that would
    # sign only by reference and our verifier (rightly) refuses anything but URI="".
    for attr in ("Id", "ID"):
        if root.get(attr) is not None:
            raise EdxmlStructureError(f"edXML root carries an {attr} attribute; refusing to sign")
    place_signature_placeholder(root)

    signer = _EdxmlSigner(
        signature_algorithm=ec_method if key.is_ec else rsa_method,
        digest_algorithm=digest_alg,
        c14n_algorithm=_EXC_C14N,
    )
    signed = signer.sign(root, key=key.private_key, cert=list(key.certificates))

    uris = [
        ref.get("URI")
        for sig in signed.iter(DS_SIGNATURE)
        for ref in sig.iterfind(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference")
    ]
    if uris != [""]:
        raise SignatureError(
            f"signer produced Reference URIs {uris!r} instead of a single whole-document reference",
            reason="sign-failed",
        )
    return _XML_DECLARATION + etree.tostring(signed, encoding="UTF-8", xml_declaration=False)


def _header_or_raise(root: etree._Element) -> etree._Element:
    ns = etree.QName(root).namespace
    if ns not in EDXML_READ or etree.QName(root).localname != "edXML":
        raise EdxmlStructureError(f"the document root {root.tag} is not an edXML package")
    envelopes = root.findall(f"{{{ns}}}edXMLEnvelope")
    headers = envelopes[0].findall(f"{{{ns}}}edXMLHeader") if len(envelopes) == 1 else []
    if len(envelopes) != 1 or len(headers) != 1:
        raise EdxmlStructureError("an edXML package needs exactly one edXMLEnvelope/edXMLHeader to be signed")
    return headers[0]


def _remove_keeping_tail(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    previous = el.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(el)
