"""The delivery engine on the real databases (SQLite and PostgreSQL): claims and leases, backoff, dead letters,
re-drive, crash recovery, graceful stop, heartbeats — with a fake adapter (same Protocol as the real ones) and an
injected clock. The SOAP adapter against a real receiver is tests/test_adapter_soap.py."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import Settings, load_settings
from gateway.db import (
    AgencyRecord,
    AttemptRecord,
    AttemptStart,
    AuditEntry,
    CircuitPolicy,
    DocumentRecord,
    FinishedAttempt,
    NewDocument,
    Store,
    WorkerHeartbeat,
    create_engine,
)
from gateway.db.migrations import upgrade
from gateway.errors import ConfigError, NotFoundError, RequestError
from gateway.ports import (
    DeliveryError,
    DeliveryRefused,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
)
from gateway.services.delivery import INTERNAL_ERROR, Deliverer, RetryPolicy
from gateway.services.delivery_admin import list_deliveries, peer_circuits, readiness, redrive, show_delivery
from gateway.services.gauges import QueueGauges
from gateway.worker import run_worker
from gateway.worker.heartbeat import Heartbeat, Leases
from gateway.worker.peers import load_adapters

T0 = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
SENDER, R, R2, MAILBOX, REST = "000.00.00.A01", "000.00.00.B02", "000.00.00.B03", "000.00.00.C04", "000.00.00.D05"


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeAdapter:
    """A PeerAdapter whose answer is scripted by ``behaviour`` (default: accept)."""

    channel = "soap"

    def __init__(self, behaviour: Callable[[Peer, OutgoingPackage], DeliveryResult] | None = None) -> None:
        self.behaviour = behaviour
        self.calls: list[OutgoingPackage] = []
        self.peers: list[Peer] = []
        self.closed = False

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        self.calls.append(package)
        self.peers.append(peer)
        if self.behaviour is not None:
            return self.behaviour(peer, package)
        return DeliveryResult(peer_reference=f"ref-{package.delivery_id[:8]}", peer_answer="accepted")

    def close(self) -> None:
        self.closed = True


def failing(exc: Exception) -> Callable[[Peer, OutgoingPackage], DeliveryResult]:
    def behaviour(_peer: Peer, _pkg: OutgoingPackage) -> DeliveryResult:
        raise exc

    return behaviour


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    s.registry.upsert_agencies(
        [
            AgencyRecord(organ_id=SENDER, name="sender"),
            AgencyRecord(organ_id=R, name="soap peer", channel="soap", endpoint="http://127.0.0.1:9/"),
            AgencyRecord(organ_id=R2, name="soap peer 2", channel="soap", endpoint="http://127.0.0.1:10/"),
            AgencyRecord(organ_id=MAILBOX, name="mailbox"),
            AgencyRecord(organ_id=REST, name="rest peer", channel="rest", endpoint="http://127.0.0.1:9/"),
        ],
        now=T0,
    )
    yield s
    s.engine.dispose()


def add_doc(store: Store, *recipients: str, at: datetime = T0, raw: bytes | None = None) -> dict[str, str]:
    """One stored edoc with each delivery's channel; push recipients (soap/rest) get an outbox row, like intake does."""
    doc_id = uuid.uuid4().hex
    push = {R: "soap", R2: "soap", REST: "rest"}  # the registry's channels, as intake records them
    return store.documents.insert_document(
        NewDocument(
            document=DocumentRecord(
                doc_id=doc_id,
                kind="edoc",
                sender=SENDER,
                document_id=f"{SENDER},2026/12/01,{doc_id[:6]}/VP",
                sha256="00" * 32,
                size=len(raw or b""),
                received_at=at,
                signature_state="unsigned",
                idem_key=uuid.uuid4().hex * 2,
                meta={},
            ),
            raw=raw or b"<edXML>" + doc_id.encode() + b"\x00\xff</edXML>",
            recipients=tuple((r, push.get(r, "mailbox")) for r in (recipients or (R,))),
            audit=AuditEntry(at=at, action="intake.accepted", doc_id=doc_id),
        )
    )


def deliverer(store: Store, adapter: FakeAdapter, clock: Clock, *, worker: str = "w1", **kw) -> Deliverer:
    return Deliverer(
        store,
        {"soap": adapter},
        kw.pop("policy", RetryPolicy(base_seconds=1, max_seconds=4, limit_seconds=30)),
        worker_id=worker,
        lease_seconds=kw.pop("lease_seconds", 60),
        call_seconds=kw.pop("call_seconds", 10),
        clock=clock,
        rng=random.Random(7),
        peer_concurrency=kw.pop("peer_concurrency", 4),
        # The retry schedule is under test here, not the circuit breaker (tested on its own below).
        circuits=kw.pop("circuits", CircuitPolicy(failures=1000)),
    )


def state(store: Store, delivery_id: str) -> str:
    row = store.deliveries.delivery_overview(delivery_id)
    assert row is not None
    return row.state


# ================================================================================================ claims


def test_claims_are_leases_earliest_first_and_only_for_known_channels(store):
    ids = [add_doc(store, R, at=T0 + timedelta(seconds=i))[R] for i in range(5)]
    add_doc(store, MAILBOX)  # a mailbox delivery: never in the outbox
    add_doc(store, REST)  # a push channel this worker has no adapter for
    now = T0 + timedelta(minutes=1)
    first = store.outbox.claim_deliveries(
        "w1", now=now, lease_until=now + timedelta(minutes=5), limit=3, channels={"soap"}
    )
    assert [c.delivery_id for c in first] == ids[:3]
    assert all(c.channel == "soap" and c.endpoint == "http://127.0.0.1:9/" and c.attempts == 0 for c in first)
    second = store.outbox.claim_deliveries(
        "w2", now=now, lease_until=now + timedelta(minutes=5), limit=10, channels={"soap"}
    )
    assert [c.delivery_id for c in second] == ids[3:]
    assert store.outbox.claim_deliveries("w3", now=now, lease_until=now, limit=10, channels={"soap"}) == []
    # not due yet: nothing before its next_attempt_at
    later = add_doc(store, R, at=now + timedelta(hours=1))[R]
    assert store.outbox.claim_deliveries("w3", now=now, lease_until=now, limit=10, channels={"soap"}) == []
    overview = store.deliveries.delivery_overview(ids[0])
    assert overview is not None and overview.claimed_by == "w1" and overview.next_attempt_at == T0
    assert store.outbox.release_claims("w1") == 3
    again = store.outbox.claim_deliveries("w3", now=now, lease_until=now, limit=10, channels={"soap", "rest"})
    assert {c.delivery_id for c in again} == {*ids[:3], *{c.delivery_id for c in again if c.channel == "rest"}}
    assert later not in {c.delivery_id for c in again}


def test_lease_expiry_after_a_crash_hands_the_delivery_to_another_worker(store):
    delivery = add_doc(store, R)[R]
    clock = Clock(T0 + timedelta(seconds=1))
    # worker A claims with a 30 s lease, then "is killed" (never records anything)
    a = store.outbox.claim_deliveries(
        "A", now=clock(), lease_until=clock() + timedelta(seconds=30), limit=10, channels={"soap"}
    )
    assert [c.delivery_id for c in a] == [delivery]
    adapter = FakeAdapter()
    b = deliverer(store, adapter, clock, worker="B")
    assert b.run_batch(10).claimed == 0  # A's lease is alive
    clock.advance(31)
    result = b.run_batch(10)
    assert (result.claimed, result.delivered) == (1, 1)
    assert [p.delivery_id for p in adapter.calls] == [delivery]
    assert state(store, delivery) == "delivered"
    # A comes back to life and reports a failure: recorded, but it decides nothing any more
    late = AttemptRecord(delivery, 1, clock(), 5, "retry", worker_id="A", error_code="DELIVERY.TIMEOUT",
                         next_attempt_at=clock() + timedelta(seconds=5))  # fmt: skip
    assert store.outbox.finish_attempt(late) is False
    assert state(store, delivery) == "delivered"
    assert [a.worker_id for a in store.outbox.delivery_attempts(delivery)] == ["B", "A"]


def test_concurrent_claimers_on_sqlite_never_share_a_delivery(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    store = Store(create_engine(url))
    store.create_schema()
    store.registry.upsert_agencies(
        [AgencyRecord(organ_id=SENDER, name="s"), AgencyRecord(R, "r", channel="soap")], now=T0
    )
    expected = {add_doc(store, R)[R] for _ in range(120)}
    claimed = claim_concurrently(url, workers=4, limit=7)
    store.engine.dispose()
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 120
    assert set(all_ids) == expected


def claim_concurrently(url: str, *, workers: int, limit: int) -> dict[str, list[str]]:
    """``workers`` threads, each with its own engine, claiming until nothing is left; what each got."""
    barrier = threading.Barrier(workers)
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        own = Store(create_engine(url))
        try:
            barrier.wait()
            mine = claimed.setdefault(name, [])
            while True:
                now = T0 + timedelta(hours=1)
                got = own.outbox.claim_deliveries(
                    name, now=now, lease_until=now + timedelta(minutes=5), limit=limit, channels={"soap"}
                )
                if not got:
                    return
                mine.extend(c.delivery_id for c in got)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    return claimed


# ================================================================================================ retries


def test_backoff_is_exponential_with_full_jitter_and_bounded():
    policy = RetryPolicy(base_seconds=2, max_seconds=60, limit_seconds=3600)
    assert [policy.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.ceiling(10_000) == 60  # no overflow
    rng = random.Random(1)
    for n in range(1, 9):
        samples = [policy.delay(n, rng) for _ in range(400)]
        assert all(0 <= s <= policy.ceiling(n) for s in samples)
        # full jitter: spread over the whole interval, not clustered at its end
        assert min(samples) < 0.1 * policy.ceiling(n) and max(samples) > 0.9 * policy.ceiling(n)
    since = T0
    assert policy.next_attempt_at(1, since, since + timedelta(seconds=3599), rng) <= since + timedelta(hours=1)
    assert policy.next_attempt_at(1, since, since + timedelta(seconds=3600), rng) is None


def test_retries_follow_the_schedule_then_dead_letter_at_the_limit(store):
    delivery = add_doc(store, R)[R]
    clock = Clock(T0)
    # A connect timeout: nothing reached the peer, so the outcome is known (the unknown path is tested below).
    adapter = FakeAdapter(failing(DeliveryTimeout("no answer", sent=False, peer_answer=None)))
    policy = RetryPolicy(base_seconds=1, max_seconds=4, limit_seconds=30)
    d = deliverer(store, adapter, clock, policy=policy)
    for _ in range(200):
        result = d.run_batch(10)
        assert result.claimed == 1
        if result.dead:
            break
        assert result.retried == 1
        overview = store.deliveries.delivery_overview(delivery)
        assert overview is not None and overview.state == "queued" and overview.claimed_by is None
        clock.now = overview.next_attempt_at
    else:
        pytest.fail("never dead-lettered")
    attempts = store.outbox.delivery_attempts(delivery)
    assert [a.outcome for a in attempts] == ["retry"] * (len(attempts) - 1) + ["dead"]
    assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
    assert len(attempts) >= 8  # 30 s with waits of at most 4 s
    deadline = T0 + timedelta(seconds=30)
    for n, a in enumerate(attempts[:-1], start=1):
        assert a.error_code == "DELIVERY.TIMEOUT"
        assert a.next_attempt_at is not None
        assert timedelta(0) <= a.next_attempt_at - a.finished_at <= timedelta(seconds=policy.ceiling(n))
        assert a.next_attempt_at <= deadline
    assert attempts[-1].started_at >= deadline  # the last attempt is at the deadline, and it failed too
    detail = show_delivery(store, delivery)
    assert detail.delivery.state == "dead"
    assert detail.delivery.next_attempt_at is None  # out of the outbox
    assert detail.delivery.attempts == len(attempts)
    assert detail.last_error is not None and detail.last_error.startswith("DELIVERY.TIMEOUT: no answer")
    assert detail.delivery.reason == detail.last_error  # what the sender's status view shows (ackReason)
    assert [a.outcome for a in detail.attempts] == [a.outcome for a in attempts]
    assert [e.outcome for e in store.audit.entries(action="delivery.dead")] == ["DELIVERY.TIMEOUT"]
    assert [i.delivery_id for i in list_deliveries(store, state="dead").items] == [delivery]
    as_json = json.loads(json.dumps(detail.to_dict()))  # what `deliveries show --json` / the admin API print
    assert as_json["state"] == "dead" and as_json["kind"] == "edoc"
    assert [a["outcome"] for a in as_json["attempt_log"]][-1] == "dead"
    assert as_json["attempt_log"][0]["started_at"] == attempts[0].started_at.isoformat()


def test_a_non_retryable_error_dead_letters_at_once(store):
    delivery = add_doc(store, R)[R]
    adapter = FakeAdapter(failing(DeliveryRefused("refused", peer_answer="soap:Client: not ours")))
    result = deliverer(store, adapter, Clock()).run_batch(10)
    assert (result.claimed, result.dead, result.retried) == (1, 1, 0)
    (attempt,) = store.outbox.delivery_attempts(delivery)
    assert (attempt.outcome, attempt.error_code, attempt.peer_answer) == (
        "dead",
        "DELIVERY.REFUSED",
        "soap:Client: not ours",
    )
    assert state(store, delivery) == "dead"
    assert store.deliveries.for_document(store.deliveries.delivery(delivery)[0].doc_id)[0].ack_reason == (
        "DELIVERY.REFUSED: refused (peer: soap:Client: not ours)"
    )


def test_an_unexpected_adapter_exception_is_retried_not_fatal(store, caplog):
    delivery = add_doc(store, R)[R]
    adapter = FakeAdapter(failing(KeyError("bug")))
    with caplog.at_level(logging.ERROR, logger="gateway.services.delivery"):
        result = deliverer(store, adapter, Clock()).run_batch(10)
    assert result.retried == 1
    (attempt,) = store.outbox.delivery_attempts(delivery)
    assert attempt.error_code == INTERNAL_ERROR and "KeyError" in attempt.error_message
    assert "raised unexpectedly" in caplog.text


def test_an_unknown_outcome_goes_again_with_longer_timeouts_and_a_confirmation_before_dead(store):
    delivery = add_doc(store, R)[R]
    clock = Clock(T0)
    adapter = FakeAdapter(failing(DeliveryTimeout("read timed out")))  # sent: the peer may have the package
    policy = RetryPolicy(base_seconds=1, max_seconds=4, limit_seconds=10, read_timeout=2, max_read_timeout=10_000)
    d = deliverer(store, adapter, clock, policy=policy)
    for _ in range(100):
        result = d.run_batch(10)
        assert result.unknown == 1
        if result.dead:
            break
        overview = store.deliveries.delivery_overview(delivery)
        assert overview is not None and overview.next_attempt_at is not None
        clock.now = overview.next_attempt_at
    else:
        pytest.fail("never dead-lettered")
    timeouts = [p.read_timeout for p in adapter.calls]
    # The adapter's default first, then doubled each time...
    assert timeouts[:-1] == [None] + [2.0 * 2**n for n in range(1, len(timeouts) - 1)]
    # ...until the budget (10 s) ran out: one confirmation attempt at the longest timeout came after it.
    assert timeouts[-1] == 10_000
    attempts = store.outbox.delivery_attempts(delivery)
    assert attempts[-2].started_at <= T0 + timedelta(seconds=10) < attempts[-1].started_at
    assert all(a.error_message.startswith("outcome unknown") for a in attempts)
    (dead,) = store.audit.entries(action="delivery.dead")
    assert dead.detail["outcome_unknown"] is True
    assert state(store, delivery) == "dead"


def test_a_peer_that_is_down_opens_its_circuit_and_gets_one_probe_at_a_time(store):
    ids = [add_doc(store, R)[R] for _ in range(3)]
    other = add_doc(store, R2)[R2]

    def behaviour(peer: Peer, _pkg: OutgoingPackage) -> DeliveryResult:
        if peer.organ_id == R:
            raise DeliveryUnreachable("connection refused")
        return DeliveryResult()

    adapter = FakeAdapter(behaviour)
    policy = CircuitPolicy(failures=2, open_seconds=10, max_open_seconds=60)
    clock = Clock(T0 + timedelta(seconds=5))
    d = deliverer(store, adapter, clock, peer_concurrency=1, circuits=policy)
    result = d.run_batch(10)
    # R failed twice in a row: its circuit opened and its third delivery was given back unattempted.
    assert (result.retried, result.released, result.delivered, result.opened) == (2, 1, 1, 1)
    assert sorted(p.organ_id for p in adapter.peers) == [R, R, R2]
    assert state(store, other) == "delivered"
    (circuit,) = store.outbox.circuits()
    assert (circuit.state, circuit.failures, circuit.open_until) == ("open", 2, clock.now + timedelta(seconds=10))
    untouched = store.deliveries.delivery_overview(ids[2])
    assert untouched is not None and untouched.attempts == 0 and untouched.claimed_by is None
    (shown,) = peer_circuits(store)  # what `edoc-gateway deliveries peers` prints
    assert shown.to_dict()["state"] == "open" and shown.peer == "soap http://127.0.0.1:9/"
    assert "DELIVERY.UNREACHABLE" in (shown.last_error or "")
    gauges = {g.name: g for g in QueueGauges(store, clock)()}
    assert gauges["edoc_peers_failing"].values == {("open",): 1.0, ("probing",): 0.0}
    assert d.run_batch(10).claimed == 0  # open: R's due delivery waits, nothing is sent
    clock.now += timedelta(seconds=12)  # past the interval, every retry due, still inside the retry budget
    probe = d.run_batch(10)
    assert (probe.claimed, probe.retried) == (1, 1)  # one probe, not three calls
    (circuit,) = store.outbox.circuits()
    assert (circuit.state, circuit.opens) == ("open", 2)  # the failed probe re-opened it, for twice as long
    assert circuit.open_until == clock.now + timedelta(seconds=20)


def test_a_late_success_wins_over_a_dead_letter(store):
    delivery = add_doc(store, R)[R]
    deliverer(store, FakeAdapter(failing(DeliveryRefused("no"))), Clock()).run_batch(10)
    assert state(store, delivery) == "dead"
    # another worker whose lease had run out reports that the peer took it after all
    assert store.outbox.finish_attempt(
        AttemptRecord(delivery, 2, T0, 3, "delivered", worker_id="old", peer_reference="X")
    )
    row = store.deliveries.delivery_overview(delivery)
    assert row is not None and (row.state, row.peer_reference, row.last_error) == ("delivered", "X", None)


def test_a_mailbox_acknowledgement_takes_the_delivery_out_of_the_outbox(store):
    delivery = add_doc(store, R)[R]
    store.deliveries.acknowledge(
        delivery, state="delivered", outcome="done", reason=None, at=T0, audit=AuditEntry(at=T0, action="delivery.ack")
    )
    assert deliverer(store, FakeAdapter(), Clock(T0 + timedelta(seconds=1))).run_batch(10).claimed == 0


# ================================================================================================ re-drive


def test_redrive_one_dead_letter_then_it_is_delivered(store):
    delivery = add_doc(store, R)[R]
    clock = Clock(T0 + timedelta(seconds=1))
    deliverer(store, FakeAdapter(failing(DeliveryRefused("no"))), clock).run_batch(10)
    assert state(store, delivery) == "dead"
    clock.advance(3600)
    assert redrive(store, delivery_id=delivery, actor="cli:ops", clock=clock) == [delivery]
    row = store.deliveries.delivery_overview(delivery)
    assert row is not None
    assert (row.state, row.next_attempt_at, row.budget_since, row.budget_attempts) == ("queued", clock(), clock(), 0)
    assert row.ack_reason is None and row.acknowledged_at is None
    (audit,) = store.audit.entries(action="delivery.redrive")
    assert audit.detail == {"delivery_id": delivery, "previous_state": "dead", "by": "cli:ops"}
    adapter = FakeAdapter()
    assert deliverer(store, adapter, clock).run_batch(10).delivered == 1
    assert adapter.calls[0].attempt == 2  # attempts count over every budget
    assert state(store, delivery) == "delivered"
    with pytest.raises(RequestError):
        redrive(store, delivery_id=delivery)  # delivered: nothing to re-drive
    with pytest.raises(NotFoundError):
        redrive(store, delivery_id="0" * 32)
    with pytest.raises(RequestError):
        redrive(store)


def test_redrive_every_dead_letter_of_a_recipient_with_a_fresh_budget(store):
    dead = [add_doc(store, R)[R] for _ in range(3)]
    other = add_doc(store, R2)[R2]
    clock = Clock(T0 + timedelta(seconds=1))
    deliverer(store, FakeAdapter(failing(DeliveryRefused("no"))), clock).run_batch(10)
    assert {state(store, i) for i in [*dead, other]} == {"dead"}
    clock.advance(10)
    assert sorted(redrive(store, recipient=R, clock=clock)) == sorted(dead)
    assert state(store, other) == "dead"
    assert redrive(store, recipient=R, clock=clock) == []


def test_redrive_of_a_retrying_delivery_makes_it_due_now_and_failed_mailbox_goes_back_to_the_mailbox(store):
    delivery = add_doc(store, R)[R]
    clock = Clock(T0 + timedelta(seconds=1))
    deliverer(store, FakeAdapter(failing(DeliveryTimeout("slow"))), clock).run_batch(10)
    row = store.deliveries.delivery_overview(delivery)
    assert row is not None and row.next_attempt_at > clock()
    assert redrive(store, delivery_id=delivery, clock=clock) == [delivery]
    row = store.deliveries.delivery_overview(delivery)
    assert row is not None and row.next_attempt_at == clock() and row.budget_attempts == 0

    mailbox = add_doc(store, MAILBOX)[MAILBOX]
    with pytest.raises(RequestError):
        redrive(store, delivery_id=mailbox)  # waiting in its mailbox: nothing to do
    store.deliveries.acknowledge(
        mailbox, state="failed", outcome="fail", reason="unreadable", at=T0, audit=AuditEntry(at=T0, action="x")
    )
    assert redrive(store, delivery_id=mailbox, clock=clock) == [mailbox]
    row = store.deliveries.delivery_overview(mailbox)
    assert row is not None and (row.state, row.next_attempt_at) == ("queued", None)  # back in the mailbox


# ================================================================================================ stop, worker


def test_graceful_stop_finishes_the_delivery_in_hand_and_releases_the_rest(store):
    ids = [add_doc(store, R, at=T0 + timedelta(seconds=i))[R] for i in range(5)]
    stop = threading.Event()

    def behaviour(_peer: Peer, pkg: OutgoingPackage) -> DeliveryResult:
        if pkg.delivery_id == ids[1]:
            stop.set()  # SIGTERM arrives while the second delivery is being sent
        return DeliveryResult()

    # One send at a time to the peer, so "the delivery in hand" is one.
    one_at_a_time = deliverer(store, FakeAdapter(behaviour), Clock(T0 + timedelta(seconds=9)), peer_concurrency=1)
    result = one_at_a_time.run_batch(10, stop=stop)
    assert (result.claimed, result.delivered, result.released) == (5, 2, 3)
    assert [state(store, i) for i in ids] == ["delivered", "delivered", "queued", "queued", "queued"]
    for i in ids[2:]:
        row = store.deliveries.delivery_overview(i)
        assert row is not None and row.claimed_by is None and row.attempts == 0  # due again at once, for anyone


def test_a_worker_whose_own_leases_ran_out_never_claims_again_what_it_holds(store):
    """The database was away longer than a lease (no renewals): the worker's waiting and in-flight claims are
    expired when it comes back. It must not claim them again itself — that planned one delivery twice under one
    intent (two POSTs, one attempt row: CI's fault test b caught it) or sent one still in flight."""
    ids = [add_doc(store, R, at=T0 + timedelta(seconds=i))[R] for i in range(3)]
    clock, go = Clock(T0 + timedelta(seconds=9)), threading.Event()

    def behaviour(_peer: Peer, pkg: OutgoingPackage) -> DeliveryResult:
        if pkg.delivery_id == ids[0]:
            go.wait(5)  # still in flight when the worker claims again
        elif pkg.delivery_id == ids[1]:
            clock.advance(61)  # every lease of the worker (60 s) has run out by the next turn
        else:
            go.set()
        return DeliveryResult()

    adapter = FakeAdapter(behaviour)
    result = deliverer(store, adapter, clock, peer_concurrency=2).run(threading.Event(), until_idle=True)
    calls = Counter(p.delivery_id for p in adapter.calls)
    assert calls == dict.fromkeys(ids, 1)
    assert (result.claimed, result.delivered, result.lost) == (3, 3, 0)
    for delivery in ids:
        outcomes = [(a.worker_id, a.outcome) for a in store.outbox.delivery_attempts(delivery)]
        assert outcomes == [("w1", "delivered")]


def worker_settings(database_url: str, tmp_path, **kw) -> Settings:
    defaults = {"worker_poll_seconds": 0.05, "worker_heartbeat_seconds": 0.1, "worker_stale_seconds": 5}
    return Settings(data_dir=tmp_path, database_url=database_url, **{**defaults, **kw})


def past() -> datetime:
    """For tests with the real clock (run_worker): a time when the delivery is already due."""
    return datetime.now(UTC) - timedelta(minutes=1)


def test_run_worker_delivers_beats_and_stops_on_request(store, database_url, tmp_path):
    ids = [add_doc(store, R, at=past())[R] for _ in range(4)]
    settings = worker_settings(database_url, tmp_path)
    stop = threading.Event()
    adapter = FakeAdapter()
    stats = {}

    def run() -> None:
        stats["result"] = run_worker(settings, stop_event=stop, adapters={"soap": adapter}, worker_id="t:1:x")

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(200):
            if all(state(store, i) == "delivered" for i in ids):
                break
            stop.wait(0.05)
        beats = store.workers.worker_heartbeats()
        assert [h.worker_id for h in beats] == ["t:1:x"] and beats[0].stopped_at is None
        assert readiness(store, settings) == {"worker": True}
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert all(state(store, i) == "delivered" for i in ids)
    assert stats["result"].delivered == 4
    (beat,) = store.workers.worker_heartbeats()
    assert beat.stopped_at is not None
    assert readiness(store, settings) == {"worker": False}  # push agencies exist and no worker runs
    assert adapter.closed is False  # adapters passed in belong to the caller


def test_run_worker_once_delivers_what_is_due_then_returns(store, database_url, tmp_path):
    ids = [add_doc(store, R, at=past())[R] for _ in range(3)]
    failing_one = add_doc(store, R2, at=past())[R2]

    def behaviour(peer: Peer, _pkg: OutgoingPackage) -> DeliveryResult:
        if peer.organ_id == R2:
            raise DeliveryError("try later")
        return DeliveryResult()

    settings = worker_settings(database_url, tmp_path, retry_base_seconds=0.001, retry_max_seconds=0.001)
    settings = dataclasses.replace(settings, extra={"credentials": {R: {"hmac_key": "k1"}}})
    adapter = FakeAdapter(behaviour)
    stats = run_worker(settings, once=True, adapters={"soap": adapter})
    assert (stats.delivered, stats.retried) == (3, 1)  # the retry, due again almost at once, waits for the next run
    assert all(state(store, i) == "delivered" for i in ids)
    assert state(store, failing_one) == "queued"
    # per-agency channel credentials from the configuration file's [credentials."<OrganId>"] tables
    assert {p.organ_id: p.credentials for p in adapter.peers} == {R: {"hmac_key": "k1"}, R2: {}}
    assert {p.endpoint for p in adapter.peers} == {"http://127.0.0.1:9/", "http://127.0.0.1:10/"}


def test_worker_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="worker_lease_seconds"):
        run_worker(Settings(data_dir=tmp_path, worker_lease_seconds=1), once=True)
    with pytest.raises(ConfigError, match="worker_batch"):
        Settings(worker_batch=0).require_worker()
    Settings().require_worker()  # the defaults are sane
    old_schema = Settings(data_dir=tmp_path / "old")
    upgrade(old_schema, "0001")
    with pytest.raises(ConfigError, match="db upgrade"):
        run_worker(old_schema, once=True, adapters={})
    loaded = load_settings(env={"EDOC_GATEWAY_RETRY_BASE_SECONDS": "0.5", "EDOC_GATEWAY_WORKER_LEASE_SECONDS": "90"})
    assert (loaded.retry_base_seconds, loaded.worker_lease_seconds) == (0.5, 90)
    with pytest.raises(ConfigError, match="retry_max_seconds"):
        load_settings(env={"EDOC_GATEWAY_RETRY_MAX_SECONDS": "nan"})


def test_readiness_needs_a_fresh_heartbeat_only_when_something_may_be_pushed(database_url, tmp_path):
    s = Store(create_engine(database_url))
    s.create_schema()
    settings = Settings(worker_stale_seconds=60)
    try:
        assert readiness(s, settings, now=T0) == {"worker": True}  # nothing to push: no worker needed
        s.registry.upsert_agencies([AgencyRecord(organ_id=R, name="r", channel="soap", endpoint="http://x/")], now=T0)
        assert readiness(s, settings, now=T0) == {"worker": False}
        s.workers.beat(WorkerHeartbeat("h:1:a", "h", 1, started_at=T0, seen_at=T0))
        assert readiness(s, settings, now=T0 + timedelta(seconds=59)) == {"worker": True}
        assert readiness(s, settings, now=T0 + timedelta(seconds=61)) == {"worker": False}
        s.workers.beat(WorkerHeartbeat("h:1:a", "h", 1, started_at=T0, seen_at=T0, stopped_at=T0))
        assert readiness(s, settings, now=T0) == {"worker": False}
        assert s.workers.prune_heartbeats(T0 + timedelta(days=8)) == 1
    finally:
        s.engine.dispose()


def test_adapters_load_by_dotted_path_and_missing_ones_are_skipped(caplog, tmp_path):
    settings = Settings(data_dir=tmp_path)
    registry = {
        "soap": "adapters.soap:SoapAdapter",  # a from_settings classmethod
        "rest": "test_worker:TimeoutsOnly",  # a class taking the timeouts as keywords
        "vdxp": "adapters.not_there:VdxpAdapter",
    }
    with caplog.at_level(logging.WARNING, logger="gateway.worker"):
        loaded = load_adapters(dataclasses.replace(settings, adapter_read_timeout=7), registry)
    assert set(loaded) == {"soap", "rest"}
    assert loaded["soap"].channel == "soap"
    assert loaded["rest"].timeouts == (10.0, 7)
    assert "channel vdxp: no adapter" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.worker"):
        assert load_adapters(settings, {"soap": "gateway.worker:no_such_factory"}) == {}
    assert "channel soap: adapter gateway.worker:no_such_factory could not be created" in caplog.text
    for adapter in loaded.values():
        adapter.close()
    # the [adapters] table of a configuration file changes the map; "" disables a channel
    custom = Settings(data_dir=tmp_path, extra={"adapters": {"soap": "", "rest": "", "vdxp": "", "edocvn": ""}})
    assert load_adapters(custom) == {}
    custom = Settings(
        data_dir=tmp_path,
        extra={"adapters": {"soap": "", "rest": "", "edocvn": "", "vdxp": "test_worker:TimeoutsOnly"}},
    )
    assert set(load_adapters(custom)) == {"vdxp"}


class TimeoutsOnly:
    """An adapter class without from_settings (the loader passes the timeouts it accepts)."""

    channel = "rest"

    def __init__(self, *, connect_timeout: float = 1, read_timeout: float = 1) -> None:
        self.timeouts = (connect_timeout, read_timeout)

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        return DeliveryResult()

    def close(self) -> None:
        pass


def test_a_worker_whose_lease_was_taken_over_can_neither_send_nor_decide(store):
    """Fencing: A's lease ran out and B claimed the delivery; A's late intent is refused (it must not send) and
    its late "retry" changes nothing, while B's claim carries a newer token."""
    delivery = add_doc(store, R)[R]
    now = T0 + timedelta(seconds=5)
    (a,) = store.outbox.claim_deliveries(
        "A", now=now, lease_until=now + timedelta(seconds=1), limit=5, channels={"soap"}
    )
    later = now + timedelta(seconds=2)  # A's lease is over
    (b,) = store.outbox.claim_deliveries(
        "B", now=later, lease_until=later + timedelta(seconds=20), limit=5, channels={"soap"}
    )
    assert b.fence == a.fence + 1
    assert store.outbox.begin_attempts("A", [AttemptStart(delivery, a.fence, 1)], now=later, lease_until=later) == {}
    late = AttemptRecord(delivery, 1, now, 10, "retry", worker_id="A", next_attempt_at=later + timedelta(hours=1))
    summary = store.outbox.finish_attempts([FinishedAttempt(late, fence=a.fence)], now=later)
    assert summary.changed == [False]
    row = store.deliveries.delivery_overview(delivery)
    assert row is not None and row.claimed_by == "B" and row.next_attempt_at == T0  # untouched by A
    started = store.outbox.begin_attempts("B", [AttemptStart(delivery, b.fence, 1)], now=later, lease_until=later)
    assert set(started) == {delivery}
    # B vanishes mid-call; C re-claims: B's intent becomes "unknown", still in the log.
    c_time = later + timedelta(seconds=21)
    (c,) = store.outbox.claim_deliveries(
        "C", now=c_time, lease_until=c_time + timedelta(seconds=20), limit=5, channels={"soap"}
    )
    assert c.fence == b.fence + 1
    outcomes = [(x.worker_id, x.outcome, x.error_code) for x in store.outbox.delivery_attempts(delivery)]
    assert outcomes == [("A", "retry", None), ("B", "unknown", "DELIVERY.UNKNOWN")]


def test_the_heartbeat_renews_leases_while_the_engine_turns_and_lets_them_run_out_when_it_is_wedged(store):
    delivery = add_doc(store, R)[R]
    now = datetime.now(UTC)
    store.outbox.claim_deliveries("w", now=now, lease_until=now + timedelta(seconds=2), limit=1, channels={"soap"})
    turned = [time.monotonic()]
    beat = Heartbeat(store, "w", 0.2, lambda: datetime.now(UTC), leases=Leases(2, lambda: turned[0]))
    beat.start()
    try:
        for _ in range(6):  # the engine turns every 0.25 s
            time.sleep(0.25)
            turned[0] = time.monotonic()
        row = store.deliveries.delivery_overview(delivery)
        assert row is not None and row.lease_until is not None
        assert row.lease_until > now + timedelta(seconds=2.5)  # renewed past its first term
        time.sleep(3.5)  # wedged: renewals stop half a lease after the last turn, then the lease runs out
        row = store.deliveries.delivery_overview(delivery)
        assert row is not None and row.lease_until is not None
        assert row.lease_until < datetime.now(UTC)  # free for another worker to claim
    finally:
        beat.stop()


def test_the_peer_key_is_the_same_in_sql_and_in_python(store):
    """Circuits are keyed in SQL (claims) and in Python (records): the two must agree, VDXP agencies without an
    endpoint sharing the configured axis as one peer."""
    store.registry.upsert_agencies(
        [AgencyRecord("000.00.00.V01", "v1", channel="vdxp"), AgencyRecord("000.00.00.V02", "v2", channel="vdxp")],
        now=T0,
    )
    from sqlalchemy import select

    from gateway.db import peer_key
    from gateway.db import tables as t
    from gateway.db.circuits import peer_key_column

    a = t.agencies
    with store.engine.connect() as conn:
        rows = conn.execute(select(a.c.organ_id, a.c.channel, a.c.endpoint, peer_key_column())).all()
    assert rows and all(sql == peer_key(channel, endpoint, organ) for organ, channel, endpoint, sql in rows)
    assert {sql for organ, _c, _e, sql in rows if organ.startswith("000.00.00.V")} == {"vdxp upstream axis"}
    assert {sql for organ, _c, _e, sql in rows if organ in (R, R2)} == {
        "soap http://127.0.0.1:9/",
        "soap http://127.0.0.1:10/",
    }
