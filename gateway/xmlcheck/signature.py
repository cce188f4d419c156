"""XML-DSig signing and verification of edXML packages (edxml.md §10, gateway.md Intake 5).

Shape we emit and require: ONE enveloped ``ds:Signature`` (xmldsig namespace) at
``edXML/edXMLEnvelope/edXMLHeader/Signature`` with exactly one ``Reference URI=""`` (the whole document),
transforms ``enveloped-signature`` + exclusive C14N, RSA-SHA256 or ECDSA-SHA256 (or stronger), and the signer
certificate followed by its chain in ``KeyInfo/X509Data``. This is what ``xmlsec1`` and the Java/.NET XML-DSig
stacks produce and verify, so peers can check us with stock tools.

Division of labour on verification:

* signxml does the XML cryptography (C14N, digest, SignatureValue) and hands back ``VerifyResult.signed_xml``,
  the document as it was actually signed. That element — never the input tree — is what callers process, so
  signature-wrapping tricks that keep ``verify()`` happy cannot smuggle unsigned content in.
* this module does everything signxml does not: the structural checks that make wrapping impossible in the
  first place (one Signature, in its place, one whole-document Reference), the algorithm policy (SHA-1 only as
  a named opt-in), certificate path building to a configured trust anchor, validity at a chosen time, and
  CRL revocation (signxml has no CRL/OCSP). We do not use ``cryptography.x509.verification``: its client
  verifier demands the TLS ``clientAuth`` EKU, which document-signing certificates do not carry, and it has no
  revocation checking anyway.

Legacy: the official samples carry a dummy ``<Signature>`` in the edXML namespace (edxml.md §10.1
"Namespace defect"). It is reported as :attr:`SignatureState.LEGACY_PLACEHOLDER`, never parsed as a signature,
and replaced when we sign.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final, NoReturn, TypeAlias, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConfiguration, VerifyResult, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException
from signxml.exceptions import InvalidSignature as SignxmlInvalidSignature

from gateway.errors import ConfigError, EdxmlStructureError, SignatureError
from gateway.ns import DSIG, EDXML_READ
from gateway.xmlcheck.paths import element_path
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, make_parser, parse_bytes

__all__ = [
    "SignatureCheck",
    "SignatureState",
    "SigningKey",
    "TrustStore",
    "VerifyPolicy",
    "inspect_signature",
    "place_signature_placeholder",
    "sign_package",
    "verify_package",
]

SigningPrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
TreeOrRoot: TypeAlias = etree._ElementTree | etree._Element
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

DS_SIGNATURE: Final = f"{{{DSIG}}}Signature"
#: Where the signature lives, relative to the root, as local names (edxml.md §3 tree, §10.1 position).
SIGNATURE_PATH: Final = "/edXML/edXMLEnvelope/edXMLHeader/Signature"

_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_EXC_C14N: Final = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
#: C14N variants accepted as SignedInfo canonicalization or Reference transform. The #WithComments variants
#: are refused: for URI="" the spec drops comments before the transforms, signxml would keep them, and the
#: two readings produce different digests.
_C14N_OK: Final = frozenset(
    {
        CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value,
        CanonicalizationMethod.CANONICAL_XML_1_0.value,
        CanonicalizationMethod.CANONICAL_XML_1_1.value,
    }
)

#: "RSA/ECDSA with SHA-256 or better" (gateway.md Intake 5).
_STRONG_SIGNATURE_METHODS: Final = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
        SignatureMethod.SHA3_256_RSA_MGF1,
        SignatureMethod.SHA3_384_RSA_MGF1,
        SignatureMethod.SHA3_512_RSA_MGF1,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
        SignatureMethod.ECDSA_SHA3_256,
        SignatureMethod.ECDSA_SHA3_384,
        SignatureMethod.ECDSA_SHA3_512,
    }
)
_SHA1_SIGNATURE_METHODS: Final = frozenset(
    {SignatureMethod.RSA_SHA1, SignatureMethod.ECDSA_SHA1, SignatureMethod.SHA1_RSA_MGF1}
)
_STRONG_DIGESTS: Final = frozenset(
    {
        DigestAlgorithm.SHA256,
        DigestAlgorithm.SHA384,
        DigestAlgorithm.SHA512,
        DigestAlgorithm.SHA3_256,
        DigestAlgorithm.SHA3_384,
        DigestAlgorithm.SHA3_512,
    }
)
_STRONG_SIGNATURE_URIS: Final = frozenset(m.value for m in _STRONG_SIGNATURE_METHODS)
_SHA1_SIGNATURE_URIS: Final = frozenset(m.value for m in _SHA1_SIGNATURE_METHODS)
_STRONG_DIGEST_URIS: Final = frozenset(d.value for d in _STRONG_DIGESTS)
_SHA1_DIGEST_URIS: Final = frozenset({DigestAlgorithm.SHA1.value})
#: Known but refused whatever the policy (no named opt-in exists for these).
_WEAK_URIS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#md5",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
        "http://www.w3.org/2001/04/xmldsig-more#sha224",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha224",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    }
)

_DIGESTS_FOR_SIGNING: Final = {
    "sha256": (SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256),
    "sha384": (SignatureMethod.RSA_SHA384, SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA384),
    "sha512": (SignatureMethod.RSA_SHA512, SignatureMethod.ECDSA_SHA512, DigestAlgorithm.SHA512),
}
_EC_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MIN_RSA_BITS: Final = 2048
_MAX_KEYINFO_CERTS: Final = 10
_MAX_CHAIN_DEPTH: Final = 6
#: OrganId as found in a certificate subject: the lenient edxml.md §6.1 grammar, but with at least one dot so
#: that a plain organisational-unit word ("IT") is never taken for an agency identifier.
_ORGAN_ID_IN_CERT: Final = re.compile(r"[0-9A-Z]+(?:\.[0-9A-Z]+)+")
_ORGAN_ID_ATTRIBUTES: Final = (NameOID.SERIAL_NUMBER, NameOID.ORGANIZATIONAL_UNIT_NAME)
#: CRL reasons that invalidate signatures made before the revocation date too.
_COMPROMISE: Final = frozenset(
    {x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise, x509.ReasonFlags.aa_compromise}
)


# ================================================================================================ values


class SignatureState(StrEnum):
    """What a package carries in ``edXMLHeader/Signature``."""

    #: An xmldsig signature that verified and passed the trust policy (only :func:`verify_package` says so).
    VALID = "valid"
    #: No Signature element at all.
    UNSIGNED = "unsigned"
    #: A Signature element outside the xmldsig namespace: the dummy block of the official samples.
    LEGACY_PLACEHOLDER = "legacy-placeholder"
    #: An xmldsig Signature is present but has not been verified (only :func:`inspect_signature` says so).
    PRESENT = "present"

    @property
    def label(self) -> str:
        """Human wording for reports and logs."""
        return _LABELS[self]


_LABELS: Final = {
    SignatureState.VALID: "valid",
    SignatureState.UNSIGNED: "unsigned",
    SignatureState.LEGACY_PLACEHOLDER: "unsigned (legacy placeholder)",
    SignatureState.PRESENT: "signed (not verified)",
}


@dataclass(frozen=True)
class SignatureCheck:
    """The result of :func:`verify_package`, kept with the stored document.

    ``signed_root`` is the element the signature really covers (signxml's ``VerifyResult.signed_xml``, i.e.
    the document without its Signature and without comments). Callers MUST read the package from it, not
    from the tree they passed in. It is ``None`` for UNSIGNED / LEGACY_PLACEHOLDER results, whose callers
    chose (by policy) to process an unsigned package. Certificate fields are ``None`` in those states too.
    """

    state: SignatureState
    signer_subject: str | None = None
    #: SHA-256 of the signer certificate (DER), lowercase hex.
    signer_fingerprint: str | None = None
    signer_serial: int | None = None
    issuer_subject: str | None = None
    #: OrganIds named by the signer certificate's ``serialNumber``/``OU`` attributes, for binding the signer
    #: to the sending agency (``From/OrganId``); see :meth:`is_bound_to`.
    organ_ids: tuple[str, ...] = ()
    #: Algorithm URIs as written in SignedInfo.
    signature_algorithm: str | None = None
    digest_algorithm: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    #: Subjects from the signer up to the trust anchor.
    chain_subjects: tuple[str, ...] = ()
    #: ``"good"``, ``"not-checked"`` (policy) or ``"soft-fail"`` (some CRL missing/stale, policy allowed it).
    revocation: str | None = None
    #: Visible notes, e.g. which issuer's CRL was missing under soft-fail.
    warnings: tuple[str, ...] = ()
    signer_certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)
    signed_root: etree._Element | None = field(default=None, repr=False, compare=False)

    def is_bound_to(self, organ_id: str) -> bool:
        """True when the signer certificate names ``organ_id`` (exact match, no hierarchy)."""
        return organ_id in self.organ_ids


@dataclass(frozen=True)
class VerifyPolicy:
    """Secure defaults; every relaxation is a named field that shows up in configuration and logs."""

    #: Accept rsa-sha1 / ecdsa-sha1 / sha1 digests (and SHA-1-signed certificates): a legacy-peer opt-in.
    allow_sha1: bool = False
    check_revocation: bool = True
    #: Validation time (signing or receipt time); ``None`` means now. Naive values are taken as UTC.
    at: datetime | None = None
    #: When an issuer's CRL is missing or stale: ``False`` refuses (``crl-unavailable``), ``True`` accepts
    #: and records the gap in :attr:`SignatureCheck.warnings`.
    crl_soft_fail: bool = False
    #: Refuse UNSIGNED / LEGACY_PLACEHOLDER packages (``missing``).
    require_signature: bool = True

    def validation_time(self) -> datetime:
        if self.at is None:
            return datetime.now(UTC)
        return self.at.replace(tzinfo=UTC) if self.at.tzinfo is None else self.at.astimezone(UTC)


_DEFAULT_POLICY: Final = VerifyPolicy()


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors, CRLs and optional extra intermediates, loaded once at start-up.

    ``intermediates`` are not trusted; they only help build a path for signers that send their certificate
    without its chain (what ``xmlsec1 --untrusted-pem`` does).
    """

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    #: Validated certificate paths (see :func:`_validated_path`); not part of the value.
    _paths: dict[tuple[object, ...], _CachedPath] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", tuple(self.anchors))
        object.__setattr__(self, "crls", tuple(self.crls))
        object.__setattr__(self, "intermediates", tuple(self.intermediates))
        if not self.anchors:
            raise ConfigError("a trust store needs at least one trusted CA certificate")

    @classmethod
    def from_files(
        cls,
        ca_pem_path: str | os.PathLike[str],
        crl_paths: Iterable[str | os.PathLike[str]] = (),
        *,
        intermediate_paths: Iterable[str | os.PathLike[str]] = (),
    ) -> TrustStore:
        """Load trusted roots (a PEM bundle), CRL files (PEM or DER, one CRL each) and extra intermediates."""
        anchors = _load_certs(ca_pem_path)
        inters: list[x509.Certificate] = []
        for p in intermediate_paths:
            inters.extend(_load_certs(p))
        crls = tuple(_load_crl(p) for p in crl_paths)
        return cls(anchors=tuple(anchors), crls=crls, intermediates=tuple(inters))


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate and chain, parsed ONCE.

    Why: handing signxml PEM bytes makes it re-parse key and certificates on every signature (~40 ms
    measured); holding the loaded objects keeps signing at a few ms.
    """

    private_key: SigningPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < _MIN_RSA_BITS:
                raise ValueError(f"RSA key of {key.key_size} bits; at least {_MIN_RSA_BITS} required")
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
        certs = _load_certs(cert)
        extra = _load_certs(chain) if chain is not None else []
        try:
            return cls(private_key=private_key, certificate=certs[0], chain=(*certs[1:], *extra))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key} / {cert}: {exc}") from exc

    @property
    def is_ec(self) -> bool:
        return isinstance(self.private_key, ec.EllipticCurvePrivateKey)


# ================================================================================================ signing


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
    existing = [child for child in header if _local(child) == "Signature"]
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
    signed = signer.sign(root, key=key.private_key, cert=[key.certificate, *key.chain])

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


# ================================================================================================ verifying


def inspect_signature(tree_or_root: TreeOrRoot) -> SignatureState:
    """Classify the signature block without any cryptography (cheap; for routing and reports).

    PRESENT when any xmldsig Signature exists anywhere; LEGACY_PLACEHOLDER for a non-xmldsig Signature under
    edXMLHeader; otherwise UNSIGNED. Never raises on odd documents.
    """
    root = _root_of(tree_or_root)
    if next(root.iter(DS_SIGNATURE), None) is not None:
        return SignatureState.PRESENT
    header = _header(root)
    if header is not None and any(_local(child) == "Signature" for child in header):
        return SignatureState.LEGACY_PLACEHOLDER
    return SignatureState.UNSIGNED


def verify_package(
    data: bytes | TreeOrRoot,
    trust: TrustStore,
    policy: VerifyPolicy = _DEFAULT_POLICY,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SignatureCheck:
    """Verify the package signature against ``trust`` under ``policy``.

    Returns a :class:`SignatureCheck` (state VALID, or UNSIGNED / LEGACY_PLACEHOLDER when the policy does not
    require a signature). Raises :class:`SignatureError` with ``detail["reason"]`` one of ``missing``,
    ``wrapping``, ``malformed``, ``weak-algorithm``, ``untrusted``, ``expired``, ``not-yet-valid``,
    ``revoked``, ``crl-unavailable``, ``bad-digest``, ``bad-signature``. Bytes are parsed with
    :func:`parse_bytes`, whose own errors (``EDXML.PARSE``, ``EDXML.FORBIDDEN``, ``SIZE.LIMIT``) pass through.
    A tree must come from the safe parser too.

    Order: structure → algorithms → certificate path → validity → revocation → XML cryptography (signxml).
    The cheap, local refusals come first; signxml only ever sees a signature in the one allowed place and a
    certificate we already trust.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw: bytes | None = bytes(data)
        root = parse_bytes(raw, max_bytes=max_bytes, what="edXML package").getroot()
    else:
        raw = None
        root = _root_of(data)

    state = inspect_signature(root)
    if state is not SignatureState.PRESENT:
        if policy.require_signature:
            what = (
                "carries only the legacy placeholder Signature"
                if state is SignatureState.LEGACY_PLACEHOLDER
                else "is unsigned"
            )
            _fail("missing", f"the package {what}; an xmldsig signature is required")
        return SignatureCheck(state=state)

    ns, signature = _locate_signature(root)
    sig_uri, digest_uri = _check_signed_info(signature, policy)
    certs = _keyinfo_certificates(signature)
    at = policy.validation_time()
    leaf = _end_entity(certs)
    validated = _validated_path(leaf, certs, trust, at, policy)

    result = _signxml_verify(raw if raw is not None else root, ns, leaf, at, policy)
    signed_root = result.signed_xml
    if signed_root is None or signed_root.tag != root.tag:
        _fail("wrapping", "the signature does not cover the document root")
    if next(signed_root.iter(DS_SIGNATURE), None) is not None:
        _fail("wrapping", "the signed content still contains a Signature element")
    signed_refs = result.signature_xml.findall(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference")
    if [r.get("URI") for r in signed_refs] != [""]:
        _fail("wrapping", 'the verified signature does not carry exactly one Reference URI=""')

    return SignatureCheck(
        state=SignatureState.VALID,
        signer_subject=validated.subjects[0],
        signer_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        signer_serial=leaf.serial_number,
        issuer_subject=leaf.issuer.rfc4514_string(),
        organ_ids=_organ_ids(leaf),
        signature_algorithm=sig_uri,
        digest_algorithm=digest_uri,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        chain_subjects=validated.subjects,
        revocation=validated.revocation,
        warnings=validated.warnings,
        signer_certificate=leaf,
        signed_root=signed_root,
    )


#: How long a validated path is reused. Within it, a CRL that expires or a revocation dated in the future
#: takes effect late by at most this long; every other input (certificates, CRL files) is fixed per store.
PATH_CACHE_SECONDS: Final = 60
_PATH_CACHE_MAX: Final = 4096


@dataclass(frozen=True)
class _CachedPath:
    path: tuple[x509.Certificate, ...]
    subjects: tuple[str, ...]
    revocation: str
    warnings: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime


def _validated_path(
    leaf: x509.Certificate,
    certs: Sequence[x509.Certificate],
    trust: TrustStore,
    at: datetime,
    policy: VerifyPolicy,
) -> _CachedPath:
    """Path building, validity and revocation for the KeyInfo certificates, cached per trust store.

    Intake verifies many packages from few signers; building and checking the path (issuer signatures,
    CRL signatures, names) costs about as much as the XML signature itself (docs/benchmarks.md), and
    its inputs do not change between packages. Failures are never cached; a hit requires ``at`` inside
    the window in which the cached answer was computed to hold.
    """
    key = (
        tuple(c.fingerprint(hashes.SHA256()) for c in certs),
        policy.allow_sha1,
        policy.check_revocation,
        policy.crl_soft_fail,
    )
    hit = trust._paths.get(key)
    if hit is not None and hit.valid_from <= at < hit.valid_until:
        return hit
    path = _build_path(leaf, [c for c in (*certs, *trust.intermediates) if c != leaf], trust.anchors)
    if path is None:
        _fail(
            "untrusted",
            f"no certificate path from {_subject(leaf)} (issuer {leaf.issuer.rfc4514_string()}) to a trusted CA",
            certificate=_subject(leaf),
        )
    _check_path(path, at, policy)
    revocation, warnings = _check_revocation(path, trust, at, policy)
    if len(trust._paths) >= _PATH_CACHE_MAX:
        trust._paths.clear()
    result = trust._paths[key] = _CachedPath(
        path=tuple(path),
        subjects=tuple(_subject(c) for c in path),
        revocation=revocation,
        warnings=tuple(warnings),
        valid_from=max(at, *(c.not_valid_before_utc for c in path)),
        valid_until=min(at + timedelta(seconds=PATH_CACHE_SECONDS), *(c.not_valid_after_utc for c in path)),
    )
    return result


# ------------------------------------------------------------------------------------------ structure


def _locate_signature(root: etree._Element) -> tuple[str, etree._Element]:
    """The one ds:Signature, proven to sit at edXML/edXMLEnvelope/edXMLHeader; returns (edXML ns, element).

    Anything that could let the signed and the processed content differ is ``wrapping``: duplicate
    envelopes/headers/MessageHeaders (a forged copy next to the signed one), a second Signature, or a
    Signature elsewhere (moved into a wrapper).
    """
    ns = etree.QName(root).namespace
    if ns not in EDXML_READ or etree.QName(root).localname != "edXML":
        _fail("malformed", f"the document root {root.tag} is not an edXML package")
    envelopes = root.findall(f"{{{ns}}}edXMLEnvelope")
    if len(envelopes) != 1:
        _fail(
            "wrapping" if envelopes else "malformed",
            f"expected one edXMLEnvelope under the root, found {len(envelopes)}",
        )
    headers = envelopes[0].findall(f"{{{ns}}}edXMLHeader")
    if len(headers) != 1:
        _fail(
            "wrapping" if headers else "malformed",
            f"expected one edXMLHeader in the envelope, found {len(headers)}",
        )
    header = headers[0]
    if len(header.findall(f"{{{ns}}}MessageHeader")) > 1:
        _fail("wrapping", "more than one MessageHeader in edXMLHeader")
    signatures = list(root.iter(DS_SIGNATURE))
    if len(signatures) != 1:
        _fail("wrapping", f"expected exactly one xmldsig Signature, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not header:
        _fail(
            "wrapping",
            f"the Signature is at {element_path(signature)}, not at {SIGNATURE_PATH}",
            found=element_path(signature),
        )
    if any(_local(child) == "Signature" and child is not signature for child in header):
        _fail("wrapping", "edXMLHeader carries a second (non-xmldsig) Signature next to the xmldsig one")
    return ns, signature


def _check_signed_info(signature: etree._Element, policy: VerifyPolicy) -> tuple[str, str]:
    """Reference shape and algorithm policy; returns (SignatureMethod URI, DigestMethod URI)."""
    ds = f"{{{DSIG}}}"
    signed_infos = signature.findall(f"{ds}SignedInfo")
    if len(signed_infos) != 1:
        _fail("malformed", f"expected one SignedInfo, found {len(signed_infos)}")
    signed_info = signed_infos[0]
    references = signed_info.findall(f"{ds}Reference")
    if not references:
        _fail("malformed", "SignedInfo has no Reference")
    if len(references) > 1:
        _fail("wrapping", f"SignedInfo has {len(references)} References; only one whole-document one is allowed")
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        _fail("wrapping", f'Reference URI is {uri!r}; only URI="" (the whole document) is accepted', uri=uri)
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{ds}Transforms/{ds}Transform")]
    if _ENVELOPED not in transforms:
        _fail("malformed", "the Reference lacks the enveloped-signature transform")
    unknown = [t for t in transforms if t != _ENVELOPED and t not in _C14N_OK]
    if unknown:
        _fail("malformed", f"unsupported Reference transform(s): {unknown}")
    c14n = signed_info.find(f"{ds}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in _C14N_OK:
        _fail("malformed", f"unsupported CanonicalizationMethod {None if c14n is None else c14n.get('Algorithm')}")

    sig_method = signed_info.find(f"{ds}SignatureMethod")
    digest_method = reference.find(f"{ds}DigestMethod")
    sig_uri = sig_method.get("Algorithm") if sig_method is not None else None
    digest_uri = digest_method.get("Algorithm") if digest_method is not None else None
    if sig_uri is None or digest_uri is None:
        _fail("malformed", "SignatureMethod or DigestMethod is missing its Algorithm")
    _check_algorithm(sig_uri, _STRONG_SIGNATURE_URIS, _SHA1_SIGNATURE_URIS, policy)
    _check_algorithm(digest_uri, _STRONG_DIGEST_URIS, _SHA1_DIGEST_URIS, policy)
    return sig_uri, digest_uri


def _check_algorithm(uri: str, strong: frozenset[str], sha1: frozenset[str], policy: VerifyPolicy) -> None:
    if uri in strong:
        return
    if uri in sha1:
        if policy.allow_sha1:
            return
        _fail("weak-algorithm", f"{uri} uses SHA-1, which this policy does not allow", algorithm=uri)
    if uri in _WEAK_URIS:
        _fail("weak-algorithm", f"{uri} is too weak (RSA/ECDSA with SHA-256 or better required)", algorithm=uri)
    _fail("malformed", f"unsupported algorithm {uri}", algorithm=uri)


# ------------------------------------------------------------------------------------------ certificates


def _keyinfo_certificates(signature: etree._Element) -> list[x509.Certificate]:
    ds = f"{{{DSIG}}}"
    nodes = signature.findall(f"{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate")
    if not nodes:
        _fail("malformed", "KeyInfo/X509Data carries no X509Certificate")
    if len(nodes) > _MAX_KEYINFO_CERTS:
        _fail("malformed", f"KeyInfo carries {len(nodes)} certificates (limit {_MAX_KEYINFO_CERTS})")
    certs = []
    for node in nodes:
        try:
            der = base64.b64decode("".join((node.text or "").split()), validate=True)
            certs.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            _fail("malformed", f"KeyInfo carries an unreadable X509Certificate: {exc}")
    return certs


def _end_entity(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The signer certificate: the single non-CA certificate in KeyInfo (order is not significant,
    xmldsig-core §4.5.4)."""
    leaves = [c for c in certs if not _is_ca(c)]
    if len(leaves) != 1:
        _fail("malformed", f"KeyInfo must carry exactly one end-entity certificate, found {len(leaves)}")
    return leaves[0]


def _build_path(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> list[x509.Certificate] | None:
    """Depth-first path building [leaf, intermediates..., anchor], checking each issuer's signature.

    Names alone prove nothing (the demo rogue CA copies the root's name): every link is a verified
    signature, and intermediates must be CAs.
    """

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        current = path[-1]
        anchor = next(_issuers_of(current, anchors), None)
        if anchor is not None:
            return [*path, anchor]
        if len(path) > _MAX_CHAIN_DEPTH:
            return None
        for candidate in _issuers_of(current, pool):
            if candidate in path or not _is_ca(candidate):
                continue
            found = extend([*path, candidate])
            if found is not None:
                return found
        return None

    return extend([leaf])


def _issuers_of(cert: x509.Certificate, candidates: Iterable[x509.Certificate]) -> Iterator[x509.Certificate]:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (CryptoInvalidSignature, ValueError, TypeError):
            continue
        yield candidate


def _check_path(path: Sequence[x509.Certificate], at: datetime, policy: VerifyPolicy) -> None:
    """Validity at ``at`` for every certificate, CA constraints, key usage and algorithm strength."""
    for cert in path:
        if at < cert.not_valid_before_utc:
            _fail(
                "not-yet-valid",
                f"certificate {_subject(cert)} is not valid before {cert.not_valid_before_utc.isoformat()} "
                f"(validation time {at.isoformat()})",
                certificate=_subject(cert),
            )
        if at > cert.not_valid_after_utc:
            _fail(
                "expired",
                f"certificate {_subject(cert)} expired at {cert.not_valid_after_utc.isoformat()} "
                f"(validation time {at.isoformat()})",
                certificate=_subject(cert),
            )
    leaf, issuers = path[0], path[1:]
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        _fail("untrusted", f"certificate {_subject(leaf)} is not for signing (KeyUsage)")
    for depth, ca in enumerate(issuers):
        constraints = _extension(ca, x509.BasicConstraints)
        is_anchor = ca is path[-1]
        if not is_anchor and (constraints is None or not constraints.ca):
            _fail("untrusted", f"{_subject(ca)} is not a CA certificate")
        if constraints is not None and constraints.path_length is not None and depth > constraints.path_length:
            _fail("untrusted", f"path length constraint of {_subject(ca)} exceeded")
        ca_usage = _extension(ca, x509.KeyUsage)
        if ca_usage is not None and not ca_usage.key_cert_sign:
            _fail("untrusted", f"{_subject(ca)} may not sign certificates (KeyUsage)")
    for cert in path[:-1]:  # the anchor's self-signature is not relied on
        _check_certificate_crypto(cert, policy)


def _check_certificate_crypto(cert: x509.Certificate, policy: VerifyPolicy) -> None:
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # e.g. Ed25519 has no separate hash; the issuer signature check already ran
        hash_alg = None
    if isinstance(hash_alg, hashes.SHA1) and not policy.allow_sha1:
        _fail("weak-algorithm", f"certificate {_subject(cert)} is signed with SHA-1", certificate=_subject(cert))
    if isinstance(hash_alg, hashes.MD5 | hashes.SHA224):
        _fail("weak-algorithm", f"certificate {_subject(cert)} is signed with {hash_alg.name}")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        _fail("weak-algorithm", f"certificate {_subject(cert)} has a {key.key_size}-bit RSA key")


def _check_revocation(
    path: Sequence[x509.Certificate], trust: TrustStore, at: datetime, policy: VerifyPolicy
) -> tuple[str, tuple[str, ...]]:
    """CRL check of every non-anchor certificate against its issuer's CRL (RFC 5280 §6.3, simplified).

    The CRL must be signed by the issuer and fresh (``next_update`` not passed at ``at``); the freshest one
    counts. An entry revokes from its revocation date; key/CA compromise revokes regardless of date.
    Delta CRLs, indirect CRLs and fetching distribution points are not supported.
    """
    if not policy.check_revocation:
        return "not-checked", ()
    warnings: list[str] = []
    for cert, issuer in itertools.pairwise(path):
        crl = _freshest_crl(issuer, trust.crls)
        if crl is None or crl.next_update_utc is None or crl.next_update_utc < at:
            problem = (
                f"no CRL of {_subject(issuer)} is available"
                if crl is None
                else f"the CRL of {_subject(issuer)} is stale (next update {crl.next_update_utc})"
            )
            if not policy.crl_soft_fail:
                _fail("crl-unavailable", problem, issuer=_subject(issuer))
            warnings.append(f"crl-unavailable: {problem}; accepted by soft-fail policy")
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            reason = _extension(entry, x509.CRLReason)
            if entry.revocation_date_utc <= at or (reason is not None and reason.reason in _COMPROMISE):
                _fail(
                    "revoked",
                    f"certificate {_subject(cert)} (serial {cert.serial_number:x}) was revoked at "
                    f"{entry.revocation_date_utc.isoformat()}",
                    certificate=_subject(cert),
                    serial=f"{cert.serial_number:x}",
                )
    return ("soft-fail" if warnings else "good"), tuple(warnings)


def _freshest_crl(
    issuer: x509.Certificate, crls: Iterable[x509.CertificateRevocationList]
) -> x509.CertificateRevocationList | None:
    best = None
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        try:
            if not crl.is_signature_valid(issuer.public_key()):
                continue
        except (TypeError, ValueError):
            continue
        if best is None or crl.last_update_utc > best.last_update_utc:
            best = crl
    return best


# ------------------------------------------------------------------------------------------ signxml


def _signxml_verify(
    payload: bytes | etree._Element, ns: str, leaf: x509.Certificate, at: datetime, policy: VerifyPolicy
) -> VerifyResult:
    """Run signxml on the exact same input, pinned to the validated leaf and the one allowed location.

    The original bytes are passed when we have them (no extra serialisation). signxml parses with our
    parser factory: no DTD, no entities, no network; ``huge_tree`` because this input already passed
    :func:`parse_bytes` (size limit, DOCTYPE refusal) — signxml additionally refuses DTDs and entities.
    """
    methods = set(_STRONG_SIGNATURE_METHODS)
    digests = set(_STRONG_DIGESTS)
    if policy.allow_sha1:
        methods |= _SHA1_SIGNATURE_METHODS
        digests.add(DigestAlgorithm.SHA1)
    config = SignatureConfiguration(
        require_x509=True,
        location=f"./{{{ns}}}edXMLEnvelope/{{{ns}}}edXMLHeader/",
        expect_references=1,
        signature_methods=frozenset(methods),
        digest_algorithms=frozenset(digests),
        verification_time=at,
        # XML-DSig §4.4.3.2: a node-set left after the transforms is serialised with Canonical XML 1.0.
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    try:
        return XMLVerifier().verify(
            payload,
            x509_cert=leaf,
            parser=make_parser(huge_tree=True),
            expect_config=config,
            validate_schema=True,
        )
    except InvalidDigest as exc:
        _fail("bad-digest", f"the signed content was modified (digest mismatch): {exc}")
    except InvalidCertificate as exc:
        _fail("untrusted", f"signxml refused the signer certificate: {exc}")
    except (SignxmlInvalidSignature, CryptoInvalidSignature) as exc:
        _fail("bad-signature", f"the SignatureValue does not verify: {exc}")
    except (SignXMLException, etree.LxmlError, ValueError, TypeError, KeyError, NotImplementedError) as exc:
        # Attacker-shaped XML reaches signxml code paths that raise these (unknown curve URI, KeyValue of
        # another key type, schema violations, bad base64); all of them mean "not a usable signature".
        _fail("malformed", f"the signature is malformed: {exc}")


# ------------------------------------------------------------------------------------------ helpers


def _fail(reason: str, message: str, **detail: object) -> NoReturn:
    raise SignatureError(message, path=SIGNATURE_PATH, reason=reason, **detail)


def _root_of(tree_or_root: TreeOrRoot) -> etree._Element:
    if isinstance(tree_or_root, etree._ElementTree):
        return tree_or_root.getroot()
    if isinstance(tree_or_root, etree._Element):
        return tree_or_root
    raise TypeError("expected an lxml tree or element")


def _local(el: etree._Element) -> str | None:
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def _header(root: etree._Element) -> etree._Element | None:
    if not isinstance(root.tag, str):
        return None
    ns = etree.QName(root).namespace
    if ns not in EDXML_READ:
        return None
    return root.find(f"{{{ns}}}edXMLEnvelope/{{{ns}}}edXMLHeader")


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


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _extension(obj: x509.Certificate | x509.RevokedCertificate, ext_type: type[_Ext]) -> _Ext | None:
    try:
        return obj.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _organ_ids(cert: x509.Certificate) -> tuple[str, ...]:
    found: list[str] = []
    for oid in _ORGAN_ID_ATTRIBUTES:
        for attr in cert.subject.get_attributes_for_oid(oid):
            value = attr.value if isinstance(attr.value, str) else None
            if value and len(value) <= 35 and _ORGAN_ID_IN_CERT.fullmatch(value) and value not in found:
                found.append(value)
    return tuple(found)


def _load_certs(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load PEM certificates from {path}: {exc}") from exc
    if not certs:
        raise ConfigError(f"no certificate in {path}")
    return certs


def _load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    try:
        data = Path(path).read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load CRL from {path}: {exc}") from exc
