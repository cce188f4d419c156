"""The delivery engine under faults (issue 11 "Show"): real worker processes (kill -9 is real), documents queued by
real intake (:class:`~gateway.services.gateway.GatewayService`), and REST peers on loopback that record every
contact — on SQLite and on PostgreSQL.

* a worker killed with -9 mid-batch: what it held is re-claimed and delivered within 30 s;
* the database gone for 20 s under load: everything delivered within 30 s of its return;
* one peer answering in 5 s: deliveries to the healthy peers keep p90 latency (intake → arrival) under 2 s;
* one peer down (it accepts TCP connections and resets them) for ``EDOC_GATEWAY_TEST_DOWN_SECONDS`` (default 60 s;
  the issue's 2 minutes with 120): a few connection attempts per minute to it, not a storm;
* and in every scenario the books balance: each POST a peer saw is an attempt row of that delivery, every accepted
  document is delivered, and no peer stored a message twice.

The peers are :class:`Hook` — the REST webhook contract of :mod:`adapters.rest` (HMAC checked, de-duplicated on
``messageId`` like :mod:`adapters.rest.receiver`), served by threads of this process so that the test reads what
they saw directly. Each scenario prints its figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from soap_receiver import start_worker, worker_env
from test_e2e import A, _package

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry

#: The receiving agencies (one REST peer each).
PEERS = ("000.00.00.K01", "000.00.00.K02", "000.00.00.K03")
#: Worker settings of every scenario: quick retries, short leases, small breaker periods (engine names, issue 11).
#: Those the running engine does not know yet are left out (an unknown EDOC_GATEWAY_* variable is a config error).
WORKER_SETTINGS: dict[str, object] = {
    "worker_batch": 20,
    "worker_poll_seconds": 0.2,
    "worker_heartbeat_seconds": 2,
    "worker_stale_seconds": 30,
    "retry_base_seconds": 0.5,
    "retry_max_seconds": 5,
    "adapter_connect_timeout": 2,
    "adapter_read_timeout": 10,
    "worker_lease_seconds": 20,
    "delivery_threads": 16,
    "delivery_peer_concurrency": 4,
    "delivery_circuit_failures": 5,
    "delivery_circuit_open_seconds": 10,
    "delivery_circuit_max_open_seconds": 20,
}
KNOWN = {f.name for f in dataclasses.fields(Settings)}
#: How long the down peer stays down (scenario d). The issue says 2 minutes; 60 s by default keeps this file's
#: runtime within the CI budget and still spans a full minute of "attempts per minute".
DOWN_SECONDS = float(os.environ.get("EDOC_GATEWAY_TEST_DOWN_SECONDS", "60"))

pytestmark = pytest.mark.faults


# ================================================================================================ the peers


@dataclass(frozen=True)
class Post:
    """One complete POST a peer read: the delivery it carries, when it arrived (wall clock), whether it was
    stored (False: a repeat of a message already stored, answered 200 and not stored again)."""

    message_id: str
    arrived: float
    stored: bool


@dataclass
class Hook:
    """A REST peer (webhook) on 127.0.0.1 with a mode switched between requests.

    ``normal``: check the HMAC, store once per messageId, answer 200. ``slow <s>``: the same after ``s`` seconds
    (the message IS stored even if the sender gave up waiting). ``down``: every TCP connection is accepted and
    reset at once, before anything is read — counted in :attr:`connects` like every other connection.
    """

    key: str
    mode: str = "normal"
    posts: list[Post] = field(default_factory=list)
    connects: list[tuple[float, str]] = field(default_factory=list)  # (time, mode at the time)
    stored: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> None:
        hook = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A sender that gave up (timeout, kill -9) closed its end: nothing to report."""

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with hook.lock:
                    hook.connects.append((time.time(), hook.mode))
                    down = hook.mode == "down"
                if down:
                    _reset(request)
                return not down

        self.server = Server(("127.0.0.1", 0), _Handler)
        self.server.hook = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, name="hook", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def connects_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for at, _ in self.connects if start <= at < end)

    def first_arrivals(self) -> dict[str, float]:
        with self.lock:
            first: dict[str, float] = {}
            for p in self.posts:
                first.setdefault(p.message_id, p.arrived)
            return first


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0): the peer's process is gone, its socket is not."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real webhook endpoint behind a proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        from adapters.rest import MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

        hook: Hook = self.server.hook  # type: ignore[attr-defined]
        if hook.mode == "down":  # a kept-alive connection of before the outage
            self.close_connection = True
            _reset(self.connection)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.time()
        if not verify(
            hook.key.encode(), self.headers.get(TIMESTAMP_HEADER, ""), body, self.headers.get(SIGNATURE_HEADER, "")
        ):
            return self._answer(401, {"error": "bad or stale signature"})
        message_id = str(json.loads(body)["messageId"])
        if message_id != self.headers.get(MESSAGE_ID_HEADER):
            return self._answer(400, {"error": "bad messageId"})
        with hook.lock:
            hook.in_flight += 1
            mode = hook.mode.split()
        try:
            if mode[0] == "slow":
                time.sleep(float(mode[1]))
            with hook.lock:
                first = hook.stored[message_id] == 0
                if first:
                    hook.stored[message_id] += 1
                hook.posts.append(Post(message_id, arrived, first))
        finally:
            with hook.lock:
                hook.in_flight -= 1
        self._answer(200, {"accepted": True, "receiverRef": message_id})

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ================================================================================================ the rig


@dataclass
class Rig:
    """A gateway's database with the peers registered, intake in this process, worker processes beside it."""

    tmp: Path
    database_url: str
    settings: Settings
    service: GatewayService
    hooks: dict[str, Hook]
    env: dict[str, str]
    engine: sa.Engine
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: doc_id → wall-clock time its receipt came back (the document is committed, its deliveries queued).
    accepted: dict[str, float] = field(default_factory=dict)
    _numbers: Iterator[int] = field(default_factory=lambda: iter(range(10**6)))

    # ------------------------------------------------------------------------------------------ intake

    def send(self, *recipients: str) -> str:
        """One real edXML package from A to ``recipients`` through intake; its doc_id."""
        data, _ = _package(None, number=f"{next(self._numbers):05d}", to=recipients, sign=False)
        receipt = self.service.submit("SA", data)
        self.accepted[receipt.doc_id] = time.time()
        return receipt.doc_id

    def feed(self, recipients_of: Callable[[int], tuple[str, ...]], count: int, per_second: float) -> threading.Thread:
        """Submit ``count`` packages at ``per_second`` from a thread (load arriving while workers deliver)."""

        def run() -> None:
            start = time.monotonic()
            for n in range(count):
                delay = start + n / per_second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.send(*recipients_of(n))

        thread = threading.Thread(target=run, name="feed")
        thread.start()
        return thread

    # ------------------------------------------------------------------------------------------ workers

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = start_worker(self.env, self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def worker_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log"))
        )

    # ------------------------------------------------------------------------------------------ the books

    def deliveries(self) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT delivery_id, doc_id, recipient, state FROM deliveries")).all())

    def left(self) -> int | None:
        """Deliveries not delivered yet; None while the database does not answer."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM deliveries WHERE state <> 'delivered'")).scalar_one()
        except sa.exc.OperationalError:
            return None

    def wait_delivered(self, timeout: float, what: str) -> float:
        """Wait until every delivery is delivered; the monotonic time it was seen so."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.left()
            if left == 0:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {left} deliveries still not delivered\n{self.worker_logs()}")
            time.sleep(0.1)

    def attempts(self) -> dict[str, Counter[str]]:
        """delivery_id → Counter of its attempt rows' outcomes."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT delivery_id, outcome FROM delivery_attempts")).all()
        out: dict[str, Counter[str]] = {}
        for delivery_id, outcome in rows:
            out.setdefault(delivery_id, Counter())[outcome] += 1
        return out

    def books(self) -> tuple[dict[str, int], list[str]]:
        """The books of issue 11 "Show": 0 lost, 0 stored twice, every POST a peer saw in the attempt log. Returns a
        few totals for the report and what does not balance (the test asserts it is nothing)."""
        problems: list[str] = []
        rows = self.deliveries()
        states = Counter(r.state for r in rows)
        if not rows or set(states) != {"delivered"}:
            problems.append(f"delivery states {dict(states)}")
        if {r.doc_id for r in rows} != set(self.accepted):
            problems.append("an accepted document has no delivery")
        attempts = self.attempts()
        unlogged: list[tuple[str, int, int]] = []
        posts = 0
        for organ, hook in self.hooks.items():
            mine = {r.delivery_id for r in rows if r.recipient == organ}
            with hook.lock:
                stored = Counter(hook.stored)
                seen = Counter(p.message_id for p in hook.posts)
            if set(stored) != mine:
                problems.append(f"{organ}: lost {sorted(mine - set(stored))}, foreign {sorted(set(stored) - mine)}")
            twice = [m for m, n in stored.items() if n > 1]
            if twice:
                problems.append(f"{organ} stored twice: {twice}")
            posts += sum(seen.values())
            for message_id, n in seen.items():
                logged = sum(attempts.get(message_id, Counter()).values())
                if logged < n:
                    unlogged.append((message_id, n, logged))
        if unlogged:
            problems.append(f"POSTs a peer saw that the attempt log lacks (delivery, POSTs, attempt rows): {unlogged}")
        outcomes = sum(attempts.values(), Counter())
        figures = {
            "deliveries": len(rows),
            "POSTs seen": posts,
            "POSTs not in the attempt log": sum(n - logged for _, n, logged in unlogged),
            **{f"attempts {k}": v for k, v in sorted(outcomes.items())},
        }
        return figures, problems


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@pytest.fixture
def rig(tmp_path: Path, database_url: str, pki) -> Iterator[Rig]:
    yield from _rig(tmp_path, database_url, pki)


def _rig(tmp_path: Path, database_url: str, pki: Any) -> Iterator[Rig]:
    hooks = {organ: Hook(secrets.token_urlsafe(24)) for organ in PEERS}
    for hook in hooks.values():
        hook.start()
    config = tmp_path / "gateway.toml"  # channel credentials live in the configuration file, not the database
    config.write_text(
        "".join(f'[credentials."{organ}"]\nhmac_key = "{hook.key}"\n' for organ, hook in hooks.items()),
        encoding="utf-8",
    )
    env = {
        "EDOC_GATEWAY_DATA_DIR": str(tmp_path),
        "EDOC_GATEWAY_DATABASE_URL": database_url,
        "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
        "EDOC_GATEWAY_GATEWAY_KEY": str(pki.gateway_key),
        "EDOC_GATEWAY_GATEWAY_CERT": str(pki.gateway_cert),
        "EDOC_GATEWAY_TRUST_STORE": str(pki.trust),
        "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in pki.crls),
    }
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(
            [
                {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "verify-if-present"},
                *(
                    {"organ_id": organ, "name": f"peer {organ}", "channel": "rest", "endpoint": hook.url}
                    for organ, hook in hooks.items()
                ),
            ]
        )
        registry.add_system("SA", [A])
    wenv = worker_env(database_url, tmp_path, **{k: v for k, v in WORKER_SETTINGS.items() if k in KNOWN})
    wenv["EDOC_GATEWAY_CONFIG"] = str(config)
    service = GatewayService.from_settings(settings)
    engine = sa.create_engine(settings.effective_database_url, pool_pre_ping=True)
    rig = Rig(tmp_path, database_url, settings, service, hooks, wenv, engine)
    try:
        yield rig
    finally:
        rig.stop_workers()
        for hook in hooks.values():
            hook.stop()
        service.close()
        engine.dispose()


def _report(name: str, rig: Rig, figures: dict[str, object]) -> list[str]:
    """Print the scenario's figures and the books' totals (``-s``); what does not balance in the books."""
    books, problems = rig.books()
    db = "postgresql" if rig.database_url.startswith("postgresql") else "sqlite"
    shown = {**figures, **books}
    print(f"\n[{name} / {db}] " + ", ".join(f"{k} {v}" for k, v in shown.items()), flush=True)
    for problem in problems:
        print(f"  BOOKS: {problem[:2000]}", flush=True)
    return problems


# ================================================================================================ scenarios


def test_a_worker_killed_mid_batch_its_deliveries_are_reclaimed_within_30_s(rig: Rig):
    """kill -9 of a worker with sends in flight to slowish peers: a second worker re-claims what the first held
    and everything is delivered within 30 s of the kill; the POSTs the dead worker made are in the attempt log."""
    k1, k2 = PEERS[0], PEERS[1]
    for hook in (rig.hooks[k1], rig.hooks[k2]):
        hook.mode = "slow 0.3"
    for _ in range(40):
        rig.send(k1, k2)
    first = rig.start_worker()
    deadline = time.monotonic() + 60
    while not (len(rig.hooks[k1].posts) + len(rig.hooks[k2].posts) >= 10 and rig.hooks[k1].in_flight):
        assert first.poll() is None and time.monotonic() < deadline, rig.worker_logs()
        time.sleep(0.01)
    rig.kill9(first)
    killed_at = time.monotonic()
    with rig.engine.connect() as conn:
        held = set(conn.scalars(sa.text("SELECT delivery_id FROM outbox WHERE claimed_by IS NOT NULL")))
    rig.start_worker()
    done = rig.wait_delivered(60, "after the kill")
    attempts = rig.attempts()
    problems = _report(
        "kill -9",
        rig,
        {
            "held by the killed worker": len(held),
            "drained after the kill s": f"{done - killed_at:.1f}",
            "held, attempted by the dead worker": sum(1 for d in held if d in attempts),
        },
    )
    assert held, "the killed worker held nothing: the kill did not hit mid-batch"
    assert done - killed_at <= 30, f"drained {done - killed_at:.1f} s after the kill"
    assert not problems, problems


@contextlib.contextmanager
def _sqlite_locked(path: Path, seconds: float) -> Iterator[None]:
    """A separate process holds SQLite's write lock (BEGIN EXCLUSIVE) for ``seconds``: no writer gets through."""
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('ROLLBACK')\n"
    )
    with subprocess.Popen([sys.executable, "-c", script, str(path), str(seconds)], stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
            yield
            proc.wait(timeout=seconds + 30)
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.fixture
def outage_rig(tmp_path: Path, request: pytest.FixtureRequest, pki) -> Iterator[tuple[Rig, Any]]:
    """A rig whose database can be taken away: SQLite, or PostgreSQL on a cluster of its own (stopped and started
    by the test; the session's cluster stays up for every other test)."""
    if request.param == "sqlite":
        yield from ((r, None) for r in _rig(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", pki))
        return
    from pgcluster import PgCluster

    if os.environ.get("EDOC_GATEWAY_TEST_PG_URL"):
        pytest.skip("an external PostgreSQL (EDOC_GATEWAY_TEST_PG_URL) cannot be stopped by the test")
    cluster = PgCluster()
    try:
        yield from ((r, cluster) for r in _rig(tmp_path, cluster.new_database(), pki))
    finally:
        cluster.stop()


@pytest.mark.parametrize("outage_rig", ["sqlite", "postgresql"], indirect=True)
def test_b_database_outage_of_20_s_under_load_drains_within_30_s_of_recovery(outage_rig):
    """The database gone for 20 s while two workers deliver (PostgreSQL stopped like a crash, SQLite's write lock
    held by another process): outcomes of sends in flight are kept and recorded later, no claim stays stranded,
    and the rest drains within 30 s of the database's return."""
    rig, cluster = outage_rig
    k1, k2 = PEERS[0], PEERS[1]
    for hook in (rig.hooks[k1], rig.hooks[k2]):
        hook.mode = "slow 0.2"
    for _ in range(150):
        rig.send(k1, k2)
    for _ in range(2):
        rig.start_worker()
    deadline = time.monotonic() + 120
    while len(rig.hooks[k1].posts) + len(rig.hooks[k2].posts) < 60:
        assert time.monotonic() < deadline, rig.worker_logs()
        time.sleep(0.02)
    outage = 20.0
    if cluster is None:
        with _sqlite_locked(Path(rig.database_url.removeprefix("sqlite:///")), outage):
            pass
    else:
        cluster.pause()
        time.sleep(outage)
        cluster.resume()
    up = time.monotonic()
    left_at_recovery = rig.left()
    done = rig.wait_delivered(90, "after the outage")
    problems = _report(
        "database outage 20 s",
        rig,
        {
            "left at recovery": left_at_recovery,
            "drained after recovery s": f"{done - up:.1f}",
        },
    )
    assert left_at_recovery, "the outage hit after the work was done"
    assert done - up <= 30, f"drained {done - up:.1f} s after the database came back"
    assert not problems, problems


def test_c_a_peer_answering_in_5_s_does_not_delay_the_others(rig: Rig):
    """Documents arriving at 4/s for two healthy peers, every third also for a peer answering in 5 s: the slow
    peer holds a few sending slots, never the healthy peers' turn (p90 intake → arrival < 2 s)."""
    slow, h1, h2 = PEERS
    rig.hooks[slow].mode = "slow 5"
    for _ in range(2):
        rig.start_worker()
    feed = rig.feed(lambda n: (h1, h2, slow) if n % 3 == 0 else (h1, h2), count=60, per_second=4)
    feed.join(timeout=120)
    fed = time.monotonic()
    done = rig.wait_delivered(120, "with a slow peer")
    rows = rig.deliveries()
    latency: dict[str, list[float]] = {}
    for organ in PEERS:
        arrivals = rig.hooks[organ].first_arrivals()
        latency[organ] = [arrivals[r.delivery_id] - rig.accepted[r.doc_id] for r in rows if r.recipient == organ]
    healthy = latency[h1] + latency[h2]
    problems = _report(
        "slow peer 5 s",
        rig,
        {
            "healthy p50 s": f"{_p(healthy, 0.5):.2f}",
            "healthy p90 s": f"{_p(healthy, 0.9):.2f}",
            "healthy max s": f"{max(healthy):.2f}",
            "slow peer p90 s": f"{_p(latency[slow], 0.9):.1f}",
            "drained s after feed": f"{done - fed:.1f}",
        },
    )
    assert _p(healthy, 0.9) < 2.0, f"p90 latency to the healthy peers {_p(healthy, 0.9):.2f} s"
    assert not problems, problems


def test_d_a_peer_down_gets_a_few_attempts_per_minute_not_a_storm(rig: Rig):
    """A peer that resets every connection, with 30 deliveries queued to it: after the breaker's opening burst,
    a few probes per minute (every TCP connect counted), the healthy peer unaffected, all delivered once it is
    back."""
    down, healthy = PEERS[0], PEERS[1]
    rig.hooks[down].mode = "down"
    for _ in range(30):
        rig.send(down, healthy)
    went_down = time.time()
    for _ in range(2):
        rig.start_worker()
    time.sleep(DOWN_SECONDS)
    came_up = time.time()
    rig.hooks[down].mode = "normal"
    rig.wait_delivered(60, "after the peer came back")
    recovered = time.time()
    total = rig.hooks[down].connects_between(went_down, came_up)
    opening = rig.hooks[down].connects_between(went_down, went_down + 15)
    later = total - opening
    per_minute = later / ((DOWN_SECONDS - 15) / 60)
    arrivals = rig.hooks[healthy].first_arrivals()
    healthy_latency = [
        arrivals[r.delivery_id] - rig.accepted[r.doc_id] for r in rig.deliveries() if r.recipient == healthy
    ]
    problems = _report(
        f"peer down {DOWN_SECONDS:g} s",
        rig,
        {
            "connects while down": total,
            "in the first 15 s": opening,
            "per minute after": f"{per_minute:.1f}",
            "drained after it came back s": f"{recovered - came_up:.1f}",
            "healthy peer max latency s": f"{max(healthy_latency):.1f}",
        },
    )
    # Before the breaker opens: its failure threshold, plus the sends already in flight in each worker (two workers,
    # each at most delivery_peer_concurrency to one peer) and a retry of each, plus the first probe (at 10 s).
    burst = 5 + 2 * (2 * 4) + 2
    assert opening <= burst, f"{opening} connection attempts in the first 15 s of the outage (at most {burst})"
    assert per_minute <= 8, f"{per_minute:.1f} connection attempts per minute to a peer that is down"
    assert not problems, problems
