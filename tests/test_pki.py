"""The demo PKI: files, chain, validity windows, CRLs, key file modes, refusal to overwrite."""

from __future__ import annotations

import stat
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.demo.pki import DEFAULT_AGENCIES, AgencyCredentials, DemoPki, create_demo_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(path.read_bytes())


def _all_paths(pki: DemoPki) -> list[Path]:
    paths: list[Path] = []
    for f in fields(pki):
        value = getattr(pki, f.name)
        if f.name == "directory":
            continue
        if isinstance(value, Path):
            paths.append(value)
        elif isinstance(value, AgencyCredentials):
            paths += [value.key, value.cert]
    for cred in pki.agencies.values():
        paths += [cred.key, cred.cert]
    return paths


def test_every_file_exists_and_is_pem(pki):
    paths = _all_paths(pki)
    assert len(paths) == 28
    for path in paths:
        assert path.parent == pki.directory
        assert path.read_bytes().startswith(b"-----BEGIN "), path


def test_default_agencies_each_have_a_certificate_naming_their_organ_id(pki):
    assert list(pki.agencies) == [organ_id for organ_id, _ in DEFAULT_AGENCIES]
    for organ_id, name in DEFAULT_AGENCIES:
        cred = pki.agencies[organ_id]
        assert (cred.organ_id, cred.name) == (organ_id, name)
        cert = _cert(cred.cert)
        assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)] == [organ_id]
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn.startswith(organ_id)
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == name
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.public_key().key_size == 2048


def test_chain_validates_from_every_agency_to_the_root(pki):
    root, inter = _cert(pki.root_cert), _cert(pki.intermediate_cert)
    assert _cert(pki.trust) == root
    assert _cert(pki.chain) == inter
    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)
    for ca in (root, inter):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaves = [c.cert for c in pki.agencies.values()] + [pki.ecdsa.cert, pki.expired.cert, pki.revoked.cert]
    for path in [*leaves, pki.gateway_cert]:
        cert = _cert(path)
        cert.verify_directly_issued_by(inter)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_ecdsa_certificate_is_p256(pki):
    key = _cert(pki.ecdsa.cert).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)


def test_expired_certificate_is_expired(pki):
    now = datetime.now(UTC)
    expired = _cert(pki.expired.cert)
    assert expired.not_valid_after_utc < now
    assert expired.not_valid_before_utc < expired.not_valid_after_utc
    # ... but was valid inside a window the CA certificates also cover (tests verify "at" that time).
    inter = _cert(pki.intermediate_cert)
    assert inter.not_valid_before_utc < expired.not_valid_before_utc
    for cred in pki.agencies.values():
        cert = _cert(cred.cert)
        assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def test_crls_list_the_revoked_serial_and_are_signed_by_their_issuer(pki):
    inter, root = _cert(pki.intermediate_cert), _cert(pki.root_cert)
    crl = _crl(pki.intermediate_crl)
    assert crl.issuer == inter.subject
    assert crl.is_signature_valid(inter.public_key())
    revoked_serial = _cert(pki.revoked.cert).serial_number
    entry = crl.get_revoked_certificate_by_serial_number(revoked_serial)
    assert entry is not None
    assert entry.revocation_date_utc <= datetime.now(UTC)
    assert len(list(crl)) == 1
    assert crl.next_update_utc > datetime.now(UTC)

    root_crl = _crl(pki.root_crl)
    assert root_crl.issuer == root.subject
    assert root_crl.is_signature_valid(root.public_key())
    assert root_crl.get_revoked_certificate_by_serial_number(inter.serial_number) is None
    assert pki.crls == (pki.intermediate_crl, pki.root_crl)


def test_rogue_ca_mimics_the_root_but_did_not_come_from_it(pki):
    root, rogue_ca, rogue = _cert(pki.root_cert), _cert(pki.rogue_ca_cert), _cert(pki.rogue.cert)
    assert rogue_ca.subject == root.subject
    assert rogue.issuer == root.subject
    rogue.verify_directly_issued_by(rogue_ca)
    with pytest.raises(InvalidSignature):
        rogue.verify_directly_issued_by(root)
    assert pki.rogue.organ_id == DEFAULT_AGENCIES[0][0]


def test_private_keys_are_private(pki):
    keys = [p for p in _all_paths(pki) if p.name.endswith(".key.pem")]
    assert len(keys) == 12
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        assert b"ENCRYPTED" not in key.read_bytes()  # demo only, documented


def test_refuses_to_overwrite_a_non_empty_directory(pki):
    with pytest.raises(FileExistsError):
        create_demo_pki(pki.directory)


def test_overwrite_and_custom_agencies_and_clock(tmp_path):
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    agencies = [("000.00.00.G01", "Bộ Công an")]
    first = create_demo_pki(tmp_path, agencies, now=now)
    old_root = first.root_cert.read_bytes()
    first.root_key.chmod(0o644)  # a careless operator ...
    second = create_demo_pki(tmp_path, agencies, now=now, overwrite=True)
    assert second.root_cert.read_bytes() != old_root
    assert stat.S_IMODE(second.root_key.stat().st_mode) == 0o600  # ... is corrected on overwrite
    cert = _cert(second.agencies["000.00.00.G01"].cert)
    assert cert.not_valid_before_utc == now - timedelta(days=1)
    assert list(second.agencies) == ["000.00.00.G01"]


@pytest.mark.parametrize(
    "agencies",
    [[], [("not an id", "X")], [("000.00.00.G22", "A"), ("000.00.00.G22", "B")], [("000.00.00.G22", " ")]],
    ids=["none", "bad-id", "duplicate", "empty-name"],
)
def test_bad_agency_lists_are_refused(tmp_path, agencies):
    with pytest.raises(ValueError):
        create_demo_pki(tmp_path, agencies)
    assert not any(tmp_path.iterdir())
