"""PostgreSQL only: concurrent workers claim disjoint deliveries, and SKIP LOCKED really is in the statement
(SQLAlchemy drops ``FOR UPDATE`` silently where a dialect lacks it; a claimer must never wait for another)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from test_worker import SENDER, T0, Clock, FakeAdapter, R, add_doc, claim_concurrently

from gateway.db import AgencyRecord, AttemptRecord, CircuitPolicy, FinishedAttempt, Store, create_engine
from gateway.services.delivery import Deliverer, RetryPolicy


@pytest.fixture
def pg(pg_cluster):
    url = pg_cluster.new_database()
    store = Store(create_engine(url))
    store.create_schema()
    store.registry.upsert_agencies(
        [AgencyRecord(organ_id=SENDER, name="s"), AgencyRecord(R, "r", channel="soap")], now=T0
    )
    yield url, store
    store.engine.dispose()


def test_four_concurrent_claimers_take_200_deliveries_without_overlap(pg):
    url, store = pg
    expected = {add_doc(store, R)[R] for _ in range(200)}
    claimed = claim_concurrently(url, workers=4, limit=7)
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)), "a delivery was claimed twice"
    assert set(all_ids) == expected, "a delivery was never claimed"
    assert sum(1 for ids in claimed.values() if ids) >= 2, "the claimers did not actually run concurrently"


def test_a_claimer_skips_rows_another_transaction_holds_instead_of_waiting(pg):
    url, store = pg
    ids = [add_doc(store, R, at=T0 + timedelta(seconds=i))[R] for i in range(6)]
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    now = T0 + timedelta(minutes=1)
    with psycopg.connect(dsn) as holder:
        # another worker's claim transaction, still open, holding the three earliest rows
        holder.execute("SELECT id FROM outbox WHERE delivery_id = ANY(%s) FOR UPDATE", (ids[:3],)).fetchall()
        started = time.monotonic()
        got = store.outbox.claim_deliveries(
            "w2", now=now, lease_until=now + timedelta(minutes=5), limit=10, channels={"soap"}
        )
        waited = time.monotonic() - started
        holder.rollback()
    assert [c.delivery_id for c in got] == ids[3:]
    assert waited < 2, f"the claim waited {waited:.1f} s for a lock"


def test_claims_race_with_finishing_workers_without_losing_anything(pg):
    """Two worker threads delivering (claim + finish) 100 deliveries concurrently: each delivered exactly once."""
    url, store = pg
    expected = {add_doc(store, R)[R] for _ in range(100)}
    adapters = [FakeAdapter(), FakeAdapter()]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        own = Store(create_engine(url))
        try:
            d = Deliverer(
                own,
                {"soap": adapters[index]},
                RetryPolicy(),
                worker_id=f"w{index}",
                lease_seconds=60,
                call_seconds=10,
                clock=Clock(T0 + timedelta(minutes=1)),
                rng=random.Random(index),
            )
            while d.run_batch(5).claimed:
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    sent = [p.delivery_id for a in adapters for p in a.calls]
    assert sorted(sent) == sorted(expected)  # each exactly once
    assert {r.state for r in store.deliveries.list_deliveries(limit=1000)} == {"delivered"}


def test_an_open_circuit_gives_exactly_one_probe_to_four_racing_claimers(pg):
    """The half-open probe is taken atomically: four workers claiming at once while a failing peer's interval ends
    get one of its ten due deliveries between them, not one each (PostgreSQL: real concurrent transactions)."""
    url, store = pg
    ids = {add_doc(store, R)[R] for _ in range(10)}
    policy = CircuitPolicy(failures=1, open_seconds=10)
    now = T0 + timedelta(minutes=1)
    (first,) = store.outbox.claim_deliveries("w0", now=now, lease_until=now, limit=1, channels={"soap"})
    record = AttemptRecord(first.delivery_id, 1, now, 5, "retry", worker_id="w0", error_code="DELIVERY.UNREACHABLE")
    failed = FinishedAttempt(replace(record, next_attempt_at=now), fence=first.fence, peer=first.peer, peer_failed=True)
    assert store.outbox.finish_attempts([failed], now=now, circuits=policy).opened == {first.peer}
    later = now + timedelta(seconds=11)
    barrier = threading.Barrier(4)
    got: dict[int, list[str]] = {}

    def claim(index: int) -> None:
        own = Store(create_engine(url))
        try:
            barrier.wait()
            claims = own.outbox.claim_deliveries(
                f"w{index}",
                now=later,
                lease_until=later + timedelta(minutes=1),
                limit=10,
                channels={"soap"},
                circuits=policy,
            )
            got[index] = [c.delivery_id for c in claims]
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    claimed = [d for ids_ in got.values() for d in ids_]
    assert len(claimed) == 1 and claimed[0] in ids
    (circuit,) = store.outbox.circuits()
    assert circuit.state == "probing"
