"""Certificate watch on the real databases (SQLite and PostgreSQL) with real signatures: a package signed by a
certificate that expires in 10 days is taken in, its signer certificate is recorded in the intake transaction, the
watch lists it with its days left, and an alert round raises ``cert_expiry`` through the webhook; a revoked
certificate is found by today's CRL; the signed share per agency; ``contact_email`` in the registry format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from test_alerts import Inbox, Webhook, free_port
from test_services import SECRET_KEY, A, B, edoc

from gateway.config import Settings
from gateway.db import SignerCertificate, create_engine
from gateway.db.certificates import record_signer
from gateway.demo.pki import DemoPki
from gateway.demo.x509build import Issuer, agency_name, leaf_cert, rsa_key
from gateway.services.alerts import Alerts
from gateway.services.certwatch import CertWatch
from gateway.services.gateway import GatewayService
from gateway.services.registry import RegistryImportError
from gateway.worker.notify import SmtpTransport, WebhookPoster
from gateway.xmlcheck.signing import SigningKey, sign_package
from gateway.xmlcheck.trust import TrustStore


def short_lived_key(pki: DemoPki, days: int) -> SigningKey:
    """A certificate of A issued by the demo intermediate CA, expiring in ``days``."""
    inter_cert = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    inter_key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), password=None)
    key = rsa_key()
    now = datetime.now(UTC)
    cert = leaf_cert(
        agency_name(A, "Văn phòng UBND tỉnh Tây Ninh"),
        key,
        Issuer(inter_cert.subject, inter_key),  # type: ignore[arg-type]
        now - timedelta(days=1),
        now + timedelta(days=days),
    )
    return SigningKey(private_key=key, certificate=cert, chain=(inter_cert,))


@pytest.fixture
def service(database_url: str, tmp_path, pki: DemoPki) -> Iterator[GatewayService]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=SECRET_KEY)
    trust = TrustStore.from_files(pki.trust, pki.crls)
    svc = GatewayService(
        create_engine(settings), SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain), trust, settings
    )
    svc.store.create_schema()
    svc.registry.import_records(
        [
            {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "contact_email": "vanthu@tayninh.gov.vn"},
            {"organ_id": B, "name": "Văn phòng Chính phủ"},
        ]
    )
    svc.registry.add_system("sys-a", [A])
    yield svc
    svc.close()


def test_a_short_lived_signer_is_recorded_and_raises_cert_expiry(service: GatewayService, pki: DemoPki, tmp_path):
    store = service.store
    key = short_lived_key(pki, 10)
    fingerprint = key.certificate.fingerprint(hashes.SHA256()).hex()
    service.submit("sys-a", sign_package(edoc(A, (B,)), key))
    service.submit("sys-a", edoc(A, (B,)))  # unsigned: counted in the share, no certificate
    [row] = store.certificates.list()
    assert (row.organ_id, row.fingerprint, row.serial) == (A, fingerprint, f"{key.certificate.serial_number:x}")
    assert row.not_after == key.certificate.not_valid_after_utc and row.der == key.certificate.public_bytes(
        Encoding.DER
    )
    first_seen = row.first_seen_at
    service.submit("sys-a", sign_package(edoc(A, (B,)), key))  # seen again: one row, first_seen kept
    [again] = store.certificates.list()
    assert again.first_seen_at == first_seen

    settings = Settings(
        trust_store=pki.trust, crl_files=pki.crls, cert_expiry_days=30, alert_rules=("cert_expiry", "cert_revoked")
    )
    watch = CertWatch.from_settings(store, settings)
    [status] = watch.certificates(days=30)
    assert (status.days_left, status.revocation, status.renewed) == (9, "good", False)
    assert watch.certificates(days=5) == []
    now = datetime.now(UTC)
    [share] = watch.signed_shares(now - timedelta(days=1), now + timedelta(minutes=1))
    assert (share.organ_id, share.documents, share.valid, share.percent) == (A, 3, 2, 66.67)

    hook, inbox = Webhook(), Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        alerts = Alerts.from_settings(
            store, settings, mail=SmtpTransport("127.0.0.1", port), webhook=WebhookPoster(hook.url)
        )
        result = alerts.run_round("t")
        assert (result.raised, result.notified) == (1, 1)
        [alert] = hook.posts[0]["alerts"]
        assert alert["rule"] == "cert_expiry" and alert["organ_id"] == A and "còn 9 ngày" in alert["reason"]
        [open_alert] = store.alerts.open_alerts()
        assert open_alert.subject_key == f"cert:{A}:{fingerprint}" and open_alert.state_key == "expiring"
        [mail] = inbox.to("vanthu@tayninh.gov.vn")
        assert "Chứng thư số sắp hết hạn" in mail.get_body().get_content()  # type: ignore[union-attr]
        assert alerts.run_round("t").raised == 0 and len(hook.posts) == 1

        renewed = short_lived_key(pki, 400)  # the agency renews: the old certificate's alert resolves
        service.submit("sys-a", sign_package(edoc(A, (B,)), renewed))
        result = alerts.run_round("t")
        assert (result.resolved, result.raised) == (1, 0) and store.alerts.open_alerts() == []
    finally:
        smtp.stop()
        hook.close()


def test_a_revoked_certificate_is_found_by_todays_crl(service: GatewayService, pki: DemoPki):
    store = service.store
    revoked = x509.load_pem_x509_certificate(pki.revoked.cert.read_bytes())
    good = x509.load_pem_x509_certificate(pki.agencies[A].cert.read_bytes())
    now = datetime.now(UTC)
    with store._db.write() as conn:  # as if both were seen before the revocation
        for cert in (revoked, good):
            record_signer(
                conn,
                SignerCertificate(
                    organ_id=A,
                    fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
                    subject=cert.subject.rfc4514_string(),
                    issuer=cert.issuer.rfc4514_string(),
                    serial=f"{cert.serial_number:x}",
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    first_seen_at=now - timedelta(days=2),
                    last_seen_at=now - timedelta(days=2),
                    der=cert.public_bytes(Encoding.DER),
                ),
            )
    settings = Settings(trust_store=pki.trust, crl_files=pki.crls, alert_rules=("cert_revoked",))
    by_serial = {s.cert.serial: s for s in CertWatch.from_settings(store, settings).certificates()}
    assert by_serial[f"{revoked.serial_number:x}"].revocation == "revoked"
    assert by_serial[f"{good.serial_number:x}"].revocation == "good"
    no_crls = Settings(trust_store=pki.trust)
    assert {s.revocation for s in CertWatch.from_settings(store, no_crls).certificates()} == {"unknown"}
    items = Alerts.from_settings(store, settings).items(now)
    assert [k for k in items] == [("cert_revoked", f"cert:{A}:{revoked.fingerprint(hashes.SHA256()).hex()}", "revoked")]


def test_contact_email_in_the_registry_format(service: GatewayService):
    registry = service.registry
    registry.import_records([{"organ_id": B, "name": "Văn phòng Chính phủ", "contact_email": "a@vpcp.gov.vn; b@x.vn"}])
    assert registry.agency(B).contact_email == "a@vpcp.gov.vn, b@x.vn"
    assert "a@vpcp.gov.vn, b@x.vn" in registry.export("csv")
    with pytest.raises(RegistryImportError) as info:
        registry.import_records([{"organ_id": B, "name": "x", "contact_email": "not an address"}])
    assert info.value.detail["problems"][0]["field"] == "contact_email"
    assert registry.set_agency_policy(B, contact_email="").contact_email is None
    assert registry.agency(A).contact_email == "vanthu@tayninh.gov.vn"
