"""Rate limits and intake limits on a real gateway (gunicorn, 2 workers), SQLite and PostgreSQL (issue 10).

Repeated bad HTTP Basic logins get a ``RATE.LIMITED`` Fault with ``Retry-After`` — quickly: the refusal no longer
runs scrypt (the per-attempt times are printed: ``pytest -s``) — while the legitimate system still works, the
audit trail stays bounded, and a package with 2,000 attachments is refused the same way over SOAP and REST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import statistics
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from gatewayproc import gateway_env, served
from lxml import etree
from test_services import edoc

from gateway import ns
from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.edxml import add_files, read_bytes, render, to_json
from gateway.services.registry import Registry

A, B = "000.00.01.H53", "000.00.00.G22"
K = 5


class Served:
    def __init__(self, settings: Settings, secrets: dict[str, str]) -> None:
        self.settings = settings
        self.secrets = secrets
        self.port = int(settings.bind.rsplit(":", 1)[1])

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def count(self, sql: str) -> int:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql)).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
def gateway(tmp_path, database_url, pki) -> Iterator[Served]:
    env = gateway_env(
        tmp_path,
        database_url,
        pki,
        max_package_bytes=4 * 1024 * 1024,
        BASIC_AUTH_REQUIRES_TLS="false",
        AUTH_FAILURES_PER_ADDRESS=str(K),
    )
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    registry.import_records([{"organ_id": o, "name": o, "signature_policy": "off"} for o in (A, B)])
    secrets = {"SA": registry.add_system("SA", [A]), "SB": registry.add_system("SB", [B])}
    with served(settings, env, tmp_path / "gunicorn.log"):
        yield Served(settings, secrets)


def _pending_envelope() -> bytes:
    """A GetPendingList request without a UsernameToken (HTTP Basic carries the credentials)."""
    client = GatewayClient("http://127.0.0.1:1/soap", "x", "x")
    try:
        node = client._client.create_message(client.service, "GetPendingList", organId=A, kind="edoc", limit=1)
    finally:
        client.close()
    for header in node.findall(f"{{{ns.SOAP11}}}Header"):
        node.remove(header)
    return etree.tostring(node, xml_declaration=True, encoding="UTF-8")


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {token}"}


def _code(body: bytes) -> str:
    return etree.fromstring(body).findtext(".//{urn:edoc-gateway:soap:1}code") or ""


def test_bad_basic_logins_are_throttled_and_the_honest_system_still_works(gateway: Served):
    envelope = _pending_envelope()
    status, _, body = gateway.post("/soap", envelope, _basic("SA", gateway.secrets["SA"]))
    assert status == 200, body  # the honest system over Basic; its password is now cached in that worker

    timings: list[tuple[float, str, dict[str, str]]] = []
    for _ in range(60):
        started = time.perf_counter()
        status, headers, body = gateway.post("/soap", envelope, _basic("SA", "guess"))
        timings.append((time.perf_counter() - started, _code(body), headers))
        assert status == 500
    codes = [code for _, code, _ in timings]
    assert codes[:K] == ["AUTH.DENIED"] * K  # the failures are counted in the database: the same in both workers
    assert set(codes[K:]) == {"RATE.LIMITED"}
    retry = [int(h["retry-after"]) for _, code, h in timings if code == "RATE.LIMITED"]
    assert all(0 < r <= 600 for r in retry)
    denied = statistics.median(t for t, code, _ in timings if code == "AUTH.DENIED")
    limited = statistics.median(t for t, code, _ in timings if code == "RATE.LIMITED")
    print(f"\nBasic refusal, served: {denied * 1000:.1f} ms with scrypt, {limited * 1000:.1f} ms when RATE.LIMITED")
    assert limited * 3 < denied, (denied, limited)

    # The honest system keeps working: a digest (cheap check) from the same address.
    client = GatewayClient(f"http://{gateway.settings.bind}/soap", "SA", gateway.secrets["SA"])
    try:
        assert client.pending(A) == []
    finally:
        client.close()
    # Bounded audit: one row per (address, claimed system, code, window), however long the flood.
    assert gateway.count("SELECT count(*) FROM audit_log WHERE action = 'auth.denied'") <= 3
    assert gateway.count("SELECT sum(count) FROM refusal_counts WHERE code = 'AUTH.DENIED'") == K


def test_two_thousand_attachments_are_refused_over_soap_and_rest(gateway: Served):
    pkg = add_files(read_bytes(edoc(A, (B,))), [(f"p{i}.txt", b"x") for i in range(2000)], zip=False)
    data = render(pkg)
    stored = "SELECT count(*) FROM documents"
    client = GatewayClient(f"http://{gateway.settings.bind}/soap", "SA", gateway.secrets["SA"])
    try:
        with pytest.raises(Exception) as fault:
            client.send_edoc(data)
    finally:
        client.close()
    assert str(fault.value).startswith("LIMIT.ATTACHMENTS"), fault.value
    body = json.dumps(to_json(pkg), ensure_ascii=False).encode()
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(gateway.secrets["SA"].encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Edoc-System": "SA",
        "X-Edoc-Timestamp": ts,
        "X-Edoc-Signature": sig,
    }
    status, _, answer = gateway.post("/rest/v1/packages", body, headers)
    assert status == 413 and json.loads(answer)["code"] == "LIMIT.ATTACHMENTS"
    assert gateway.count(stored) == 0
    assert gateway.count("SELECT count(*) FROM deliveries") == 0
