"""Signed receipts carry the gateway's certificate chain, and the gateway publishes it (issue 8, finding 12).

A sender that trusts only the root CA must be able to check a receipt with stock tools: the real ``xmlsec1
--trusted-pem ROOT`` and the JDK's own XML-DSig with a PKIX path validation (``tests/jdk/VerifyReceipt.java``).
With the leaf alone in KeyInfo both fail — the finding — and the gateway says so at start-up. The same
certificates are served at ``GET /gateway/certificate.pem`` by the real gateway under gunicorn.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from gatewayproc import gateway_env, served
from lxml import etree

from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.demo.pki import DemoPki
from gateway.edxml import render
from gateway.ns import DSIG
from gateway.services.gateway import GatewayService
from gateway.services.receipt import verify_receipt
from gateway.services.registry import Registry
from gateway.xmlcheck.trust import TrustStore

XMLSEC1 = shutil.which("xmlsec1")
JAVA = shutil.which("java")
VERIFY_JAVA = Path(__file__).parent / "jdk" / "VerifyReceipt.java"
SENDER = "000.00.01.H53"
AGENCIES = [
    {"organ_id": "000.00.00.H53", "name": "UBND tỉnh Tây Ninh"},
    {"organ_id": SENDER, "name": "Văn phòng UBND tỉnh Tây Ninh"},
    {"organ_id": "000.01.01.H53", "name": "Ban Tiếp Công dân"},
    {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ"},
]


def _xmlsec1(receipt: Path, root: Path) -> subprocess.CompletedProcess[str]:
    """``xmlsec1 --verify`` as a sender would run it: only the root CA trusted, the chain from KeyInfo."""
    assert XMLSEC1, "xmlsec1 is required (apt-get install xmlsec1)"
    return subprocess.run(
        [
            XMLSEC1,
            "--verify",
            "--enabled-reference-uris",
            "empty",
            "--enabled-key-data",
            "x509",
            "--node-xpath",
            f"/*[local-name()='Receipt']/*[local-name()='Signature' and namespace-uri()='{DSIG}']",
            "--trusted-pem",
            str(root),
            str(receipt),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _jdk(receipt: Path, root: Path) -> subprocess.CompletedProcess[str]:
    """The JDK's XML-DSig verifier with a PKIX path to the one trusted root (single-file source launch)."""
    assert JAVA, "a JDK is required (apt-get install default-jdk-headless)"
    return subprocess.run(
        [JAVA, str(VERIFY_JAVA), str(receipt), str(root)], capture_output=True, text=True, timeout=180, check=False
    )


def _keyinfo(receipt: bytes) -> list[x509.Certificate]:
    root = etree.fromstring(receipt)
    nodes = root.iterfind(f"{{{DSIG}}}Signature/{{{DSIG}}}KeyInfo/{{{DSIG}}}X509Data/{{{DSIG}}}X509Certificate")
    return [x509.load_der_x509_certificate(base64.b64decode("".join(n.text.split()))) for n in nodes]


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _service(tmp_path: Path, pki: DemoPki, gateway_cert: Path) -> GatewayService:
    settings = Settings(
        data_dir=tmp_path,
        secret_key="test-secret-key-0123456789",
        gateway_key=pki.gateway_key,
        gateway_cert=gateway_cert,
        trust_store=pki.trust,
        crl_files=tuple(pki.crls),
    )
    upgrade(settings)
    service = GatewayService.from_settings(settings)
    service.registry.import_records(AGENCIES)
    service.registry.add_system("sys-a", [SENDER])
    return service


def test_receipts_verify_with_xmlsec1_and_the_jdk_trusting_only_the_root(tmp_path, pki, caplog):
    with caplog.at_level(logging.WARNING), _service(tmp_path, pki, pki.gateway_cert) as service:
        receipt = service.submit("sys-a", render(demo_package())).signed_receipt
    assert not [r for r in caplog.records if "gateway_cert" in r.getMessage()]  # a complete chain: no warning
    leaf, *chain = _keyinfo(receipt)
    assert [leaf, *chain] == _certs(pki.gateway_cert) == [*_certs(pki.gateway_cert)[:1], *_certs(pki.chain)]
    assert chain[0].issuer != chain[0].subject  # an intermediate, not the root: the verifier brings that

    good = tmp_path / "receipt.xml"
    good.write_bytes(receipt)
    result = _xmlsec1(good, pki.trust)
    assert result.returncode == 0 and "OK" in result.stdout + result.stderr, result.stderr
    jdk = _jdk(good, pki.trust)
    assert jdk.returncode == 0 and jdk.stdout.startswith("OK CN=edoc-gateway"), jdk.stdout + jdk.stderr
    assert verify_receipt(receipt, TrustStore.from_files(pki.trust)).signer_subject.startswith("CN=edoc-gateway")

    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(receipt.replace(b"<DocumentId>", b"<DocumentId>X", 1))
    assert _xmlsec1(tampered, pki.trust).returncode != 0
    assert _jdk(tampered, pki.trust).returncode != 0
    # a stranger's root is not enough, whatever the receipt carries
    assert _xmlsec1(good, pki.rogue_ca_cert).returncode != 0


def test_a_leaf_only_gateway_cert_is_reported_and_fails_root_only_verification(tmp_path, pki, caplog):
    """What the finding saw: the leaf alone in KeyInfo. Now the start-up log names the missing link."""
    leaf_only = tmp_path / "gateway-leaf.pem"
    leaf_only.write_bytes(
        pki.gateway_cert.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    )
    with caplog.at_level(logging.WARNING), _service(tmp_path, pki, leaf_only) as service:
        receipt = service.submit("sys-a", render(demo_package())).signed_receipt
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "gateway_cert" in r.getMessage()
    ]
    assert len(warnings) == 1 and "intermediate CA certificates" in warnings[0], warnings
    assert _certs(pki.chain)[0].subject.rfc4514_string() in warnings[0]  # names the issuer it lacks
    assert len(_keyinfo(receipt)) == 1
    path = tmp_path / "receipt.xml"
    path.write_bytes(receipt)
    assert _xmlsec1(path, pki.trust).returncode != 0
    assert "FAIL" in _jdk(path, pki.trust).stdout


def test_the_gateway_publishes_the_certificates_its_receipts_carry(tmp_path, pki):
    data_dir = tmp_path / "gw"
    data_dir.mkdir()
    env = gateway_env(data_dir, f"sqlite:///{data_dir / 'gateway.db'}", pki, max_package_bytes=1024 * 1024)
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(AGENCIES)
        secret = registry.add_system("sys-a", [SENDER])
    url = f"http://{settings.bind}"
    with served(settings, env, data_dir / "gunicorn.log"):
        with urllib.request.urlopen(url + "/gateway/certificate.pem", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/pem-certificate-chain"
            etag = resp.headers["ETag"]
            published = resp.read()
        client = GatewayClient(url + "/soap", "sys-a", secret)
        try:
            receipt = client.send_edoc(render(demo_package())).signedReceipt
        finally:
            client.close()
        revalidate = urllib.request.Request(url + "/gateway/certificate.pem", headers={"If-None-Match": etag})
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(revalidate, timeout=10)
        not_modified.value.close()
        assert not_modified.value.code == 304

    certs = x509.load_pem_x509_certificates(published)
    assert certs == _keyinfo(receipt)  # exactly what the receipts carry: the gateway certificate, then the chain
    assert certs[0].subject.rfc4514_string().startswith("CN=edoc-gateway")
    assert certs[1] == _certs(pki.chain)[0]
    assert certs[0].fingerprint(hashes.SHA256()) == _certs(pki.gateway_cert)[0].fingerprint(hashes.SHA256())
    wire = tmp_path / "receipt.xml"
    wire.write_bytes(receipt)
    result = _xmlsec1(wire, pki.trust)
    assert result.returncode == 0, result.stderr
