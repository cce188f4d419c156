"""Certificate, CRL and PEM-file builders for the demo PKI (:mod:`gateway.demo.pki`).

Kept apart from the PKI layout so that :func:`gateway.demo.pki.create_demo_pki` reads as the list of what it
issues, while the X.509 details (names, extensions, key usages) live here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: id-kp-documentSigning (RFC 9336): the purpose of an edXML signing certificate.
EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

CA_ORG = "edoc-gateway demo PKI"
_RSA_BITS = 2048
_CN_MAX = 64  # ub-common-name (RFC 5280); cryptography refuses longer CNs


@dataclass(frozen=True)
class Issuer:
    """Who signs a certificate or CRL: the name written as its issuer and the key that signs it."""

    name: x509.Name
    key: PrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)


def ca_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def agency_name(organ_id: str, name: str) -> x509.Name:
    """``C=VN, O=<name>, serialNumber=<OrganId>, CN=<OrganId> <name>`` (see :mod:`gateway.demo.pki`)."""
    cn = f"{organ_id} {name}"[:_CN_MAX].rstrip()
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:_CN_MAX]),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, organ_id),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _base_builder(
    subject: x509.Name, key: PrivateKey, issuer: Issuer, not_before: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    """Document signing (digitalSignature + nonRepudiation) for leaves, certificate and CRL signing for CAs."""
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def ca_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issuer,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
) -> x509.Certificate:
    builder = (
        _base_builder(subject, key, issuer, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
    )
    return builder.sign(issuer.key, hashes.SHA256())


def leaf_cert(
    subject: x509.Name, key: PrivateKey, issuer: Issuer, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    builder = (
        _base_builder(subject, key, issuer, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([EKU_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    )
    return builder.sign(issuer.key, hashes.SHA256())


def crl(issuer: Issuer, now: datetime, revoked: list[tuple[int, datetime]]) -> x509.CertificateRevocationList:
    """A CRL valid from an hour ago for a week; every entry is a key compromise revoked at the given time."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class PemWriter:
    """Writes PEM files under one directory; keys are created with mode 0600 from the first byte on."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def key(self, stem: str, key: PrivateKey) -> Path:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),  # demo only, see gateway.demo.pki
        )
        return self._write(f"{stem}.key.pem", data, 0o600)

    def cert(self, stem: str, cert: x509.Certificate) -> Path:
        return self._write(f"{stem}.cert.pem", cert_pem(cert), 0o644)

    def crl(self, stem: str, crl: x509.CertificateRevocationList) -> Path:
        return self._write(f"{stem}.crl.pem", crl.public_bytes(serialization.Encoding.PEM), 0o644)

    def pem(self, name: str, data: bytes) -> Path:
        return self._write(name, data, 0o644)

    def _write(self, name: str, data: bytes, mode: int) -> Path:
        path = self.base / name
        # Unlink first: O_CREAT keeps the mode of an existing file, and a key must never be readable by others.
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)  # the umask may have removed bits from a certificate's 0644; keys stay 0600
        return path
