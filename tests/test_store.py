"""gateway.db: engine configuration, time columns, one-transaction writes, idempotency collisions, mailbox state.

Every database test runs on SQLite and PostgreSQL (``database_url`` from conftest).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from gateway.config import Settings
from gateway.db import (
    AgencyRecord,
    AuditEntry,
    DocumentRecord,
    IdempotencyConflict,
    NewDocument,
    StatusRecord,
    Store,
    create_engine,
)
from gateway.db.engine import database_url as url_of
from gateway.errors import UnavailableError

NOW = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    s.registry.upsert_agencies(
        [AgencyRecord(organ_id=o, name=o) for o in ("000.00.00.H53", "000.00.01.H53", "000.00.00.G22")], now=NOW
    )
    yield s
    s.engine.dispose()


def new_doc(*, idem: str | None = None, recipients=("000.00.00.G22",), at: datetime = NOW, status=None) -> NewDocument:
    doc_id = uuid.uuid4().hex
    return NewDocument(
        document=DocumentRecord(
            doc_id=doc_id,
            kind="edoc",
            sender="000.00.01.H53",
            document_id=f"000.00.01.H53,2026/03/01,{doc_id[:6]}/VP",
            sha256="ab" * 32,
            size=5,
            received_at=at,
            signature_state="valid",
            idem_key=idem or uuid.uuid4().hex * 2,
            bussiness_doc_type=0,
            meta={"promulgation_date": "2026-03-01", "nested": {"ok": True}},
        ),
        raw=b"<x/>\x00\xff",
        recipients=tuple((r, "mailbox") for r in recipients),
        audit=AuditEntry(at=at, action="intake.accepted", doc_id=doc_id, detail={"n": 1}),
        status=status,
    )


# ================================================================================================ engine


def test_sqlite_is_wal_durable_with_foreign_keys(tmp_path):
    engine = create_engine(Settings(data_dir=tmp_path))  # the default: SQLite under data_dir
    try:
        assert engine.url.database == str(tmp_path / "gateway.db")
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000}
    finally:
        engine.dispose()


def test_urls():
    assert url_of("postgresql://u@db/gw").drivername == "postgresql+psycopg"
    assert url_of("postgresql+psycopg://u@db/gw").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="in-memory"):
        create_engine("sqlite://")


def test_an_unreachable_database_is_unavailable_and_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    store = Store(create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2"))
    try:
        with pytest.raises(UnavailableError) as info:
            store.registry.agencies(["000.00.00.H53"])
        assert info.value.retryable and info.value.code == "SERVICE.UNAVAILABLE"
    finally:
        store.engine.dispose()


# ================================================================================================ values


def test_times_come_back_aware_utc_to_the_microsecond(store: Store):
    ict = timezone(timedelta(hours=7))
    store.documents.insert_document(new_doc(at=NOW.astimezone(ict)))
    (item,) = store.deliveries.pending("000.00.00.G22", "edoc", 10)
    assert item.received_at == NOW and item.received_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store):
    with pytest.raises(StatementError, match="naive datetime"):
        store.documents.insert_document(new_doc(at=NOW.replace(tzinfo=None)))


def test_document_round_trip_keeps_bytes_and_json(store: Store):
    new = new_doc()
    store.documents.insert_document(new)
    assert store.documents.raw(new.document.doc_id) == b"<x/>\x00\xff"
    doc = store.documents.document(new.document.doc_id)
    assert doc is not None and doc.meta == {"promulgation_date": "2026-03-01", "nested": {"ok": True}}
    assert doc == store.documents.document_by_idem_key(new.document.idem_key)


# ================================================================================================ transactions


def test_one_transaction_nothing_half_stored(store: Store):
    """A failure on the last insert (a history row about a document that does not exist) undoes them all."""
    bad_status = StatusRecord(
        doc_id="f" * 32, recipient="000.00.00.G22", reporter="000.00.00.G22", status_code="01", received_at=NOW
    )
    before = store.counts()
    with pytest.raises(IntegrityError):
        store.documents.insert_document(new_doc(status=bad_status))
    assert store.counts() == before


def test_idempotency_key_collision(store: Store):
    store.documents.insert_document(new_doc(idem="k" * 64))
    before = store.counts()
    with pytest.raises(IdempotencyConflict):
        store.documents.insert_document(new_doc(idem="k" * 64))
    assert store.counts() == before


def test_concurrent_writers_do_not_fail(store: Store):
    """Several threads writing at once: SQLite waits (BEGIN IMMEDIATE + busy_timeout), PostgreSQL just works."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(15):
                new = new_doc()
                store.documents.insert_document(new)
                (item,) = [
                    p
                    for p in store.deliveries.pending("000.00.00.G22", "edoc", 1000)
                    if p.doc_id == new.document.doc_id
                ]
                store.deliveries.acknowledge(
                    item.delivery_id,
                    state="delivered",
                    outcome="done",
                    reason=None,
                    at=NOW,
                    audit=AuditEntry(at=NOW, action="delivery.ack"),
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert store.counts()["documents"] == 60
    assert store.deliveries.pending("000.00.00.G22", "edoc", 1000) == []


# ================================================================================================ mailbox


def test_pending_is_oldest_first_and_fetched_stays_until_acknowledged(store: Store):
    docs = [new_doc(at=NOW + timedelta(seconds=i), recipients=("000.00.00.G22", "000.00.00.H53")) for i in (2, 0, 1)]
    for d in docs:
        store.documents.insert_document(d)
    items = store.deliveries.pending("000.00.00.G22", "edoc", 10)
    assert [i.received_at for i in items] == [NOW, NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)]
    assert len(store.deliveries.pending("000.00.00.G22", "edoc", 2)) == 2
    assert store.deliveries.pending("000.00.00.G22", "status", 10) == []
    first = items[0]
    fetched = store.deliveries.fetch(first.delivery_id, NOW, AuditEntry(at=NOW, action="delivery.fetch"))
    assert fetched is not None and fetched.read() == b"<x/>\x00\xff"  # a Payload (issue 14)
    store.deliveries.fetch(first.delivery_id, NOW + timedelta(hours=1), AuditEntry(at=NOW, action="delivery.fetch"))
    delivery, _doc = store.deliveries.delivery(first.delivery_id)  # type: ignore[misc]
    assert delivery.state == "fetched" and delivery.fetched_at == NOW  # the first fetch time is kept
    assert [i.state for i in store.deliveries.pending("000.00.00.G22", "edoc", 10)] == ["fetched", "queued", "queued"]

    ack = dict(outcome="done", reason=None, at=NOW, audit=AuditEntry(at=NOW, action="delivery.ack"))
    assert store.deliveries.acknowledge(first.delivery_id, state="delivered", **ack).changed  # type: ignore[arg-type]
    again = store.deliveries.acknowledge(first.delivery_id, state="failed", **ack)  # type: ignore[arg-type]
    assert not again.changed and again.state == "delivered"
    assert len(store.deliveries.pending("000.00.00.G22", "edoc", 10)) == 2
    assert len(store.deliveries.pending("000.00.00.H53", "edoc", 10)) == 3  # the other recipient is unaffected


def test_scope_queries_cover_an_agency_and_its_descendants(store: Store):
    """The VDXP lists: a system acting for 000.00.00.H53 sees the mailbox and the sent documents of its child."""
    child, parent, other = "000.00.01.H53", "000.00.00.H53", "000.00.00.G22"
    sent = new_doc(recipients=(other, parent))  # sent by the child (new_doc's sender)
    store.documents.insert_document(sent)
    store.documents.insert_document(new_doc(recipients=(child,), at=NOW + timedelta(seconds=1)))
    for code in ("01", "03"):  # statuses carried by documents without deliveries of their own
        status = StatusRecord(
            doc_id=sent.document.doc_id, recipient=other, reporter=other, status_code=code, received_at=NOW
        )
        store.documents.insert_document(new_doc(recipients=(), status=status))

    waiting = store.deliveries.pending_in_scope([parent], "edoc", limit=10)
    assert [(p.recipient, p.fetched_at) for p in waiting] == [(parent, None), (child, None)]
    assert store.deliveries.pending_in_scope([parent], "edoc", limit=10, since=NOW + timedelta(seconds=1)) == [
        waiting[1]
    ]
    assert store.deliveries.pending_in_scope([child], "edoc", limit=10) == store.deliveries.pending(child, "edoc", 10)
    store.deliveries.fetch(waiting[1].delivery_id, NOW, AuditEntry(at=NOW, action="delivery.fetch"))
    assert store.deliveries.pending(child, "edoc", 10)[0].fetched_at == NOW

    rows = store.deliveries.sent_in_scope([parent], "edoc", limit=10, doc_id=sent.document.doc_id)
    assert [(r.recipient, r.status_code) for r in rows] == [(other, "03"), (parent, None)]
    assert store.deliveries.sent_in_scope([other], "edoc", limit=10) == []


# ================================================================================================ registry rows


def test_agencies_and_certificates(store: Store):
    store.registry.upsert_agencies(
        [AgencyRecord(organ_id="000.00.00.H53", name="UBND", cert_fingerprints=("aa" * 32, "bb" * 32))],
        now=NOW,
        certs_for=["000.00.00.H53"],
    )
    assert store.registry.agencies(["000.00.00.H53"])["000.00.00.H53"].cert_fingerprints == ("aa" * 32, "bb" * 32)
    # An upsert that does not carry certificates leaves them alone.
    store.registry.upsert_agencies([AgencyRecord(organ_id="000.00.00.H53", name="UBND tỉnh")], now=NOW)
    got = store.registry.agencies(["000.00.00.H53", "unknown"])
    assert list(got) == ["000.00.00.H53"] and got["000.00.00.H53"].name == "UBND tỉnh"
    assert got["000.00.00.H53"].cert_fingerprints == ("aa" * 32, "bb" * 32)
    assert store.registry.update_agency("000.00.00.H53", now=NOW, cert_fingerprints=[], signature_policy="require")
    assert store.registry.agencies(["000.00.00.H53"])["000.00.00.H53"].cert_fingerprints == ()
    assert not store.registry.update_agency("000.00.09.H53", now=NOW, active=False)
    with pytest.raises(ValueError, match="unknown agency fields"):
        store.registry.update_agency("000.00.00.H53", now=NOW, bogus=1)


def test_nonces_are_remembered_once_and_pruned(store: Store):
    assert store.nonces.remember_nonce("sys", "bm9uY2U=", NOW)
    assert not store.nonces.remember_nonce("sys", "bm9uY2U=", NOW)
    assert store.nonces.remember_nonce("other", "bm9uY2U=", NOW)  # per system
    assert store.nonces.prune_nonces(NOW + timedelta(seconds=1)) == 2
    assert store.nonces.remember_nonce("sys", "bm9uY2U=", NOW)


def test_audit_entries_newest_first(store: Store):
    for i in range(3):
        store.audit.add(AuditEntry(at=NOW, action="x", outcome=f"o{i}", detail={"i": i}))
    assert [e.outcome for e in store.audit.entries(action="x")] == ["o2", "o1", "o0"]
