"""X.509 reading shared by the signing, XML-DSig and trust modules: files, extensions, names.

Why a module of its own: the signer (:mod:`gateway.xmlcheck.signing`), the verifier
(:mod:`gateway.xmlcheck.signature`) and the trust side (:mod:`gateway.xmlcheck.trust`) all load certificates and
read the same few certificate facts; keeping them here lets the trust side stay independent of XML-DSig.
Nothing here decides whether a certificate is trusted.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError

__all__ = [
    "CERTIFICATE_ERRORS",
    "MIN_RSA_BITS",
    "PARSED_CACHE_SIZE",
    "UnreadableCertificate",
    "extension",
    "fully_parsed",
    "is_ca",
    "load_certs",
    "load_crl",
    "load_der_certificate",
    "organ_ids",
    "subject",
]

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

#: The smallest RSA key we sign with or accept in a certificate path (gateway.md Intake 5).
MIN_RSA_BITS: Final = 2048
#: OrganId as found in a certificate subject: the lenient edxml.md §6.1 grammar, but with at least one dot so
#: that a plain organisational-unit word ("IT") is never taken for an agency identifier.
_ORGAN_ID_IN_CERT: Final = re.compile(r"[0-9A-Z]+(?:\.[0-9A-Z]+)+")
_ORGAN_ID_ATTRIBUTES: Final = (NameOID.SERIAL_NUMBER, NameOID.ORGANIZATIONAL_UNIT_NAME)


#: What ``cryptography`` raises on a malformed certificate — at load, or (it parses lazily) at the first access
#: of a field: a bad name or extension (ValueError), a repeated extension, an unknown version, an unknown key or
#: signature algorithm, a general name of an unsupported type, and TypeError from some odd encodings.
CERTIFICATE_ERRORS: Final = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
)


class UnreadableCertificate(ValueError):
    """A certificate that does not parse in full; the message names the exception ``cryptography`` raised."""


def fully_parsed(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` after touching every field the gateway reads, so that a malformed one fails here, once, inside
    the caller's ``try`` — never later in path building, binding or a report (issue 10: lazily parsed subjects,
    issuers and extensions of a KeyInfo certificate surfaced as GATEWAY.INTERNAL). Raises
    :class:`UnreadableCertificate`."""
    try:
        _ = (cert.version, cert.serial_number, cert.signature_algorithm_oid, cert.tbs_certificate_bytes)
        _ = (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.subject == cert.issuer)
        _ = [(ext.oid, ext.critical, ext.value) for ext in cert.extensions]
        _ = (cert.not_valid_before_utc, cert.not_valid_after_utc, cert.fingerprint(hashes.SHA256()))
        _ = (cert.public_key(), cert.signature_hash_algorithm)  # an unknown algorithm cannot be verified anyway
        organ_ids(cert)
    except CERTIFICATE_ERRORS as exc:
        raise UnreadableCertificate(f"{type(exc).__name__}: {exc}") from None
    return cert


class _ParsedCertificates:
    """The last :data:`PARSED_CACHE_SIZE` certificates that parsed in full, keyed by the SHA-256 of their DER.

    Why: every signed package carries its KeyInfo certificates (the signer's and usually its CA's), and parsing
    them in full cost ≈ 0.2 ms of a 10 KB intake (issue 14 profile: 40 % of signature checking) for the same
    two or three certificates per agency, package after package. The key is derived from the content alone (never
    a name or anything else a caller states), so a hit is the very certificate those bytes encode; only one that
    :func:`fully_parsed` accepted is kept, so a malformed one is parsed (and refused) again every time, exactly as
    without the cache. ``cryptography``'s certificate objects are immutable and safe to share between threads;
    nothing here says whether a certificate is trusted (that is checked per package, at its validation time).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._certs: OrderedDict[bytes, x509.Certificate] = OrderedDict()

    def get(self, key: bytes) -> x509.Certificate | None:
        with self._lock:
            cert = self._certs.get(key)
            if cert is not None:
                self._certs.move_to_end(key)
            return cert

    def put(self, key: bytes, cert: x509.Certificate) -> None:
        with self._lock:
            self._certs[key] = cert
            self._certs.move_to_end(key)
            while len(self._certs) > self._size:
                self._certs.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._certs.clear()


#: Certificates kept parsed (:class:`_ParsedCertificates`): a few per signing agency; a province's gateway sees
#: tens to hundreds of agencies, and a miss only costs the parse this saves.
PARSED_CACHE_SIZE: Final = 256
_PARSED: Final = _ParsedCertificates(PARSED_CACHE_SIZE)


def load_der_certificate(der: bytes) -> x509.Certificate:
    """A DER certificate parsed in full (:func:`fully_parsed`); :class:`UnreadableCertificate` otherwise.

    The same bytes seen again return the certificate parsed then (:class:`_ParsedCertificates`)."""
    key = hashlib.sha256(der).digest()
    cert = _PARSED.get(key)
    if cert is not None:
        return cert
    try:
        cert = x509.load_der_x509_certificate(der)
    except CERTIFICATE_ERRORS as exc:
        raise UnreadableCertificate(f"{type(exc).__name__}: {exc}") from None
    cert = fully_parsed(cert)  # raises before anything is cached
    _PARSED.put(key, cert)
    return cert


def load_certs(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, each parsed in full; an unreadable or empty file is
    ``CONFIG.INVALID``."""
    try:
        certs = [fully_parsed(c) for c in x509.load_pem_x509_certificates(Path(path).read_bytes())]
    except (OSError, *CERTIFICATE_ERRORS) as exc:
        raise ConfigError(f"cannot load PEM certificates from {path}: {exc}") from exc
    if not certs:
        raise ConfigError(f"no certificate in {path}")
    return certs


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """One CRL, PEM or DER; an unreadable file is ``CONFIG.INVALID``."""
    try:
        data = Path(path).read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load CRL from {path}: {exc}") from exc


def is_ca(cert: x509.Certificate) -> bool:
    """True when BasicConstraints says CA (a certificate without the extension is not a CA)."""
    constraints = extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def extension(obj: x509.Certificate | x509.RevokedCertificate, ext_type: type[_Ext]) -> _Ext | None:
    """The extension's value, or ``None`` when absent."""
    try:
        return obj.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def subject(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, the one spelling used in messages and results."""
    return cert.subject.rfc4514_string()


def organ_ids(cert: x509.Certificate) -> tuple[str, ...]:
    """OrganIds named by the subject's ``serialNumber``/``OU`` attributes, in order, never from free text."""
    found: list[str] = []
    for oid in _ORGAN_ID_ATTRIBUTES:
        for attr in cert.subject.get_attributes_for_oid(oid):
            value = attr.value if isinstance(attr.value, str) else None
            if value and len(value) <= 35 and _ORGAN_ID_IN_CERT.fullmatch(value) and value not in found:
                found.append(value)
    return tuple(found)
