"""A demo / test PKI for edXML signatures, built with ``cryptography`` (edxml.md §10, gateway.md Intake 5).

Why it exists: signature policy, chain validation and revocation can only be tested and demonstrated with a
real certificate hierarchy, and a checked-in one would expire. :func:`create_demo_pki` builds a complete,
fresh one in a directory in about a second:

* a root CA and an intermediate CA (agency certificates are issued by the intermediate, so every
  verification walks a real certificate chain);
* one RSA-2048 key + certificate per agency, plus an ECDSA P-256 agency certificate, an EXPIRED one and a
  REVOKED one (all three for the first agency);
* a CRL of the intermediate (listing the revoked certificate) and a CRL of the root (empty);
* ``trust.pem`` (the root only: what a gateway trusts) and ``chain.pem`` (the intermediate: what a signer
  sends along);
* a second, untrusted "rogue" CA whose name copies the trusted root's name, and an agency certificate it
  issued that claims the first agency's OrganId (an impersonation attempt);
* a gateway key + certificate, for the signed intake receipts (gateway.md Intake 7).

Where the agency identifier lives: the OrganId (edxml.md §6.1) is the subject's ``serialNumber`` attribute
(OID 2.5.4.5, X.520 "identifier of the subject") and is repeated as the first word of the ``CN`` for humans;
``O`` carries the agency name. :func:`gateway.xmlcheck.signature.verify_package` reads OrganIds from the
``serialNumber`` (and ``OU``) attributes only, never from free text.

**Demo only.** Private keys are written as UNENCRYPTED PEM (mode 0600). Never use these keys or this CA for
anything but tests and demonstrations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: A province with level-2/3 units, and a ministry-level body (edxml.md §6.1 examples).
DEFAULT_AGENCIES: tuple[tuple[str, str], ...] = (
    ("000.00.00.H53", "UBND tỉnh Tây Ninh"),
    ("000.00.01.H53", "Văn phòng UBND tỉnh Tây Ninh"),
    ("000.01.01.H53", "Ban Tiếp Công dân"),
    ("000.00.00.G22", "Văn phòng Chính phủ"),
)

#: The gateway's lenient OrganId grammar (edxml.md §6.1 "Gateway rule").
_ORGAN_ID = re.compile(r"^[0-9A-Z]+(\.[0-9A-Z]+)*$")

#: id-kp-documentSigning (RFC 9336): the purpose of an edXML signing certificate.
EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

_CA_ORG = "edoc-gateway demo PKI"
_RSA_BITS = 2048
_CN_MAX = 64  # ub-common-name (RFC 5280); cryptography refuses longer CNs


@dataclass(frozen=True)
class AgencyCredentials:
    """An agency's signing key and certificate, with the OrganId its certificate names."""

    organ_id: str
    name: str
    key: Path
    cert: Path


@dataclass(frozen=True)
class DemoPki:
    """Paths of every file :func:`create_demo_pki` wrote."""

    directory: Path
    root_key: Path
    root_cert: Path
    #: CRL of the root (empty): lets the intermediate's revocation status be checked.
    root_crl: Path
    intermediate_key: Path
    intermediate_cert: Path
    #: CRL of the intermediate, listing :attr:`revoked`.
    intermediate_crl: Path
    #: The root certificate only: the trust store a gateway loads.
    trust: Path
    #: The intermediate certificate only: the chain a signer sends in KeyInfo.
    chain: Path
    #: One RSA-2048 credential per agency, keyed by OrganId, in the order given.
    agencies: Mapping[str, AgencyCredentials]
    #: ECDSA P-256 credential of the first agency.
    ecdsa: AgencyCredentials
    #: A credential of the first agency whose certificate expired 30 days before ``now``.
    expired: AgencyCredentials
    #: A credential of the first agency whose certificate is listed in :attr:`intermediate_crl`.
    revoked: AgencyCredentials
    #: The untrusted CA (self-signed; its subject copies the trusted root's subject).
    rogue_ca_key: Path
    rogue_ca_cert: Path
    #: A credential issued by the rogue CA, claiming the first agency's OrganId.
    rogue: AgencyCredentials
    #: The gateway's own credential (receipts).
    gateway_key: Path
    gateway_cert: Path

    @property
    def crls(self) -> tuple[Path, ...]:
        """Every CRL a verifier needs (intermediate, root)."""
        return (self.intermediate_crl, self.root_crl)


def create_demo_pki(
    directory: str | os.PathLike[str],
    agencies: Sequence[tuple[str, str]] = DEFAULT_AGENCIES,
    *,
    now: datetime | None = None,
    overwrite: bool = False,
) -> DemoPki:
    """Create a demo PKI in ``directory`` and return the paths.

    ``agencies`` are ``(OrganId, name)`` pairs; the first one also gets the ECDSA, expired, revoked and rogue
    certificates. ``now`` fixes the clock (default: the current UTC time) so tests can place validity windows.

    Refuses (``FileExistsError``) to write into an existing non-empty directory unless ``overwrite=True``,
    so that a demo CA is never silently replaced under a running gateway. Keys are unencrypted (demo only).
    """
    agencies = tuple(agencies)
    if not agencies:
        raise ValueError("create_demo_pki needs at least one agency")
    seen: set[str] = set()
    for organ_id, name in agencies:
        if not _ORGAN_ID.match(organ_id) or len(organ_id) > 35:
            raise ValueError(f"not an OrganId (edxml.md §6.1): {organ_id!r}")
        if organ_id in seen:
            raise ValueError(f"duplicate OrganId: {organ_id}")
        if not name.strip():
            raise ValueError(f"empty agency name for {organ_id}")
        seen.add(organ_id)

    base = Path(directory)
    if base.exists() and any(base.iterdir()) and not overwrite:
        raise FileExistsError(f"{base} is not empty; pass overwrite=True to replace the demo PKI")
    base.mkdir(parents=True, exist_ok=True)

    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    w = _Writer(base)

    # -- root and intermediate ---------------------------------------------------------------------------
    root_name = _ca_name("Demo Root CA")
    root_key = _rsa_key()
    root_cert = _ca_cert(
        root_name, root_key, root_name, root_key, now - timedelta(days=3650), now + timedelta(days=7300), 1
    )
    inter_name = _ca_name("Demo Issuing CA")
    inter_key = _rsa_key()
    inter_cert = _ca_cert(
        inter_name, inter_key, root_name, root_key, now - timedelta(days=3000), now + timedelta(days=3650), 0
    )

    # -- agencies ----------------------------------------------------------------------------------------
    def leaf(
        organ_id: str,
        name: str,
        key: PrivateKey,
        stem: str,
        *,
        not_before: datetime,
        not_after: datetime,
        issuer: tuple[x509.Name, PrivateKey] = (inter_name, inter_key),
    ) -> tuple[AgencyCredentials, x509.Certificate]:
        cert = _leaf_cert(_agency_name(organ_id, name), key, issuer[0], issuer[1], not_before, not_after, is_ca=False)
        return AgencyCredentials(organ_id, name, w.key(stem, key), w.cert(stem, cert)), cert

    valid_from, valid_to = now - timedelta(days=1), now + timedelta(days=730)
    creds = {
        oid: leaf(oid, name, _rsa_key(), f"agency-{oid}", not_before=valid_from, not_after=valid_to)[0]
        for oid, name in agencies
    }
    first_id, first_name = agencies[0]
    ecdsa, _ = leaf(
        first_id,
        first_name,
        ec.generate_private_key(ec.SECP256R1()),
        "agency-ecdsa",
        not_before=valid_from,
        not_after=valid_to,
    )
    expired, _ = leaf(
        first_id,
        first_name,
        _rsa_key(),
        "agency-expired",
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=30),
    )
    revoked, revoked_cert = leaf(
        first_id, first_name, _rsa_key(), "agency-revoked", not_before=valid_from, not_after=valid_to
    )

    # -- CRLs: the intermediate's lists the revoked certificate; the root's is empty ------------------------
    inter_crl = _crl(inter_name, inter_key, now, [(revoked_cert.serial_number, now - timedelta(minutes=5))])
    root_crl = _crl(root_name, root_key, now, [])

    # -- the rogue CA copies the trusted root's name: only the signature check tells them apart -------------
    rogue_key = _rsa_key()
    rogue_cert = _ca_cert(
        root_name, rogue_key, root_name, rogue_key, now - timedelta(days=365), now + timedelta(days=3650), 0
    )
    rogue, _ = leaf(
        first_id,
        first_name,
        _rsa_key(),
        "rogue-agency",
        not_before=valid_from,
        not_after=valid_to,
        issuer=(root_name, rogue_key),
    )

    # ECDSA P-256 for the gateway: it signs a receipt for every accepted package, and a P-256 signature
    # costs a small fraction of an RSA-2048 one on the intake hot path.
    gw_key = ec.generate_private_key(ec.SECP256R1())
    gw_cert = _leaf_cert(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _CA_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, "edoc-gateway"),
            ]
        ),
        gw_key,
        inter_name,
        inter_key,
        valid_from,
        valid_to,
        is_ca=False,
    )

    return DemoPki(
        directory=base,
        root_key=w.key("root-ca", root_key),
        root_cert=w.cert("root-ca", root_cert),
        root_crl=w.crl("root-ca", root_crl),
        intermediate_key=w.key("intermediate-ca", inter_key),
        intermediate_cert=w.cert("intermediate-ca", inter_cert),
        intermediate_crl=w.crl("intermediate-ca", inter_crl),
        trust=w.pem("trust.pem", _cert_pem(root_cert)),
        chain=w.pem("chain.pem", _cert_pem(inter_cert)),
        agencies=MappingProxyType(creds),
        ecdsa=ecdsa,
        expired=expired,
        revoked=revoked,
        rogue_ca_key=w.key("rogue-ca", rogue_key),
        rogue_ca_cert=w.cert("rogue-ca", rogue_cert),
        rogue=rogue,
        gateway_key=w.key("gateway", gw_key),
        gateway_cert=w.cert("gateway", gw_cert),
    )


# ------------------------------------------------------------------------------------------------ builders


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)


def _ca_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _CA_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _agency_name(organ_id: str, name: str) -> x509.Name:
    """``C=VN, O=<name>, serialNumber=<OrganId>, CN=<OrganId> <name>`` (see the module docstring)."""
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
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )


def _ca_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
) -> x509.Certificate:
    builder = (
        _base_builder(subject, key, issuer, issuer_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    *,
    is_ca: bool,
) -> x509.Certificate:
    builder = (
        _base_builder(subject, key, issuer, issuer_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([EKU_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer: x509.Name, issuer_key: PrivateKey, now: datetime, revoked: list[tuple[int, datetime]]
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _Writer:
    """Writes PEM files under one directory; keys are created with mode 0600 from the first byte on."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def key(self, stem: str, key: PrivateKey) -> Path:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),  # demo only, see the module docstring
        )
        return self._write(f"{stem}.key.pem", data, 0o600)

    def cert(self, stem: str, cert: x509.Certificate) -> Path:
        return self._write(f"{stem}.cert.pem", _cert_pem(cert), 0o644)

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
