"""Verification of edXML package signatures: the one entry point intake, the CLI and the tools call.

Shape we require: ONE enveloped ``ds:Signature`` (xmldsig namespace) at ``edXML/edXMLEnvelope/edXMLHeader/Signature``
with exactly one ``Reference URI=""`` (the whole document), transforms ``enveloped-signature`` + C14N,
RSA-SHA256 or ECDSA-SHA256 (or stronger), and the signer certificate with its chain in ``KeyInfo/X509Data`` —
what :func:`gateway.xmlcheck.signing.sign_package`, ``xmlsec1`` and the Java/.NET stacks produce.

Division of labour on verification:

* :mod:`gateway.xmlcheck.enveloped` does the XML cryptography (C14N, digest, SignatureValue) on the tree already
  parsed — the one signature shape we accept needs no copy of the document (issue 14) — and hands back the
  canonical bytes the digest covers, the document as it was actually signed. Those bytes (``signed_root`` parses
  them) — never the input tree — are what callers process, so signature-wrapping tricks cannot smuggle unsigned
  content in; ``signed_is_input`` says when the input tree reads exactly like them. signxml still verifies the
  rare shapes the fast path hands back (a comment inside the Signature, a KeyValue next to the certificate),
  and its ``VerifyResult.signed_xml`` plays the same part there.
* :mod:`gateway.xmlcheck.dsig` does the XML-DSig checks signxml does not: the structure that makes wrapping
  impossible in the first place (one Signature, in its place, one whole-document Reference) and the algorithm
  policy (SHA-1 only as a named opt-in).
* :mod:`gateway.xmlcheck.trust` decides whether the signer is trusted: certificate path building to a
  configured trust anchor, validity at a chosen time, CRL revocation, and the validated-path cache.
* this module holds the values (state, result, policy) and runs the steps in order.

Legacy: the official samples carry a dummy ``<Signature>`` in the edXML namespace (edxml.md §10.1
"Namespace defect"). It is reported as :attr:`SignatureState.LEGACY_PLACEHOLDER`, never parsed as a signature,
and replaced when we sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

from gateway.ns import EDXML_READ
from gateway.xmlcheck import dsig, enveloped
from gateway.xmlcheck.bulk import SpooledTexts
from gateway.xmlcheck.certs import organ_ids
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, make_parser, parse_bytes
from gateway.xmlcheck.trust import TrustPolicy, TrustStore, ValidatedPath, validated_path

__all__ = ["SignatureCheck", "SignatureState", "VerifyPolicy", "inspect_signature", "verify_package"]

TreeOrRoot: TypeAlias = etree._ElementTree | etree._Element


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

    ``signed_root`` is the element the signature really covers (the document without its Signature and without
    comments, parsed from :attr:`signed_xml` on first use). Callers MUST read the package from it, not from the
    tree they passed in — unless :attr:`signed_is_input` says that tree reads the same. It is ``None`` for
    UNSIGNED / LEGACY_PLACEHOLDER results, whose callers chose (by policy) to process an unsigned package.
    Certificate fields are ``None`` in those states too.
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
    #: The canonical bytes the digest was computed over: exactly what was signed (VALID only).
    signed_xml: bytes | None = field(default=None, repr=False, compare=False)
    #: The verified input tree held nothing canonicalisation drops except its Signature element (no comment), so
    #: a package read from it before verification equals one read from :attr:`signed_root`, apart from the
    #: Signature block: the caller need not read it twice (issue 14).
    signed_is_input: bool = field(default=False, compare=False)
    #: signxml's ``VerifyResult.signed_xml`` when signxml verified (the shapes the fast path hands back).
    signxml_root: etree._Element | None = field(default=None, repr=False, compare=False)

    @cached_property
    def signed_root(self) -> etree._Element | None:
        """The signed content as an element, parsed once on first use (intake mostly never needs it)."""
        if self.signxml_root is not None:
            return self.signxml_root
        if self.signed_xml is None:
            if self.state is SignatureState.VALID:  # streamed into the digest (verify_package's ``spooled``)
                raise ValueError("the signed content was streamed, not kept: read the input (signed_is_input)")
            return None
        return etree.fromstring(self.signed_xml, make_parser(huge_tree=True))

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

    @property
    def trust(self) -> TrustPolicy:
        """The certificate side of this policy, for :func:`~gateway.xmlcheck.trust.validated_path`."""
        return TrustPolicy(
            allow_sha1=self.allow_sha1, check_revocation=self.check_revocation, crl_soft_fail=self.crl_soft_fail
        )


_DEFAULT_POLICY: Final = VerifyPolicy()


def inspect_signature(tree_or_root: TreeOrRoot) -> SignatureState:
    """Classify the signature block without any cryptography (cheap; for routing and reports).

    PRESENT when any xmldsig Signature exists anywhere; LEGACY_PLACEHOLDER for a non-xmldsig Signature under
    edXMLHeader; otherwise UNSIGNED. Never raises on odd documents.
    """
    root = _root_of(tree_or_root)
    if next(root.iter(dsig.DS_SIGNATURE), None) is not None:
        return SignatureState.PRESENT
    header = _header(root)
    if header is not None and any(dsig.local_name(child) == "Signature" for child in header):
        return SignatureState.LEGACY_PLACEHOLDER
    return SignatureState.UNSIGNED


def verify_package(
    data: bytes | TreeOrRoot,
    trust: TrustStore,
    policy: VerifyPolicy = _DEFAULT_POLICY,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    spooled: SpooledTexts | None = None,
) -> SignatureCheck:
    """Verify the package signature against ``trust`` under ``policy``.

    Returns a :class:`SignatureCheck` (state VALID, or UNSIGNED / LEGACY_PLACEHOLDER when the policy does not
    require a signature). Raises :class:`~gateway.errors.SignatureError` with ``detail["reason"]`` one of
    ``missing``, ``wrapping``, ``malformed``, ``weak-algorithm``, ``untrusted``, ``expired``, ``not-yet-valid``,
    ``revoked``, ``crl-unavailable``, ``bad-digest``, ``bad-signature``. Bytes are parsed with
    :func:`parse_bytes`, whose own errors (``EDXML.PARSE``, ``EDXML.FORBIDDEN``, ``SIZE.LIMIT``) pass through.
    A tree must come from the safe parser too.

    Order: structure → algorithms → certificate path → validity → revocation → XML cryptography (on the
    parsed tree; signxml for the rare shapes the fast path hands back). The cheap, local refusals come first; the
    cryptography only ever sees a signature in the one allowed place and a certificate we already trust.

    ``spooled`` (intake, a package parsed from its spool file): the digest streams the big texts from the spool
    and the tree is spent afterwards; when it did, ``signed_xml`` is ``None`` and ``signed_is_input`` true
    (:func:`gateway.xmlcheck.enveloped.verify_enveloped`).
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw: bytes | None = bytes(data)
        root = parse_bytes(raw, max_bytes=max_bytes, what="edXML package").getroot()
    else:
        raw = None
        root = _root_of(data)

    state = inspect_signature(root)
    if state is not SignatureState.PRESENT:
        _require_unless_policy_allows(state, policy)
        return SignatureCheck(state=state)

    ns, signature = dsig.locate_signature(root)
    sig_uri, digest_uri = dsig.check_signed_info(signature, allow_sha1=policy.allow_sha1)
    certs = dsig.keyinfo_certificates(signature)
    at = policy.validation_time()
    leaf = dsig.end_entity(certs)
    validated = validated_path(leaf, certs, trust, at, policy.trust)

    try:
        content = enveloped.verify_enveloped(root, signature, leaf, spooled=spooled)
    except enveloped.Refused as exc:
        dsig.fail(exc.reason, str(exc))
    check = _valid(leaf, validated, sig_uri, digest_uri)
    if content is not None:
        return replace(check, signed_xml=content.c14n, signed_is_input=content.is_input)
    result = dsig.signxml_verify(raw if raw is not None else root, ns, leaf, at, allow_sha1=policy.allow_sha1)
    signed_root = dsig.check_signed_result(result, root)
    return replace(check, signed_xml=result.signed_data, signxml_root=signed_root)


def _require_unless_policy_allows(state: SignatureState, policy: VerifyPolicy) -> None:
    """An UNSIGNED / LEGACY_PLACEHOLDER package is ``missing`` unless the policy lets it through."""
    if policy.require_signature:
        what = (
            "carries only the legacy placeholder Signature"
            if state is SignatureState.LEGACY_PLACEHOLDER
            else "is unsigned"
        )
        dsig.fail("missing", f"the package {what}; an xmldsig signature is required")


def _valid(leaf: x509.Certificate, validated: ValidatedPath, sig_uri: str, digest_uri: str) -> SignatureCheck:
    return SignatureCheck(
        state=SignatureState.VALID,
        signer_subject=validated.subjects[0],
        signer_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        signer_serial=leaf.serial_number,
        issuer_subject=leaf.issuer.rfc4514_string(),
        organ_ids=organ_ids(leaf),
        signature_algorithm=sig_uri,
        digest_algorithm=digest_uri,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        chain_subjects=validated.subjects,
        revocation=validated.revocation,
        warnings=validated.warnings,
        signer_certificate=leaf,
    )


def _root_of(tree_or_root: TreeOrRoot) -> etree._Element:
    if isinstance(tree_or_root, etree._ElementTree):
        return tree_or_root.getroot()
    if isinstance(tree_or_root, etree._Element):
        return tree_or_root
    raise TypeError("expected an lxml tree or element")


def _header(root: etree._Element) -> etree._Element | None:
    if not isinstance(root.tag, str):
        return None
    ns = etree.QName(root).namespace
    if ns not in EDXML_READ:
        return None
    return root.find(f"{{{ns}}}edXMLEnvelope/{{{ns}}}edXMLHeader")
