"""The trust side of signature verification: is the signer certificate trusted at a given time?

Path building to a configured trust anchor (every link a verified issuer signature, never names alone),
validity at the validation time, CA constraints and key usage, certificate algorithm strength, CRL revocation
(signxml has no CRL/OCSP), and the per-signer cache of validated paths. We do not use
``cryptography.x509.verification``: its client verifier demands the TLS ``clientAuth`` EKU, which
document-signing certificates do not carry, and it has no revocation checking anyway.

This module knows nothing of XML-DSig: :mod:`gateway.xmlcheck.signature` hands it the KeyInfo certificates and
reads the :class:`ValidatedPath` back. Refusals are :class:`SignatureError` at the signature's element path,
with the same ``reason`` codes the XML-DSig side uses (``untrusted``, ``expired``, ``not-yet-valid``,
``weak-algorithm``, ``revoked``, ``crl-unavailable``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import ConfigError, SignatureError
from gateway.xmlcheck.certs import MIN_RSA_BITS, extension, is_ca, load_certs, load_crl, subject
from gateway.xmlcheck.paths import SIGNATURE_PATH

__all__ = ["PATH_CACHE_SECONDS", "TrustPolicy", "TrustStore", "ValidatedPath", "crl_status", "validated_path"]

#: How long a validated path is reused. Within it, a CRL that expires or a revocation dated in the future
#: takes effect late by at most this long; every other input (certificates, CRL files) is fixed per store.
PATH_CACHE_SECONDS: Final = 60
_PATH_CACHE_MAX: Final = 4096
_MAX_CHAIN_DEPTH: Final = 6
#: CRL reasons that invalidate signatures made before the revocation date too.
_COMPROMISE: Final = frozenset(
    {x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise, x509.ReasonFlags.aa_compromise}
)


@dataclass(frozen=True)
class TrustPolicy:
    """The part of the verification policy that concerns certificates (see ``VerifyPolicy`` for the rest).

    A value (hashable): it is part of the validated-path cache key, so a path validated under a laxer policy
    never serves a stricter one.
    """

    #: Accept certificates signed with SHA-1 (a legacy-peer opt-in).
    allow_sha1: bool = False
    check_revocation: bool = True
    #: When an issuer's CRL is missing or stale: ``False`` refuses (``crl-unavailable``), ``True`` accepts
    #: and records the gap in :attr:`ValidatedPath.warnings`.
    crl_soft_fail: bool = False


@dataclass(frozen=True)
class ValidatedPath:
    """A certificate path that passed every trust check, and the time window in which that answer holds."""

    #: [signer, intermediates..., trust anchor].
    path: tuple[x509.Certificate, ...]
    subjects: tuple[str, ...]
    #: ``"good"``, ``"not-checked"`` (policy) or ``"soft-fail"`` (some CRL missing/stale, policy allowed it).
    revocation: str
    #: Visible notes, e.g. which issuer's CRL was missing under soft-fail.
    warnings: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors, CRLs and optional extra intermediates, loaded once at start-up.

    ``intermediates`` are not trusted; they only help build a path for signers that send their certificate
    without its chain (what ``xmlsec1 --untrusted-pem`` does).
    """

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    #: Validated certificate paths (see :func:`validated_path`); not part of the value.
    _paths: dict[tuple[object, ...], ValidatedPath] = field(default_factory=dict, compare=False, repr=False)

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
        anchors = load_certs(ca_pem_path)
        inters: list[x509.Certificate] = []
        for p in intermediate_paths:
            inters.extend(load_certs(p))
        crls = tuple(load_crl(p) for p in crl_paths)
        return cls(anchors=tuple(anchors), crls=crls, intermediates=tuple(inters))


def validated_path(
    leaf: x509.Certificate,
    certs: Sequence[x509.Certificate],
    trust: TrustStore,
    at: datetime,
    policy: TrustPolicy,
) -> ValidatedPath:
    """Path building, validity and revocation for the signer ``leaf`` and the ``certs`` sent with it, cached
    per trust store.

    Intake verifies many packages from few signers; building and checking the path (issuer signatures,
    CRL signatures, names) costs about as much as the XML signature itself (docs/benchmarks.md), and
    its inputs do not change between packages. Failures are never cached; a hit requires ``at`` inside
    the window in which the cached answer was computed to hold.
    """
    key = (tuple(c.fingerprint(hashes.SHA256()) for c in certs), policy)
    hit = trust._paths.get(key)
    if hit is not None and hit.valid_from <= at < hit.valid_until:
        return hit
    path = _build_path(leaf, [c for c in (*certs, *trust.intermediates) if c != leaf], trust.anchors)
    if path is None:
        _fail(
            "untrusted",
            f"no certificate path from {subject(leaf)} (issuer {leaf.issuer.rfc4514_string()}) to a trusted CA",
            certificate=subject(leaf),
        )
    _check_path(path, at, policy)
    revocation, warnings = _check_revocation(path, trust, at, policy)
    if len(trust._paths) >= _PATH_CACHE_MAX:
        trust._paths.clear()
    result = trust._paths[key] = ValidatedPath(
        path=tuple(path),
        subjects=tuple(subject(c) for c in path),
        revocation=revocation,
        warnings=tuple(warnings),
        valid_from=max(at, *(c.not_valid_before_utc for c in path)),
        valid_until=min(at + timedelta(seconds=PATH_CACHE_SECONDS), *(c.not_valid_after_utc for c in path)),
    )
    return result


# ------------------------------------------------------------------------------------------ path building


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
            if candidate in path or not is_ca(candidate):
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
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            continue
        yield candidate


# ------------------------------------------------------------------------------------------ path checks


def _check_path(path: Sequence[x509.Certificate], at: datetime, policy: TrustPolicy) -> None:
    """Validity at ``at`` for every certificate, CA constraints, key usage and algorithm strength."""
    for cert in path:
        if at < cert.not_valid_before_utc:
            _fail(
                "not-yet-valid",
                f"certificate {subject(cert)} is not valid before {cert.not_valid_before_utc.isoformat()} "
                f"(validation time {at.isoformat()})",
                certificate=subject(cert),
            )
        if at > cert.not_valid_after_utc:
            _fail(
                "expired",
                f"certificate {subject(cert)} expired at {cert.not_valid_after_utc.isoformat()} "
                f"(validation time {at.isoformat()})",
                certificate=subject(cert),
            )
    leaf, issuers = path[0], path[1:]
    usage = extension(leaf, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        _fail("untrusted", f"certificate {subject(leaf)} is not for signing (KeyUsage)")
    for depth, ca in enumerate(issuers):
        constraints = extension(ca, x509.BasicConstraints)
        is_anchor = ca is path[-1]
        if not is_anchor and (constraints is None or not constraints.ca):
            _fail("untrusted", f"{subject(ca)} is not a CA certificate")
        if constraints is not None and constraints.path_length is not None and depth > constraints.path_length:
            _fail("untrusted", f"path length constraint of {subject(ca)} exceeded")
        ca_usage = extension(ca, x509.KeyUsage)
        if ca_usage is not None and not ca_usage.key_cert_sign:
            _fail("untrusted", f"{subject(ca)} may not sign certificates (KeyUsage)")
    for cert in path[:-1]:  # the anchor's self-signature is not relied on
        _check_certificate_crypto(cert, policy)


def _check_certificate_crypto(cert: x509.Certificate, policy: TrustPolicy) -> None:
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # e.g. Ed25519 has no separate hash; the issuer signature check already ran
        hash_alg = None
    if isinstance(hash_alg, hashes.SHA1) and not policy.allow_sha1:
        _fail("weak-algorithm", f"certificate {subject(cert)} is signed with SHA-1", certificate=subject(cert))
    if isinstance(hash_alg, hashes.MD5 | hashes.SHA224):
        _fail("weak-algorithm", f"certificate {subject(cert)} is signed with {hash_alg.name}")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        _fail("weak-algorithm", f"certificate {subject(cert)} has a {key.key_size}-bit RSA key")


# ------------------------------------------------------------------------------------------ revocation


def _check_revocation(
    path: Sequence[x509.Certificate], trust: TrustStore, at: datetime, policy: TrustPolicy
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
                f"no CRL of {subject(issuer)} is available"
                if crl is None
                else f"the CRL of {subject(issuer)} is stale (next update {crl.next_update_utc})"
            )
            if not policy.crl_soft_fail:
                _fail("crl-unavailable", problem, issuer=subject(issuer))
            warnings.append(f"crl-unavailable: {problem}; accepted by soft-fail policy")
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            reason = extension(entry, x509.CRLReason)
            if entry.revocation_date_utc <= at or (reason is not None and reason.reason in _COMPROMISE):
                _fail(
                    "revoked",
                    f"certificate {subject(cert)} (serial {cert.serial_number:x}) was revoked at "
                    f"{entry.revocation_date_utc.isoformat()}",
                    certificate=subject(cert),
                    serial=f"{cert.serial_number:x}",
                )
    return ("soft-fail" if warnings else "good"), tuple(warnings)


def crl_status(cert: x509.Certificate, trust: TrustStore, at: datetime) -> tuple[str, datetime | None]:
    """Revocation of a certificate seen earlier, by today's CRLs: ``("revoked", date)``, ``("good", None)`` or
    ``("unknown", None)`` (no fresh CRL of its issuer).

    The certificate watch keeps only the signer certificate, not the chain it came with, so the issuer may be
    unknown here (an intermediate sent in KeyInfo). A CRL is then matched to the certificate by issuer NAME; its
    signature is checked whenever the issuer certificate is in the trust store. That is sound for this use — the
    CRLs are the operator's configured files, the same ones intake trusts — and it is never used to accept a
    signature, only to warn about a certificate already accepted.
    """
    issuers = [c for c in (*trust.anchors, *trust.intermediates) if c.subject == cert.issuer]
    crls = [crl for crl in trust.crls if crl.issuer == cert.issuer]
    if issuers:
        crls = [crl for issuer in issuers if (crl := _freshest_crl(issuer, crls)) is not None]
    fresh = [crl for crl in crls if crl.next_update_utc is not None and crl.next_update_utc >= at]
    if not fresh:
        return "unknown", None
    for crl in fresh:
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= at:
            return "revoked", entry.revocation_date_utc
    return "good", None


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


def _fail(reason: str, message: str, **detail: object) -> NoReturn:
    raise SignatureError(message, path=SIGNATURE_PATH, reason=reason, **detail)
