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

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.demo.x509build import (
    CA_ORG,
    Issuer,
    PemWriter,
    PrivateKey,
    agency_name,
    ca_cert,
    ca_name,
    cert_pem,
    crl,
    leaf_cert,
    rsa_key,
)

#: A province with level-2/3 units, and a ministry-level body (edxml.md §6.1 examples).
DEFAULT_AGENCIES: tuple[tuple[str, str], ...] = (
    ("000.00.00.H53", "UBND tỉnh Tây Ninh"),
    ("000.00.01.H53", "Văn phòng UBND tỉnh Tây Ninh"),
    ("000.01.01.H53", "Ban Tiếp Công dân"),
    ("000.00.00.G22", "Văn phòng Chính phủ"),
)

#: The gateway's lenient OrganId grammar (edxml.md §6.1 "Gateway rule").
_ORGAN_ID = re.compile(r"^[0-9A-Z]+(\.[0-9A-Z]+)*$")


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
    #: The gateway's own credential (receipts). ``gateway_cert`` is a full-chain file — the gateway certificate,
    #: then the intermediate CA — as ``gateway_cert`` in the settings must be, so that receipts carry the chain.
    gateway_key: Path
    gateway_cert: Path

    @property
    def crls(self) -> tuple[Path, ...]:
        """Every CRL a verifier needs (intermediate, root)."""
        return (self.intermediate_crl, self.root_crl)


@dataclass(frozen=True)
class _Ca:
    """A CA of the demo hierarchy: the issuer of what it signs, and its own certificate."""

    issuer: Issuer
    cert: x509.Certificate


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
    agencies = _checked(agencies)
    base = _empty_directory(Path(directory), overwrite)
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    w = PemWriter(base)
    root, inter = _hierarchy(now)
    valid = (now - timedelta(days=1), now + timedelta(days=730))
    first = agencies[0]
    creds = {oid: _agency(w, inter, (oid, name), rsa_key(), f"agency-{oid}", valid)[0] for oid, name in agencies}
    ecdsa, _ = _agency(w, inter, first, ec.generate_private_key(ec.SECP256R1()), "agency-ecdsa", valid)
    expired, _ = _agency(
        w, inter, first, rsa_key(), "agency-expired", (now - timedelta(days=400), now - timedelta(days=30))
    )
    revoked, revoked_cert = _agency(w, inter, first, rsa_key(), "agency-revoked", valid)
    # CRLs: the intermediate's lists the revoked certificate; the root's is empty.
    inter_crl = crl(inter.issuer, now, [(revoked_cert.serial_number, now - timedelta(minutes=5))])
    root_crl = crl(root.issuer, now, [])
    rogue_ca = _rogue_ca(root.issuer.name, now)
    rogue, _ = _agency(w, rogue_ca, first, rsa_key(), "rogue-agency", valid)
    gw_key, gw_cert = _gateway_credential(inter, valid)
    return DemoPki(
        directory=base,
        root_key=w.key("root-ca", root.issuer.key),
        root_cert=w.cert("root-ca", root.cert),
        root_crl=w.crl("root-ca", root_crl),
        intermediate_key=w.key("intermediate-ca", inter.issuer.key),
        intermediate_cert=w.cert("intermediate-ca", inter.cert),
        intermediate_crl=w.crl("intermediate-ca", inter_crl),
        trust=w.pem("trust.pem", cert_pem(root.cert)),
        chain=w.pem("chain.pem", cert_pem(inter.cert)),
        agencies=MappingProxyType(creds),
        ecdsa=ecdsa,
        expired=expired,
        revoked=revoked,
        rogue_ca_key=w.key("rogue-ca", rogue_ca.issuer.key),
        rogue_ca_cert=w.cert("rogue-ca", rogue_ca.cert),
        rogue=rogue,
        gateway_key=w.key("gateway", gw_key),
        gateway_cert=w.pem("gateway.cert.pem", cert_pem(gw_cert) + cert_pem(inter.cert)),
    )


def _checked(agencies: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """At least one agency, each with a well-formed OrganId (edxml.md §6.1), a name, and no OrganId twice."""
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
    return agencies


def _empty_directory(base: Path, overwrite: bool) -> Path:
    if base.exists() and any(base.iterdir()) and not overwrite:
        raise FileExistsError(f"{base} is not empty; pass overwrite=True to replace the demo PKI")
    base.mkdir(parents=True, exist_ok=True)
    return base


def _hierarchy(now: datetime) -> tuple[_Ca, _Ca]:
    """The root CA and the intermediate it issued (which issues every agency certificate)."""
    root = Issuer(ca_name("Demo Root CA"), rsa_key())
    root_cert = ca_cert(root.name, root.key, root, now - timedelta(days=3650), now + timedelta(days=7300), 1)
    inter = Issuer(ca_name("Demo Issuing CA"), rsa_key())
    inter_cert = ca_cert(inter.name, inter.key, root, now - timedelta(days=3000), now + timedelta(days=3650), 0)
    return _Ca(root, root_cert), _Ca(inter, inter_cert)


def _rogue_ca(root_name: x509.Name, now: datetime) -> _Ca:
    """An untrusted self-signed CA that copies the trusted root's name: only the signature check tells them
    apart."""
    rogue = Issuer(root_name, rsa_key())
    return _Ca(rogue, ca_cert(root_name, rogue.key, rogue, now - timedelta(days=365), now + timedelta(days=3650), 0))


def _agency(
    w: PemWriter,
    ca: _Ca,
    agency: tuple[str, str],
    key: PrivateKey,
    stem: str,
    validity: tuple[datetime, datetime],
) -> tuple[AgencyCredentials, x509.Certificate]:
    """An agency signing certificate issued by ``ca``, written with its key as ``<stem>.{key,cert}.pem``."""
    organ_id, name = agency
    cert = leaf_cert(agency_name(organ_id, name), key, ca.issuer, *validity)
    return AgencyCredentials(organ_id, name, w.key(stem, key), w.cert(stem, cert)), cert


def _gateway_credential(
    inter: _Ca, validity: tuple[datetime, datetime]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """ECDSA P-256 for the gateway: it signs a receipt for every accepted package, and a P-256 signature
    costs a small fraction of an RSA-2048 one on the intake hot path."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, "edoc-gateway"),
        ]
    )
    return key, leaf_cert(subject, key, inter.issuer, *validity)
