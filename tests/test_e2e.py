"""End to end: the real gateway (gunicorn, deploy/gunicorn.conf.py, 2 workers) with real zeep clients,
on SQLite and on PostgreSQL (issue 3 "Show")."""

from __future__ import annotations

import dataclasses
import http.client
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from gatewayproc import free_port, gateway_env, served
from lxml import etree
from zeep.exceptions import Fault

from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package, status_for
from gateway.edxml import Organization, StatusCode, read_bytes, render
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B, C = "000.00.01.H53", "000.00.00.G22", "000.00.00.H53"
ADMIN_TOKEN = secrets.token_urlsafe(24)
AGENCIES = f"""organ_id,name,signature_policy
{A},Văn phòng UBND tỉnh Tây Ninh,require
{B},Văn phòng Chính phủ,verify-if-present
{C},UBND tỉnh Tây Ninh,verify-if-present
"""


@dataclass
class Gateway:
    url: str
    settings: Settings
    secrets: dict[str, str]
    log: Path
    clients: list[GatewayClient] = dataclasses.field(default_factory=list)

    def client(self, system: str, secret: str | None = None) -> GatewayClient:
        client = GatewayClient(self.url + "/soap", system, secret or self.secrets[system])
        self.clients.append(client)
        return client

    def count(self, table: str) -> int:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        finally:
            engine.dispose()

    def stored(self) -> tuple[int, int, int]:
        return self.count("documents"), self.count("deliveries"), self.count("status_history")


@pytest.fixture
def gateway(tmp_path, database_url, pki) -> Iterator[Gateway]:
    env = gateway_env(tmp_path, database_url, pki, max_package_bytes=2 * 1024 * 1024, ADMIN_TOKEN=ADMIN_TOKEN)
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    (tmp_path / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    registry.import_file(tmp_path / "agencies.csv")
    creds = {
        "SA": registry.add_system("SA", [A]),
        "SB": registry.add_system("SB", [B]),
        "SC": registry.add_system("SC", [C]),
    }
    log = tmp_path / "gunicorn.log"
    gw = Gateway(f"http://{settings.bind}", settings, creds, log)
    try:
        with served(settings, env, log):
            yield gw
    finally:
        for client in gw.clients:
            client.close()


def _package(pki, *, number: str = "125", to=(B, C), sender: str = A, sign: bool = True) -> tuple[bytes, object]:
    base = demo_package()
    h = base.message_header
    h = dataclasses.replace(
        h,
        from_=Organization(organ_id=sender, organ_name="Văn phòng UBND tỉnh Tây Ninh"),
        to=tuple(Organization(organ_id=o, organ_name=o) for o in to),
        document_id=f"{sender},2026/11/28,{number}/VP-HCTC",
        code=dataclasses.replace(h.code, code_number=number),
    )
    pkg = dataclasses.replace(base, message_header=h)
    data = render(pkg)
    if sign:
        cred = pki.agencies[sender]
        data = sign_package(data, SigningKey.from_files(cred.key, cred.cert, pki.chain))
    return data, pkg


def _fault_code(exc: Fault) -> str:
    return exc.message.split(":", 1)[0]


def test_send_fetch_acknowledge_and_status_history(gateway, pki):
    data, pkg = _package(pki)
    sa_client, sb, sc = gateway.client("SA"), gateway.client("SB"), gateway.client("SC")
    receipt = sa_client.send_edoc(data)
    assert receipt.duplicate is False
    assert receipt.documentId == pkg.document_id

    items = sb.pending(B)
    assert [i.documentId for i in items] == [pkg.document_id]
    assert sb.get_edoc(items[0].deliveryId) == data  # byte-identical
    assert sb.acknowledge(items[0].deliveryId, "done") is True
    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.DONE):
        sb.send_status(render(status_for(pkg, B, code)))
    assert sb.pending(B) == []

    view = sa_client.status_history(document_id=pkg.document_id)
    rows = {r.organId: r for r in view.recipient}
    assert rows[B].state == "delivered"
    assert [s.statusCode for s in rows[B].status] == ["01", "03", "06"]
    assert rows[C].state == "queued"  # C has not fetched
    assert not rows[C].status
    # and A receives the statuses in its own mailbox
    assert len(sa_client.pending(A, kind="status")) == 3
    assert len(sc.pending(C)) == 1
    assert sorted(a.organId for a in sa_client.agencies()) == sorted([A, B, C])


def test_idempotent_intake_and_duplicates(gateway, pki):
    data, _ = _package(pki, number="200")
    client = gateway.client("SA")
    first = client.send_edoc(data)
    before = gateway.stored()
    again = client.send_edoc(data)
    assert again.duplicate is True
    assert (again.docId, again.sha256, again.receivedAt) == (first.docId, first.sha256, first.receivedAt)
    assert gateway.stored() == before

    other, _ = _package(pki, number="200", to=(B,))  # same key (sender, DocumentId, type), other bytes
    with pytest.raises(Fault) as err:
        client.send_edoc(other)
    assert _fault_code(err.value) == "EDXML.DUPLICATE"
    assert gateway.stored() == before


def test_retry_after_client_side_timeout_creates_nothing_new(gateway, pki):
    data, _ = _package(pki, number="300")
    client = gateway.client("SA")
    # Build the exact request zeep would send, post it raw, and hang up without reading the answer.
    node = client._client.create_message(client.service, "SendEdoc", edxmlPackage=data)
    body = etree.tostring(node, xml_declaration=True, encoding="UTF-8")
    conn = http.client.HTTPConnection("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=30)
    conn.request("POST", "/soap", body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    conn.sock.shutdown(socket.SHUT_WR)
    conn.close()  # the client "timed out"
    deadline = time.monotonic() + 30
    while gateway.count("documents") == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.count("documents") == 1
    retry = client.send_edoc(data)  # a fresh token: a new request, same package
    assert retry.duplicate is True
    assert gateway.stored()[0] == 1


def _refused(gateway, fn) -> str:
    before = gateway.stored()
    with pytest.raises(Fault) as err:
        fn()
    assert gateway.stored() == before  # nothing stored
    return _fault_code(err.value)


def test_refusals_store_nothing(gateway, pki):
    sa_client, sb = gateway.client("SA"), gateway.client("SB")
    unknown, _ = _package(pki, number="401", to=("000.00.00.H99",))
    assert _refused(gateway, lambda: sa_client.send_edoc(unknown)) == "ROUTE.UNKNOWN_RECIPIENT"
    not_mine, _ = _package(pki, number="402")
    assert _refused(gateway, lambda: sb.send_edoc(not_mine)) == "ACCESS.DENIED"
    good, _ = _package(pki, number="403")
    tampered = good.replace("thử nghiệm".encode(), b"thu nghiem", 1)
    assert tampered != good
    assert _refused(gateway, lambda: sa_client.send_edoc(tampered)) == "EDXML.SIGNATURE"
    unsigned, _ = _package(pki, number="404", sign=False)  # A's policy is "require"
    assert _refused(gateway, lambda: sa_client.send_edoc(unsigned)) == "EDXML.SIGNATURE"
    schema_bad = good.replace(b"<edXML:Subject>", b"<edXML:Subjekt>", 1).replace(
        b"</edXML:Subject>", b"</edXML:Subjekt>", 1
    )
    assert _refused(gateway, lambda: sa_client.send_edoc(schema_bad)) in ("EDXML.SCHEMA", "EDXML.SIGNATURE")
    big = good + b" " * (3 * 1024 * 1024)
    assert _refused(gateway, lambda: sa_client.send_edoc(big)) == "SIZE.LIMIT"
    wrong = gateway.client("SA", "not-the-secret")
    assert _refused(gateway, lambda: wrong.send_edoc(good)) == "AUTH.DENIED"
    assert _refused(gateway, lambda: sa_client.pending(B)) == "ACCESS.DENIED"  # reading B's mailbox as A


def test_unsigned_schema_error_is_refused_as_schema(gateway, pki):
    sb = gateway.client("SB")
    data, _ = _package(pki, number="405", sender=B, to=(C,), sign=False)
    bad = data.replace(b"<edXML:Subject>", b"<edXML:Subjekt>", 1).replace(b"</edXML:Subject>", b"</edXML:Subjekt>", 1)
    assert _refused(gateway, lambda: sb.send_edoc(bad)) == "EDXML.SCHEMA"


def test_doctype_and_replay_are_refused(gateway, pki):
    client = gateway.client("SA")
    data, _ = _package(pki, number="406")
    node = client._client.create_message(client.service, "SendEdoc", edxmlPackage=data)
    body = etree.tostring(node, xml_declaration=True, encoding="UTF-8")
    port = int(gateway.url.rsplit(":", 1)[1])

    def post(payload: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/soap", body=payload, headers={"Content-Type": "text/xml; charset=utf-8"})
        resp = conn.getresponse()
        out = (resp.status, resp.read())
        conn.close()
        return out

    status, answer = post(body)
    assert status == 200
    before = gateway.stored()
    status, answer = post(body)  # the same UsernameToken (nonce, created) again
    assert status == 500
    assert b"AUTH.REPLAY" in answer
    doctype = body.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1)
    status, answer = post(doctype)
    assert b"EDXML.FORBIDDEN" in answer
    assert b"<html" not in answer.lower()
    assert gateway.stored() == before


def test_recall_13_and_answer_15(gateway, pki):
    data, pkg = _package(pki, number="500", to=(B,))
    sa_client, sb = gateway.client("SA"), gateway.client("SB")
    sa_client.send_edoc(data)
    recall = status_for(pkg, A, StatusCode.RECALL_REQUESTED, "gửi nhầm")
    recall = dataclasses.replace(recall, response_for=dataclasses.replace(recall.response_for, organ_id=B))
    cred = pki.agencies[A]  # A's policy is "require": its statuses are signed too
    sa_client.send_status(sign_package(render(recall), SigningKey.from_files(cred.key, cred.cert, pki.chain)))
    incoming = sb.pending(B, kind="status")
    assert len(incoming) == 1
    assert read_bytes(sb.get_edoc(incoming[0].deliveryId)).status_code is StatusCode.RECALL_REQUESTED
    sb.send_status(render(status_for(pkg, B, StatusCode.CHANGE_ACCEPTED)))
    codes = [s.statusCode for r in sa_client.status_history(document_id=pkg.document_id).recipient for s in r.status]
    assert codes == ["13", "15"]


def _rest_post(gateway, system: str, body: bytes, *, secret: str | None = None) -> tuple[int, dict]:
    import hashlib
    import hmac
    import json as _json

    ts = str(int(time.time()))
    key = (secret or gateway.secrets[system]).encode()
    sig = "sha256=" + hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    port = int(gateway.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/rest/v1/packages",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Edoc-System": system,
            "X-Edoc-Timestamp": ts,
            "X-Edoc-Signature": sig,
        },
    )
    resp = conn.getresponse()
    out = resp.status, _json.loads(resp.read())
    conn.close()
    return out


def test_json_edge_takes_status_updates_from_rest_peers(gateway, pki):
    import json as _json

    from gateway.edxml import to_json

    data, pkg = _package(pki, number="600", to=(B,))
    gateway.client("SA").send_edoc(data)
    status = status_for(pkg, B, StatusCode.ACCEPTED)
    body = _json.dumps(to_json(status), ensure_ascii=False).encode()
    code, answer = _rest_post(gateway, "SB", body)
    assert code == 200, answer
    assert answer["kind"] == "status"
    assert answer["duplicate"] is False
    assert _rest_post(gateway, "SB", body)[1]["duplicate"] is True  # a replayed request creates nothing
    codes = [
        s.statusCode
        for r in gateway.client("SA").status_history(document_id=pkg.document_id).recipient
        for s in r.status
    ]
    assert codes == ["03"]
    before = gateway.stored()
    code, answer = _rest_post(gateway, "SB", body, secret="wrong-secret-wrong")
    assert (code, answer["code"]) == (401, "AUTH.DENIED")
    code, answer = _rest_post(gateway, "SA", body)  # A may not report for B
    assert (code, answer["code"]) == (403, "ACCESS.DENIED")
    code, answer = _rest_post(gateway, "SB", b"{not json")
    assert (code, answer["code"]) == (400, "EDXML.PARSE")
    assert gateway.stored() == before


def _admin(gateway, method: str, path: str, token: str = ADMIN_TOKEN) -> tuple[int, dict]:
    import json as _json

    port = int(gateway.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    out = resp.status, _json.loads(resp.read())
    conn.close()
    return out


def test_admin_api_lists_shows_and_redrives_dead_letters(gateway, pki):
    from datetime import UTC, datetime, timedelta

    from gateway.db import Store, create_engine
    from gateway.worker import run_worker

    engine = create_engine(gateway.settings)
    try:  # B is now pushed by SOAP, to an endpoint where nobody listens
        Store(engine).registry.update_agency(
            B, now=datetime.now(UTC), channel="soap", endpoint=f"http://127.0.0.1:{free_port()}/"
        )
    finally:
        engine.dispose()
    data, pkg = _package(pki, number="700", to=(B,))
    gateway.client("SA").send_edoc(data)
    no_budget = dataclasses.replace(gateway.settings, retry_limit_seconds=1)
    later = datetime.now(UTC) + timedelta(seconds=60)
    run_worker(no_budget, once=True, clock=lambda: later)  # past the 1 s budget: the first failure is final

    code, listed = _admin(gateway, "GET", "/admin/v1/deliveries?state=dead")
    assert code == 200
    dead = [d for d in listed["items"] if d["document_id"] == pkg.document_id]
    assert len(dead) == 1
    assert dead[0]["last_error"].startswith("DELIVERY.")
    delivery_id = dead[0]["delivery_id"]
    code, shown = _admin(gateway, "GET", f"/admin/v1/deliveries/{delivery_id}")
    assert code == 200
    assert [a["outcome"] for a in shown["attempt_log"]] == ["dead"]
    view = gateway.client("SA").status_history(document_id=pkg.document_id)
    assert [r.state for r in view.recipient] == ["dead"]  # the sender sees the failure

    assert _admin(gateway, "GET", "/admin/v1/deliveries", token="wrong")[0] == 401
    assert _admin(gateway, "POST", "/admin/v1/deliveries/00000000000000000000000000000000/redrive")[0] == 404
    code, answer = _admin(gateway, "POST", f"/admin/v1/deliveries/{delivery_id}/redrive")
    assert (code, answer["redriven"]) == (200, [delivery_id])
    code, shown = _admin(gateway, "GET", f"/admin/v1/deliveries/{delivery_id}")
    assert shown["state"] == "queued"
