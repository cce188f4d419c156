"""The delivery worker's composition root: ``run_worker(settings)`` (``edoc-gateway worker``; issue 4).

It wires the database, the peer adapters (:mod:`gateway.worker.peers`) and the delivery engine
(:class:`gateway.services.delivery.Deliverer`), then runs the engine until stopped: it claims due deliveries whenever
sending capacity frees up and sends them in parallel, at most ``delivery_peer_concurrency`` at once per peer (issue
11). Any number of workers may run, on one host or many (PostgreSQL), and each may be killed at any moment: claims
are short leases that the heartbeat thread renews while the engine turns (:mod:`gateway.worker.heartbeat`), under a
fencing token; every call is preceded by its attempt row; a delivery is recorded delivered only after its adapter
returned.

Signals: SIGTERM and SIGINT stop the worker gracefully — the sends in flight are finished and recorded, the claims
not yet started are released for other workers, the heartbeat row is marked stopped. Logging is configured by the
caller (the CLI), not here.

Alerts (issue 9): unless ``once``, the worker also runs an alert round every ``alerts_interval_seconds`` (0: off) in
its own thread (:mod:`gateway.worker.alerting`), so deliveries never wait for an SMTP server; rounds are single
across all workers by a database lease.

Polling other axes: when the ``[vdxp]`` table names an upstream axis (``endpoint``, ``system_id``, ``secret``) or
the ``[edocvn]`` table a legacy axis (``endpoint``; the logins are the ``legacy_token`` credentials), and its
``poll`` is not false, the worker also fetches what that axis holds for our agencies, every ``poll_seconds``
(default 30), one thread per axis, and once at the start of a ``once`` pass (:mod:`gateway.worker.polling`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings
from gateway.db import CircuitPolicy, Engine, Store, create_engine, head_revision
from gateway.errors import ConfigError, UnavailableError
from gateway.ports import PeerAdapter
from gateway.services.delivery import BatchResult, Deliverer, RetryPolicy
from gateway.services.upstream import PollResult
from gateway.worker.alerting import AlertScheduler, start_scheduler
from gateway.worker.heartbeat import Heartbeat, Leases, new_worker_id, signals
from gateway.worker.peers import ADAPTERS, close_adapters, load_adapters, peer_credentials
from gateway.worker.polling import Polling, Source, open_polling

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerStats(BatchResult):
    """Totals of one :func:`run_worker` run (logged at exit; returned for tests and ``--once`` callers): the
    :class:`~gateway.services.delivery.BatchResult` counters summed over its batches, and the upstream polling."""

    batches: int = 0
    #: Upstream polling (:class:`~gateway.services.upstream.PollResult`): rounds, packages fetched, stored as new,
    #: already stored, refused for good.
    polls: int = 0
    polled: int = 0
    ingested: int = 0
    ingest_duplicates: int = 0
    ingest_refused: int = 0

    def add(self, batch: BatchResult) -> None:
        self.batches += 1
        for f in fields(BatchResult):
            setattr(self, f.name, getattr(self, f.name) + getattr(batch, f.name))

    def add_poll(self, result: PollResult) -> None:
        self.polls += 1
        self.polled += result.polled
        self.ingested += result.ingested
        self.ingest_duplicates += result.duplicates
        self.ingest_refused += result.refused


@dataclass
class _Run:
    """What one :func:`run_worker` call opened, and closes in :meth:`close`."""

    settings: Settings
    worker_id: str
    adapters: dict[str, PeerAdapter]
    owned: bool
    engine: Engine
    store: Store
    deliverer: Deliverer
    heartbeat: Heartbeat
    polling: Polling | None
    alerts: AlertScheduler | None = None
    pollers: list[threading.Thread] = field(default_factory=list)

    def close(self, stats: WorkerStats) -> None:
        if self.alerts is not None:
            self.alerts.stop()
        for thread in self.pollers:
            thread.join(timeout=30)
        self.deliverer.close()
        with contextlib.suppress(UnavailableError):
            stats.released += self.store.outbox.release_claims(self.worker_id)
        self.heartbeat.stop()
        if self.owned:
            close_adapters(self.adapters)
        if self.polling is not None:
            self.polling.close()
        self.engine.dispose()
        log.info(
            "worker %s stopped: %d delivered, %d retried, %d dead, %d released; %d taken in from other axes",
            self.worker_id,
            stats.delivered,
            stats.retried,
            stats.dead,
            stats.released,
            stats.ingested,
        )


def run_worker(
    settings: Settings,
    *,
    stop_event: threading.Event | None = None,
    once: bool = False,
    adapters: Mapping[str, PeerAdapter] | None = None,
    clock: Callable[[], datetime] | None = None,
    worker_id: str | None = None,
    rng: random.Random | None = None,
) -> WorkerStats:
    """Deliver until ``stop_event`` is set (or SIGTERM/SIGINT arrives, in the main thread).

    ``once``: one pass — deliver everything due at the start, then return (retries scheduled meanwhile wait for
    the next run). ``adapters`` replaces the registry (tests); adapters passed in are not closed here. ``clock`` and
    ``rng`` are injectable for tests. Raises :class:`~gateway.errors.ConfigError` for unusable worker settings.
    Each axis configured to be polled (module docstring) is polled every ``poll_seconds``; a ``once`` pass polls
    each once first, then delivers what is due, including what those polls queued.
    """
    settings.require_worker()
    clock = clock or _utcnow
    stop = stop_event or threading.Event()
    run = _open(settings, adapters, clock, worker_id or new_worker_id(), rng)
    stats = WorkerStats()
    try:
        with signals(stop):
            run.heartbeat.start()
            if not once:
                run.alerts = start_scheduler(settings, run.store, run.worker_id, clock)
            _loop(run, stop, once, clock, stats)
    finally:
        run.close(stats)
    return stats


def _open(
    settings: Settings,
    adapters: Mapping[str, PeerAdapter] | None,
    clock: Callable[[], datetime],
    worker_id: str,
    rng: random.Random | None,
) -> _Run:
    """Load the adapters, the pollers and the database; nothing is left open if one of them fails."""
    owned = adapters is None
    active = load_adapters(settings) if adapters is None else dict(adapters)
    if not active:
        log.error("no adapter could be loaded: this worker delivers nothing (channels: %s)", ", ".join(ADAPTERS))
    try:
        polling = open_polling(settings, active, clock)
    except BaseException:
        if owned:
            close_adapters(active)
        raise
    engine = create_engine(settings)
    # Big packages are spooled where the web front spools its bodies (issue 14: read when their send starts).
    store = Store(engine, spool_dir=Path(settings.data_dir) / "spool")
    try:
        _check_schema(store, engine)
    except BaseException:
        if polling is not None:
            polling.close()
        raise
    deliverer = Deliverer(
        store,
        active,
        RetryPolicy.from_settings(settings),
        worker_id=worker_id,
        lease_seconds=settings.worker_lease_seconds,
        call_seconds=settings.adapter_connect_timeout + settings.adapter_read_timeout,
        clock=clock,
        rng=rng,
        credentials=peer_credentials(settings),
        threads=settings.delivery_threads,
        peer_concurrency=settings.delivery_peer_concurrency,
        circuits=CircuitPolicy(
            failures=settings.delivery_circuit_failures,
            open_seconds=settings.delivery_circuit_open_seconds,
            max_open_seconds=settings.delivery_circuit_max_open_seconds,
            probe_seconds=settings.adapter_connect_timeout + settings.adapter_max_read_timeout + 5.0,
        ),
    )
    heartbeat = Heartbeat(
        store,
        worker_id,
        settings.worker_heartbeat_seconds,
        clock,
        leases=Leases(settings.worker_lease_seconds, lambda: deliverer.last_turn),
    )
    sources = polling.sources if polling is not None else ()
    polled = "".join(f"; polling {s.config.source} every {s.config.interval:g} s" for s in sources)
    log.info("worker %s started: channels %s%s", worker_id, ", ".join(sorted(active)) or "none", polled)
    return _Run(settings, worker_id, active, owned, engine, store, deliverer, heartbeat, polling)


def _loop(run: _Run, stop: threading.Event, once: bool, clock: Callable[[], datetime], stats: WorkerStats) -> None:
    """Deliver until stopped (or, ``once``, until nothing due at the start is left); each axis is polled in its
    own thread so that a slow axis never holds deliveries, nor the other axis, back (a ``once`` pass polls first)."""
    settings, polling = run.settings, run.polling
    due_before = None
    sources = polling.sources if polling is not None else ()
    if once:
        for source in sources:
            stats.add_poll(source.poller.poll_once(stop))
        due_before = clock()  # what the polls queued for push channels goes out in this pass too
    elif polling is not None:
        for source in sources:
            thread = threading.Thread(
                target=_poll, args=(source, polling, stop, stats), name=f"edoc-poll-{source.config.channel}",
                daemon=True,
            )  # fmt: skip
            run.pollers.append(thread)
            thread.start()
    try:
        stats.add(
            run.deliverer.run(
                stop,
                poll_seconds=settings.worker_poll_seconds,
                due_before=due_before,
                until_idle=once,
                batch=settings.worker_batch,
            )
        )
    except UnavailableError:
        if not stop.is_set():
            raise
        log.warning("database unavailable while stopping: leases expire, unrecorded sends are marked unknown")


def _poll(source: Source, polling: Polling, stop: threading.Event, stats: WorkerStats) -> None:
    """Polling rounds of one axis every ``poll_seconds`` until stopped (a failed round is logged by the poller)."""
    while not stop.is_set():
        try:
            result = source.poller.poll_once(stop)
            with polling.stats_lock:
                stats.add_poll(result)
        except Exception:
            log.exception("%s polling round failed", source.config.channel)
        stop.wait(source.config.interval)


def _check_schema(store: Store, engine: Engine) -> None:
    """Refuse to run on a schema other than the one this code was written for (``edoc-gateway db upgrade``
    first); a database without alembic bookkeeping (``Store.create_schema``, tests) is taken as it is."""
    revision = store.schema_revision()
    if revision is not None and revision != head_revision():
        engine.dispose()
        raise ConfigError(
            f"the database schema is at revision {revision}, this worker needs {head_revision()}: "
            "run `edoc-gateway db upgrade`",
            revision=revision,
        )


__all__ = ["WorkerStats", "run_worker"]
