"""Alert rounds on the real databases (SQLite and PostgreSQL) with a real SMTP server (aiosmtpd) and a real HTTP
webhook receiver, both on loopback: digests and summaries arrive, a second round sends nothing, a state change
raises a new alert, acknowledgement resolves it, an SMTP outage leaves alerts un-notified until the next round,
the round lease is single, and the worker's scheduler fires."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gateway.config import Settings
from gateway.db import AgencyRecord, AuditEntry, DocumentRecord, NewDocument, Store, create_engine
from gateway.services.alerts import Alerts
from gateway.worker import run_worker
from gateway.worker.notify import SmtpTransport, WebhookPoster

T0 = datetime(2026, 3, 2, 2, 0, 0, tzinfo=UTC)  # a Monday, 09:00 in Hà Nội
SENDER, R, QUIET = "000.00.01.H53", "000.00.00.G22", "000.01.01.H53"
CONTACT = "vanthu@vpcp.gov.vn"
OPERATOR = "trucca@stttt.tayninh.gov.vn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: every message received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, ...]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.envelopes.append(tuple(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class Smtp:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)

    def start(self) -> Smtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class Webhook:
    """A JSON receiver on loopback; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    s.registry.upsert_agencies(
        [
            AgencyRecord(organ_id=SENDER, name="Văn phòng UBND tỉnh Tây Ninh"),
            AgencyRecord(organ_id=R, name="Văn phòng Chính phủ", contact_email=CONTACT),
            AgencyRecord(organ_id=QUIET, name="Ban Tiếp Công dân"),
        ],
        now=T0,
    )
    yield s
    s.engine.dispose()


def add_edoc(store: Store, *recipients: str, at: datetime = T0, code: str = "123/VP-HCTC") -> dict[str, str]:
    doc_id = uuid.uuid4().hex
    return store.documents.insert_document(
        NewDocument(
            document=DocumentRecord(
                doc_id=doc_id,
                kind="edoc",
                sender=SENDER,
                document_id=f"{SENDER},2026/03/02,{doc_id[:6]}",
                sha256="00" * 32,
                size=10,
                received_at=at,
                signature_state="unsigned",
                idem_key=uuid.uuid4().hex * 2,
                code=code,
                subject="V/v báo cáo tình hình liên thông văn bản",
                promulgation_date=date(2026, 3, 2),
                meta={},
            ),
            raw=b"<edXML/>",
            recipients=tuple((r, "mailbox") for r in recipients),
            audit=AuditEntry(at=at, action="intake.accepted", doc_id=doc_id),
        )
    )


def alerts_for(store: Store, clock: Clock, *, smtp_port: int, hook: Webhook | None, **kw: Any) -> Alerts:
    settings = Settings(
        alert_operator_emails=(OPERATOR,),
        alert_rules=kw.pop("rules", ("not_taken", "late_receipt", "not_registered", "overdue")),
        **kw,
    )
    return Alerts.from_settings(
        store,
        settings,
        mail=SmtpTransport("127.0.0.1", smtp_port, sender="edoc-gateway@tayninh.gov.vn"),
        webhook=WebhookPoster(hook.url) if hook else None,
        clock=clock,
    )


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_digest_webhook_dedup_state_change_and_resolution(store: Store, smtp: Smtp, webhook: Webhook):
    clock = Clock()
    ids = add_edoc(store, R, QUIET)
    alerts = alerts_for(store, clock, smtp_port=smtp.port, hook=webhook)

    clock.set(20)  # within the 30-minute "not taken" window: nothing to say, nothing said
    r = alerts.run_round("t")
    assert (r.raised, r.notified) == (0, 0) and smtp.inbox.messages == [] and webhook.posts == []

    clock.set(47)
    r = alerts.run_round("t")
    assert (r.raised, r.notified, r.failed, r.errors) == (2, 2, 0, [])
    [digest] = smtp.inbox.to(CONTACT)
    assert digest["Subject"] == "[edoc-gateway] Văn phòng Chính phủ: 1 việc liên thông văn bản cần xử lý (1 mới)"
    text = body(digest)
    assert "123/VP-HCTC" in text and "Chưa nhận về (not taken)" in text and "chưa tải về (not fetched)" in text
    assert "47 phút (47 min)" in text and "+07" in text and "09:30:00 +07" in text  # deadline in Vietnam time
    assert QUIET not in text  # an agency's digest shows only its own items
    [summary] = smtp.inbox.to(OPERATOR)
    assert "2 cảnh báo mới" in summary["Subject"] and R in body(summary) and QUIET in body(summary)
    assert smtp.inbox.envelopes[0] in ((CONTACT,), (OPERATOR,))
    [post] = webhook.posts
    by_recipient = {a["recipient"]: a for a in post["alerts"]}
    assert set(by_recipient) == {R, QUIET} and post["count"] == 2
    a = by_recipient[R]
    assert (a["rule"], a["age_seconds"], a["delivery_id"], a["code"], a["sender"]) == (
        "not_taken",
        47 * 60,
        ids[R],
        "123/VP-HCTC",
        SENDER,
    )

    clock.set(50)  # same state: quiet
    r = alerts.run_round("t")
    assert (r.open, r.raised, r.notified) == (2, 0, 0)
    assert len(smtp.inbox.messages) == 2 and len(webhook.posts) == 1

    store.deliveries.fetch(ids[R], T0 + timedelta(minutes=52), AuditEntry(at=clock(), action="fetch"))
    clock.set(55)  # fetched, not acknowledged: a new alert for the new state, the old one resolved
    r = alerts.run_round("t")
    assert (r.raised, r.resolved, r.notified) == (1, 1, 1)
    latest = smtp.inbox.to(CONTACT)[-1]
    assert "đã tải lúc 09:52 02/03, chưa xác nhận (fetched 09:52 02/03, not acknowledged)" in body(latest)
    assert webhook.posts[-1]["count"] == 1 and webhook.posts[-1]["alerts"][0]["delivery_id"] == ids[R]

    at = T0 + timedelta(minutes=56)
    store.deliveries.acknowledge(
        ids[R], state="delivered", outcome="done", reason=None, at=at, audit=AuditEntry(at=at, action="ack")
    )
    clock.set(58)
    sent = len(smtp.inbox.messages)
    r = alerts.run_round("t")
    assert (r.raised, r.resolved, r.notified) == (0, 1, 0) and len(smtp.inbox.messages) == sent
    open_now = store.alerts.open_alerts()
    assert [(x.rule, x.delivery_id) for x in open_now] == [("not_taken", ids[QUIET])]
    history = [x for x in store.alerts.recent(T0) if x.delivery_id == ids[R]]
    assert len(history) == 2 and all(x.resolved_at and x.notified_at for x in history)


def test_smtp_down_leaves_alerts_unnotified_and_the_next_round_sends_them(store: Store, webhook: Webhook):
    clock = Clock()
    add_edoc(store, R)
    port = free_port()  # nothing listens yet
    alerts = alerts_for(store, clock, smtp_port=port, hook=webhook)
    clock.set(40)
    r = alerts.run_round("t")
    assert (r.raised, r.notified, r.failed) == (1, 0, 1)
    assert any("unreachable" in e and "e-mail to" in e for e in r.errors)
    assert [a.notified_at for a in store.alerts.open_alerts()] == [None]
    assert len(webhook.posts) == 1  # the webhook took it; the alert still waits for e-mail

    server = Smtp(port).start()
    try:
        clock.set(45)
        r = alerts.run_round("t")
        assert (r.raised, r.notified, r.failed) == (0, 1, 0)
        assert len(server.inbox.to(CONTACT)) == 1 and len(server.inbox.to(OPERATOR)) == 1
        assert store.alerts.open_alerts()[0].notified_at == clock()
        clock.set(46)
        assert alerts.run_round("t").notified == 0 and len(server.inbox.messages) == 2
    finally:
        server.stop()


def test_webhook_error_is_retried(store: Store, smtp: Smtp, webhook: Webhook):
    clock = Clock()
    add_edoc(store, R)
    alerts = alerts_for(store, clock, smtp_port=smtp.port, hook=webhook)
    webhook.status = 500
    clock.set(40)
    r = alerts.run_round("t")
    assert (r.notified, r.failed) == (0, 1) and r.errors == ["webhook: receiver answered HTTP 500"]
    webhook.status = 204
    clock.set(41)
    r = alerts.run_round("t")
    assert (r.notified, r.failed) == (1, 0) and len(webhook.posts) == 2


def test_the_round_lease_is_single_and_a_dead_holder_is_taken_over(store: Store):
    stale = timedelta(minutes=10)
    assert store.alerts.acquire_round("a", T0, stale)
    assert not store.alerts.acquire_round("b", T0 + timedelta(minutes=1), stale)
    store.alerts.release_round(T0, T0 + timedelta(minutes=2))
    assert store.alerts.acquire_round("b", T0 + timedelta(minutes=3), stale)
    assert store.alerts.acquire_round("c", T0 + timedelta(minutes=14), stale)  # b died holding it
    assert store.alerts.open_alerts() == []  # the lease row is never an alert
    concurrent = []
    barrier = threading.Barrier(4)

    def take(name: str) -> None:
        barrier.wait()
        concurrent.append(store.alerts.acquire_round(name, T0 + timedelta(minutes=30), stale))

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(concurrent) == [False, False, False, True]


def test_the_worker_runs_alert_rounds_on_its_interval(database_url: str, store: Store, webhook: Webhook, tmp_path):
    add_edoc(store, R, at=datetime.now(UTC) - timedelta(minutes=40))
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        alerts_interval_seconds=0.2,
        alert_webhook_url=webhook.url,
        worker_poll_seconds=0.05,
    )
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(settings,), kwargs={"stop_event": stop, "adapters": {}})
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not webhook.posts and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # more rounds run meanwhile; they must stay quiet
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(webhook.posts) == 1 and webhook.posts[0]["alerts"][0]["rule"] == "not_taken"
    assert [a.notified_at is not None for a in store.alerts.open_alerts()] == [True]
