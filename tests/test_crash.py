"""kill -9 of the whole gateway (gunicorn master and workers) mid-intake (issue 4): every package that was ever
acknowledged with a receipt is stored once and delivered once to the idempotent reference receiver, the packages
whose requests were cut off are taken again on retry (as new or as duplicates), and the database holds no
half-stored document. On SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree
from soap_receiver import Receiver, free_port, running_receiver
from test_e2e import A, B, _package

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.services.registry import Registry
from gateway.web.launch import gunicorn_argv
from gateway.worker import run_worker

PACKAGES = 60
CLIENTS = 4
KILL_AFTER = 20  # receipts back before the kill
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
NONCE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
#: Errors of a request cut off by the kill (or refused while the gateway is down): outcome unknown.
CUT_OFF = (OSError, http.client.HTTPException)


def _envelope(system: str, secret: str, package: bytes) -> bytes:
    """A SendEdoc request with a fresh WS-Security UsernameToken (PasswordDigest): every request is new."""
    nonce = secrets.token_bytes(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{system}</wsse:Username>"
        f'<wsse:Password Type="{TOKEN}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{NONCE}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></soap:Header>"
        '<soap:Body><tns:SendEdoc xmlns:tns="urn:edoc-gateway:soap:1"><tns:edxmlPackage>'
        f"{base64.b64encode(package).decode()}"
        "</tns:edxmlPackage></tns:SendEdoc></soap:Body></soap:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    doc_id: str | None
    duplicate: bool | None
    body: bytes


def _send(port: int, secret: str, package: bytes) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST", "/soap", body=_envelope("SA", secret, package), headers={"Content-Type": "text/xml; charset=utf-8"}
        )
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        return Answer(resp.status, None, None, body)
    root = etree.fromstring(body)
    doc_id = root.findtext(".//{*}docId")
    return Answer(resp.status, doc_id, root.findtext(".//{*}duplicate") == "true", body)


@dataclass
class Served:
    """The gateway under gunicorn, in its own session (process group) so that it can be killed as a whole."""

    settings: Settings
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.settings.bind.rsplit(":", 1)[1])

    def start(self) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("EDOC_", "GUNICORN_"))}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                gunicorn_argv(self.settings),
                env={**clean, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, self.log.read_text(errors="replace")
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL to the master and every worker at once (no graceful anything)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def receiver(tmp_path) -> Iterator[Receiver]:
    with running_receiver(tmp_path / "receiver", workers=2) as rcv:
        yield rcv


@pytest.fixture
def served(tmp_path, database_url, pki, receiver) -> Iterator[tuple[Served, str]]:
    """Gateway settings on a fresh database: A (verify-if-present) sends through system SA, B is pushed by SOAP to
    the reference receiver. Not started: the test starts it (and kills it)."""
    env = {
        "EDOC_GATEWAY_DATA_DIR": str(tmp_path),
        "EDOC_GATEWAY_DATABASE_URL": database_url,
        "EDOC_GATEWAY_BIND": f"127.0.0.1:{free_port()}",
        "EDOC_GATEWAY_WORKERS": "2",
        # CLIENTS concurrent requests of one system may all land on one worker: the per-system bound (tested in
        # test_slow_clients.py) must not refuse them here, where the subject is a kill -9 mid-intake.
        "EDOC_GATEWAY_WORKER_THREADS": str(CLIENTS + 1),
        "EDOC_GATEWAY_MAX_REQUESTS_PER_SYSTEM": str(CLIENTS),
        "EDOC_GATEWAY_LOG_LEVEL": "WARNING",
        "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
        "EDOC_GATEWAY_GATEWAY_KEY": str(pki.gateway_key),
        "EDOC_GATEWAY_GATEWAY_CERT": str(pki.gateway_cert),
        "EDOC_GATEWAY_TRUST_STORE": str(pki.trust),
        "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in pki.crls),
    }
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    registry.import_records(
        [
            {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "verify-if-present"},
            {"organ_id": B, "name": "Văn phòng Chính phủ", "channel": "soap", "endpoint": receiver.url},
        ]
    )
    secret = registry.add_system("SA", [A])
    gw = Served(settings, env, tmp_path / "gunicorn.log")
    try:
        yield gw, secret
    finally:
        gw.stop()


@dataclass
class Outcomes:
    """What the clients saw, per package index."""

    receipts: dict[int, Answer] = field(default_factory=dict)
    cut_off: dict[int, str] = field(default_factory=dict)
    refused: dict[int, Answer] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def in_flight(self) -> int:
        """Requests cut off after they reached the gateway (not merely refused a connection)."""
        return sum(1 for name in self.cut_off.values() if name != "ConnectionRefusedError")


def _send_all(
    port: int, secret: str, packages: Sequence[bytes], indexes: Sequence[int], *, kill_after: int | None = None
) -> tuple[Outcomes, threading.Event]:
    """Send the packages from CLIENTS threads, one request per package; ``kill_after``: set the returned event once
    that many receipts are back (the caller kills the gateway then, with the other requests in flight)."""
    out = Outcomes()
    enough = threading.Event()
    queue = iter(indexes)

    def client() -> None:
        while True:
            with out.lock:
                i = next(queue, None)
            if i is None:
                return
            try:
                answer = _send(port, secret, packages[i])
            except CUT_OFF as exc:
                with out.lock:
                    out.cut_off[i] = type(exc).__name__
                continue
            with out.lock:
                if answer.status == 200 and answer.doc_id:
                    out.receipts[i] = answer
                    if kill_after is not None and len(out.receipts) >= kill_after:
                        enough.set()
                else:
                    out.refused[i] = answer

    out.threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(CLIENTS)]
    for t in out.threads:
        t.start()
    return out, enough


def _join(out: Outcomes) -> None:
    for t in out.threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a client thread hung"


def _scalar(conn: sa.Connection, sql: str) -> int:
    return conn.execute(sa.text(sql)).scalar_one()


def _integrity(engine: sa.Engine) -> dict[str, int]:
    """Counts that must all be zero: no half-stored document, whatever moment the kill hit."""
    with engine.connect() as conn:
        return {
            "documents without a delivery": _scalar(
                conn,
                "SELECT count(*) FROM documents d "
                "WHERE NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.doc_id = d.doc_id)",
            ),
            "documents with other than one delivery": _scalar(
                conn,
                "SELECT count(*) FROM (SELECT d.doc_id FROM documents d LEFT JOIN deliveries x ON x.doc_id = d.doc_id "
                "GROUP BY d.doc_id HAVING count(x.delivery_id) <> 1) AS bad",
            ),
            "pending deliveries without an outbox row": _scalar(
                conn,
                "SELECT count(*) FROM deliveries x WHERE x.state NOT IN ('delivered', 'dead') "
                "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.delivery_id = x.delivery_id)",
            ),
            "outbox rows of settled deliveries": _scalar(
                conn,
                "SELECT count(*) FROM outbox o JOIN deliveries x ON x.delivery_id = o.delivery_id "
                "WHERE x.state IN ('delivered', 'dead')",
            ),
            "DocumentIds stored more than once": _scalar(
                conn,
                "SELECT count(*) FROM (SELECT sender, document_id FROM documents "
                "GROUP BY sender, document_id HAVING count(*) > 1) AS dup",
            ),
        }


def _clean(engine: sa.Engine) -> None:
    problems = {k: v for k, v in _integrity(engine).items() if v}
    assert not problems, problems


def test_kill_9_mid_intake_every_receipt_is_stored_and_delivered_exactly_once(served, receiver, pki):
    gw, secret = served
    packages: list[bytes] = []
    document_ids: list[str] = []
    for n in range(PACKAGES):
        data, pkg = _package(pki, number=f"9{n:03d}", to=(B,), sign=False)
        packages.append(data)
        document_ids.append(pkg.document_id)

    # 1. Intake, killed with -9 once KILL_AFTER receipts are back; the other clients are mid-request.
    gw.start()
    first, enough = _send_all(gw.port, secret, packages, range(PACKAGES), kill_after=KILL_AFTER)
    try:
        assert enough.wait(60), f"only {len(first.receipts)} receipts came back: {gw.log.read_text(errors='replace')}"
    finally:
        if gw.proc is not None:
            gw.kill9()
    _join(first)
    assert not first.refused, {i: a.body[:300] for i, a in first.refused.items()}
    assert len(first.receipts) >= KILL_AFTER
    assert first.in_flight, f"no request was cut off in flight: {first.cut_off}"
    assert all(a.duplicate is False for a in first.receipts.values())

    engine = sa.create_engine(gw.settings.effective_database_url)
    try:
        _clean(engine)  # straight after the crash, before anything recovers
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT document_id, doc_id FROM documents")).all())
        for i, answer in first.receipts.items():  # every receipt survived the crash, under its docId
            assert stored.get(document_ids[i]) == answer.doc_id
        committed_unacknowledged = sum(1 for i in first.cut_off if document_ids[i] in stored)

        # 2. Restart on the same database; the clients retry everything that got no receipt.
        gw.start()
        missing = sorted(set(range(PACKAGES)) - set(first.receipts))
        retry, _ = _send_all(gw.port, secret, packages, missing)
        _join(retry)
        assert not retry.cut_off, retry.cut_off
        assert not retry.refused, {i: a.body[:300] for i, a in retry.refused.items()}
        assert sorted(retry.receipts) == missing
        for i, answer in retry.receipts.items():
            # stored before the crash → the original receipt again (duplicate); else stored now
            assert answer.duplicate is (document_ids[i] in stored), i
            if answer.duplicate:
                assert answer.doc_id == stored[document_ids[i]]
        _clean(engine)

        # 3. Deliver: one-pass workers (in-process) until nothing is left to push.
        settings = dataclasses.replace(
            gw.settings,
            worker_batch=100,
            retry_base_seconds=0.05,
            retry_max_seconds=0.1,
            adapter_connect_timeout=2.0,
            adapter_read_timeout=10.0,
            worker_lease_seconds=30,
        )
        deadline = time.monotonic() + 30
        while True:
            run_worker(settings, once=True)
            with engine.connect() as conn:
                left = _scalar(conn, "SELECT count(*) FROM deliveries WHERE state <> 'delivered'")
            if left == 0:
                break
            assert time.monotonic() < deadline, f"{left} deliveries still not delivered"
            time.sleep(0.1)

        # 4. Exactly once, end to end.
        _clean(engine)
        with engine.connect() as conn:
            docs = conn.execute(sa.text("SELECT doc_id, document_id, sha256 FROM documents")).all()
            rows = conn.execute(sa.text("SELECT delivery_id, doc_id, recipient, state FROM deliveries")).all()
            assert _scalar(conn, "SELECT count(*) FROM outbox") == 0
            assert _scalar(conn, "SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'") == PACKAGES
        by_document = Counter(d.document_id for d in docs)
        assert by_document == Counter(document_ids), "a package is missing or stored twice"
        doc_of = {d.document_id: d.doc_id for d in docs}
        for i, answer in {**first.receipts, **retry.receipts}.items():
            assert doc_of[document_ids[i]] == answer.doc_id
        assert {d.document_id: d.sha256 for d in docs} == {
            document_ids[i]: hashlib.sha256(packages[i]).hexdigest() for i in range(PACKAGES)
        }
        assert len(rows) == PACKAGES
        assert {(r.recipient, r.state) for r in rows} == {(B, "delivered")}

        written = Counter(w["messageId"] for w in receiver.store().written())
        assert set(written) == {r.delivery_id for r in rows}, "the receiver did not get every delivery"
        assert set(written.values()) == {1}, f"written twice: {[m for m, c in written.items() if c > 1]}"
        duplicates = Counter(w["messageId"] for w in receiver.store().duplicates())
        assert set(duplicates) <= set(written)
        raw_of = {document_ids[i]: packages[i] for i in range(PACKAGES)}
        document_of = {d.doc_id: d.document_id for d in docs}
        for r in rows:
            assert receiver.store().path(r.delivery_id).read_bytes() == raw_of[document_of[r.doc_id]]
        print(
            f"receipts before kill {len(first.receipts)}, cut off {len(first.cut_off)} "
            f"({Counter(first.cut_off.values())}), committed without receipt {committed_unacknowledged}, "
            f"retried {len(missing)} ({sum(1 for a in retry.receipts.values() if a.duplicate)} duplicates), "
            f"receiver duplicates {sum(duplicates.values())}"
        )
    finally:
        engine.dispose()
