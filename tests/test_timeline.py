"""Tracking timelines on a real store (SQLite and PostgreSQL): stories told from real intake, fetch,
acknowledgement, statuses and push attempts to the reference SOAP receiver under gunicorn; document lists with
every filter, keyset paging and scopes (issue 9).

The cast is tests/test_services.py's: A (000.00.01.H53) under H (000.00.00.H53), C (000.01.01.H53) under A,
B (000.00.00.G22) elsewhere, L (000.00.02.H53) under H.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from soap_receiver import Receiver, running_receiver
from test_services import A, B, C, L, World, edoc, status
from test_services import keys as keys  # module fixtures of the shared world
from test_services import trust as trust
from test_services import world as world

from adapters.soap import SoapAdapter
from gateway.db import AgencyRecord
from gateway.edxml import PackageKind, StatusCode
from gateway.errors import CursorError, NotFoundError, RequestError
from gateway.services import paging
from gateway.services.api import AckOutcome
from gateway.services.delivery import Deliverer, RetryPolicy
from gateway.services.timeline import Timelines, decode_cursor, encode_cursor
from gateway.services.tracking_api import DocumentQuery, DocumentsApi
from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.rules import TimingRules

P = "000.00.00.B02"  # a push (soap) recipient
RULES = TimingRules(calendar=WorkingCalendar())


def timelines(w: World, later: timedelta = timedelta(0)) -> Timelines:
    return Timelines(w.store, RULES, clock=lambda: w.clock.now + later)


def submit(w: World, data: bytes, who: str = A, system: str = "sys-a") -> str:
    return w.svc.submit(system, w.signed(data, who)).doc_id


def take(w: World, system: str, recipient: str, doc_id: str, *, after: timedelta = timedelta(minutes=1)) -> None:
    """The recipient's system fetches the document, then acknowledges it ``after`` later."""
    [item] = [p for p in w.svc.pending(system, recipient, PackageKind.EDOC) if p.doc_id == doc_id]
    w.svc.fetch(system, item.delivery_id)
    w.clock.now += after
    w.svc.acknowledge(system, item.delivery_id, AckOutcome.DONE)


def kinds(recipient: dict) -> list[str]:
    return [e["kind"] if e["kind"] != "status" else e["status_code"] for e in recipient["events"]]


# ================================================================================================ stories


def test_a_story_tells_intake_fetch_ack_and_statuses_in_order_with_their_latencies(world: World):
    w = world
    data = edoc(recipients=(B, C))
    doc_id = submit(w, data)
    start = w.store.documents.document(doc_id).received_at  # type: ignore[union-attr]
    w.clock.now += timedelta(minutes=5)
    take(w, "sys-b", B, doc_id)
    w.clock.now += timedelta(minutes=10)
    w.svc.submit("sys-b", w.signed(status(B, data, StatusCode.ARRIVED), B))
    w.clock.now += timedelta(hours=2)
    refusal = "Không thuộc thẩm quyền"
    w.svc.submit("sys-b", w.signed(status(B, data, StatusCode.ACCEPTED, second=1, description=refusal), B))

    api: DocumentsApi = timelines(w)
    story = api.document_story(doc_id).to_dict()
    head = story["document"]
    assert (head["sender"], head["doc_id"], head["priority_vi"]) == (A, doc_id, "Thường")
    assert head["received_at_local"].endswith("+07") and head["submitted_by"] == "sys-a"
    assert head["signature"]["state"] == "valid" and len(head["signature"]["signer_fingerprint"]) == 64
    assert head["signature"]["issuer"] and head["receipt"]["size"] > 0
    assert story["late_sending"]["breached"] is False
    by = {r["recipient"]: r for r in story["recipients"]}
    assert kinds(by[B]) == ["intake", "fetch", "acknowledged", "01", "03"]
    assert by[B]["events"][-1]["description"] == refusal and by[B]["events"][-1]["status_vi"]
    assert by[B]["events"][1]["system_id"] == "sys-b"
    facts = by[B]["facts"]
    assert facts["taken"] and facts["available_at"] == start.isoformat()
    assert facts["latency_seconds"]["t01"] == pytest.approx(16 * 60, abs=1)
    assert facts["latency_seconds"]["t03"] == pytest.approx(136 * 60, abs=1)
    assert facts["rules"]["late_receipt"]["breached"] is False and facts["rules"]["not_taken"]["open"] is False
    assert kinds(by[C]) == ["intake"]
    assert by[C]["facts"]["taken"] is False and by[C]["facts"]["rules"]["not_taken"]["open"] is True
    assert [r["relation"] for r in story["related"]] == ["status", "status"]


def test_scope_shows_only_recipients_in_scope_and_hides_other_documents(world: World):
    w = world
    doc_id = submit(w, edoc(recipients=(B, C)))
    t = timelines(w)
    assert [r["recipient"] for r in t.document_story(doc_id, scope=B).to_dict()["recipients"]] == [B]
    assert {r["recipient"] for r in t.document_story(doc_id, scope=A).to_dict()["recipients"]} == {C}
    assert t.document_story(doc_id, scope=H_SCOPE).to_dict()["document"]["sender"] == A
    with pytest.raises(NotFoundError):
        t.document_story(doc_id, scope=L)
    with pytest.raises(NotFoundError):
        t.document_story("0" * 32)
    assert [i.doc.doc_id for i in t.list_documents(DocumentQuery(), scope=L).items] == []
    assert [i.doc.doc_id for i in t.list_documents(DocumentQuery(), scope=B).items] == [doc_id]


H_SCOPE = "000.00.00.H53"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with running_receiver(tmp_path_factory.mktemp("receiver"), workers=1) as rcv:
        yield rcv


def test_a_push_delivery_shows_each_attempt_and_is_available_when_the_peer_took_it(world: World, receiver: Receiver):
    w = world
    w.store.registry.upsert_agencies(
        [AgencyRecord(organ_id=P, name="Cổng nhận SOAP", channel="soap", endpoint=receiver.url)], now=w.clock.now
    )
    doc_id = submit(w, edoc(recipients=(P,)))
    adapter = SoapAdapter(connect_timeout=2, read_timeout=5)
    policy = RetryPolicy(base_seconds=1, max_seconds=2, limit_seconds=3600)
    worker = Deliverer(
        w.store, {"soap": adapter}, policy, worker_id="t", lease_seconds=60, call_seconds=5, clock=w.clock,
        rng=random.Random(1),
    )  # fmt: skip
    try:
        receiver.fault("server-fault")
        assert worker.run_batch(5).retried == 1
        receiver.fault(None)
        w.clock.now += timedelta(seconds=5)
        assert worker.run_batch(5).delivered == 1
    finally:
        receiver.fault(None)
        adapter.close()
    story = timelines(w).document_story(doc_id).to_dict()
    [peer] = story["recipients"]
    assert (peer["channel"], peer["state"]) == ("soap", "delivered")
    attempts = [e for e in peer["events"] if e["kind"] == "attempt"]
    assert [(a["attempt"], a["outcome"], a["error_code"]) for a in attempts] == [
        (1, "retry", "DELIVERY.PEER_ERROR"),
        (2, "delivered", None),
    ]
    assert all(a["duration_ms"] >= 0 for a in attempts) and kinds(peer) == ["intake", "attempt", "attempt"]
    assert peer["facts"]["taken"] and peer["facts"]["available_at"] == peer["facts"]["taken_at"]
    assert peer["facts"]["available_at"] > attempts[1]["at"]


# ================================================================================================ lists


@pytest.fixture
def traffic(world: World) -> dict[str, str]:
    """Four edocs an hour apart: a (A→B,C, B took it), b (L→B, taken, 01 at once), c (A→C, untaken),
    d (A→B, taken, code 987001); and s, B's 01 about b."""
    w = world
    docs = {"a": submit(w, edoc(recipients=(B, C), subject="Kế hoạch ứng dụng CNTT"))}
    take(w, "sys-b", B, docs["a"])
    w.clock.now += timedelta(hours=1)
    b = edoc(sender=L, recipients=(B,))
    docs["b"] = submit(w, b, who=A, system="sys-l")
    take(w, "sys-b", B, docs["b"])
    docs["s"] = w.svc.submit("sys-b", w.signed(status(B, b, StatusCode.ARRIVED), B)).doc_id
    w.clock.now += timedelta(hours=1)
    docs["c"] = submit(w, edoc(recipients=(C,), subject="BÁO CÁO ĐỊNH KỲ quý I"))
    w.clock.now += timedelta(hours=1)
    docs["d"] = submit(w, edoc(recipients=(B,), number=987_001))
    take(w, "sys-b", B, docs["d"])
    return docs


def listed(t: Timelines, scope: str | None = None, **filters) -> list[str]:
    return [i.doc.doc_id for i in t.list_documents(DocumentQuery(**filters), scope=scope).items]


def test_each_list_filter_narrows(world: World, traffic: dict[str, str]):
    w, d = world, traffic
    t = timelines(w)
    assert listed(t, kind="edoc") == [d["d"], d["c"], d["b"], d["a"]]  # newest first
    assert listed(t, sender=A, kind="edoc") == [d["d"], d["c"], d["a"]]
    assert listed(t, recipient=C) == [d["c"], d["a"]]
    assert listed(t, state="queued") == [d["c"], d["s"], d["a"]]  # s waits in L's mailbox
    assert listed(t, state="queued", kind="edoc") == [d["c"], d["a"]]
    assert listed(t, state="delivered") == [d["d"], d["b"], d["a"]]
    assert listed(t, kind="status") == [d["s"]]
    assert listed(t) == [d["d"], d["c"], d["s"], d["b"], d["a"]]
    assert listed(t, text="kế HOẠCH") == [d["a"]]  # non-ASCII, case-folded in Python
    assert listed(t, text="báo cáo định kỳ") == [d["c"]]
    assert listed(t, text="987001/vp") == [d["d"]]  # ASCII: in SQL
    b_at = w.store.documents.document(d["b"]).received_at  # type: ignore[union-attr]
    assert listed(t, since=b_at, until=b_at + timedelta(minutes=30)) == [d["s"], d["b"]]
    assert listed(t, since=b_at + timedelta(microseconds=1), until=b_at + timedelta(hours=1)) == [d["s"]]
    with pytest.raises(RequestError):
        listed(t, flags=("late",))
    with pytest.raises(RequestError):
        listed(t, cursor="not-a-cursor")


def test_flag_filters_judge_with_assess_delivery_at_the_clock(world: World, traffic: dict[str, str]):
    w, d = world, traffic
    now = timelines(w)
    assert listed(now, flags=("not_taken:open",)) == [d["c"], d["a"]]  # C never took them: 30 min are over
    assert listed(now, flags=("late_receipt",), recipient=B) == [d["a"]]  # d is an hour old only
    later = timelines(w, timedelta(hours=3))
    assert listed(later, flags=("late_receipt",), recipient=B) == [d["d"], d["a"]]  # b got its 01 at once
    assert listed(later, flags=("late_receipt:open",), recipient=B) == [d["d"], d["a"]]
    assert listed(later, flags=("not_taken",)) == [d["c"], d["a"]]
    assert listed(later, flags=("not_taken:open",), scope=B) == []  # B took all of its own
    assert listed(later, flags=("not_taken:open",), scope=C) == [d["c"], d["a"]]
    assert listed(later, flags=("late_receipt", "not_taken"), sender=A) == [d["c"], d["a"]]
    assert listed(later, flags=("late_sending",)) == []
    item = later.list_documents(DocumentQuery(flags=("not_taken",), limit=1)).items[0].to_dict()
    assert item["doc_id"] == d["c"] and {"late_receipt", "not_taken"} <= set(item["open"])
    assert item["recipients"] == 1 and item["states"] == {"queued": 1} and item["received_at_local"].endswith("+07")


def test_paging_returns_every_document_exactly_once(world: World, traffic: dict[str, str]):
    w = world
    for _ in range(5):
        submit(w, edoc(recipients=(B,)))
    t = timelines(w, timedelta(hours=3))
    for query in (DocumentQuery(limit=2), DocumentQuery(limit=1, flags=("not_taken",)), DocumentQuery(limit=3)):
        seen, cursor = [], None
        while True:
            page = t.list_documents(dataclasses.replace(query, cursor=cursor))
            assert page.items or query.flags  # without a Python-side filter, never an empty last page
            seen += [i.doc.doc_id for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        whole = [i.doc.doc_id for i in t.list_documents(dataclasses.replace(query, limit=500)).items]
        assert seen == whole and len(set(seen)) == len(seen)
    assert len(listed(t, limit=500)) == 10
    at = w.clock.now
    assert decode_cursor(encode_cursor(at, "x")) == (at, "x")
    # A total when SQL decides every filter; offset skips matching documents (issue 11 item 7).
    everything = [i.doc.doc_id for i in t.list_documents(DocumentQuery(limit=500)).items]
    page = t.list_documents(DocumentQuery(limit=3, offset=2))
    assert (page.total, [i.doc.doc_id for i in page.items]) == (10, everything[2:5])
    assert page.to_dict()["total"] == 10 and page.next_cursor is not None
    after = t.list_documents(DocumentQuery(limit=2, offset=1, cursor=page.next_cursor))
    assert [i.doc.doc_id for i in after.items] == everything[6:8]
    assert t.list_documents(DocumentQuery(limit=3, offset=10)).items == ()
    flagged = [i.doc.doc_id for i in t.list_documents(DocumentQuery(limit=500, flags=("not_taken",))).items]
    second = t.list_documents(DocumentQuery(limit=1, offset=1, flags=("not_taken",)))
    assert ([i.doc.doc_id for i in second.items], second.total) == (flagged[1:2], None)
    with pytest.raises(CursorError):
        t.list_documents(DocumentQuery(cursor=paging.encode_cursor("deliveries", [at, "x"])))


def test_refusals_are_counted_per_agency_system_and_code(world: World):
    from gateway.errors import GatewayError

    w = world
    start = w.clock.now
    with pytest.raises(GatewayError):
        w.svc.submit("sys-a", edoc(recipients=(B,)))  # A requires a signature
    summary = timelines(w).refusals(start, w.clock.now + timedelta(seconds=1)).to_dict()
    assert summary["total"] == 1
    [row] = summary["rows"]
    assert (row["organ_id"], row["system_id"], row["count"]) == (A, "sys-a", 1)
    assert summary["by_code"] == {row["code"]: 1} and row["code"].startswith("EDXML.")
