"""The delivery worker's composition root: ``run_worker(settings)`` (``edoc-gateway worker``; issue 4).

It wires the database, the peer adapters and :class:`gateway.services.delivery.Deliverer`, then loops: claim a
batch of due deliveries, deliver them, sleep ``worker_poll_seconds`` when there is nothing to do. Any number of
workers may run, on one host or many (PostgreSQL), and each may be killed at any moment: claims are leases, and a
delivery is recorded delivered only after its adapter returned.

Adapters are chosen by channel through :data:`ADAPTERS`, a map of dotted paths (``module:attribute``), so an
adapter package can be added or left out without touching this module (warehouse's "backends chosen by
configuration"). The attribute is a factory returning a :class:`gateway.ports.PeerAdapter`: a class with a
``from_settings(settings)`` classmethod, or a callable given whichever of ``settings``, ``connect_timeout`` and
``read_timeout`` it accepts. A TOML configuration file may
change the map with an ``[adapters]`` table (``vdxp = "my_package.vdxp:Adapter"``; an empty string disables a
channel). A channel whose module is missing or whose factory fails is skipped with a logged warning: the worker
still delivers on the other channels, and leaves that channel's deliveries to workers that have its adapter.

Signals: SIGTERM and SIGINT stop the worker gracefully — the delivery in hand is finished and recorded, the claims
not yet started are released for other workers, the heartbeat row is marked stopped. Logging is configured by
the caller (the CLI), not here.

Per-agency channel credentials (``Peer.credentials``) come from ``[credentials."<OrganId>"]`` tables of the
configuration file (:func:`peer_credentials`).

Upstream VDXP polling: when the ``[vdxp]`` table names an upstream axis (``endpoint``, ``system_id``, ``secret``)
and ``poll`` is not false, the worker also fetches what the axis holds for our agencies, every ``poll_seconds``
(default 30) and once at the start of a ``once`` pass, through the ``vdxp`` adapter's
:class:`~gateway.ports.PollingAdapter` side and :class:`gateway.services.upstream.UpstreamPoller`: each package
enters our intake (:meth:`GatewayService.ingest_upstream`) and is acknowledged at the axis. The axis pushes
nothing to a VDXP client, so without this a province would send upstream but never receive. Ingesting needs the
service's keys and trust store (signature policy, receipts): a worker configured to poll refuses to start without
them (:class:`~gateway.errors.ConfigError`).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, cast

from gateway.config import Settings
from gateway.db import Engine, Store, WorkerHeartbeat, create_engine, head_revision
from gateway.errors import ConfigError, UnavailableError
from gateway.ports import PeerAdapter, PollingAdapter
from gateway.services.api import Receipt
from gateway.services.delivery import (
    HEARTBEAT_RETENTION,
    BatchResult,
    Deliverer,
    RetryPolicy,
)
from gateway.services.gateway import GatewayService
from gateway.services.routing import PUSH_CHANNELS
from gateway.services.upstream import PollResult, UpstreamPoller

log = logging.getLogger(__name__)

#: channel → ``module:factory``. The REST and VDXP adapters live in their own packages (issue 4 parts owned by
#: others); until they exist those channels are skipped with a warning.
ADAPTERS: Final[Mapping[str, str]] = {
    "soap": "adapters.soap:SoapAdapter",
    "rest": "adapters.rest:RestAdapter",
    "vdxp": "adapters.vdxp:VdxpAdapter",
}

#: Longest wait between attempts to reach a database that is down.
_MAX_DB_BACKOFF = 30.0
#: In ``once`` mode, give up after this many consecutive database failures instead of waiting for ever.
_ONCE_DB_FAILURES = 3
#: Upstream polling defaults (``[vdxp]`` ``poll_seconds``, ``poll_limit``): a national axis is shared by every
#: province, so it is asked every half minute, not at the delivery loop's pace.
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_POLL_LIMIT = 100


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerStats:
    """Totals of one :func:`run_worker` run (logged at exit; returned for tests and ``--once`` callers)."""

    batches: int = 0
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    postponed: int = 0
    lost: int = 0
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


@dataclass(frozen=True)
class UpstreamConfig:
    """The polling part of the ``[vdxp]`` table (the adapter reads endpoint and credentials itself)."""

    source: str
    interval: float
    limit: int


def upstream_config(settings: Settings) -> UpstreamConfig | None:
    """Polling settings when the ``[vdxp]`` table names an upstream axis and ``poll`` is not false; else None."""
    table = settings.extra.get("vdxp")
    if not isinstance(table, Mapping):
        return None
    endpoint, system_id, secret = (str(table.get(k) or "").strip() for k in ("endpoint", "system_id", "secret"))
    if not (endpoint and system_id and secret):
        return None
    poll = table.get("poll", True)
    if not isinstance(poll, bool):
        raise ConfigError("[vdxp] poll must be true or false")
    if not poll:
        return None
    try:
        interval = float(table.get("poll_seconds", DEFAULT_POLL_SECONDS))
        limit = int(table.get("poll_limit", DEFAULT_POLL_LIMIT))
    except (TypeError, ValueError):
        raise ConfigError("[vdxp] poll_seconds and poll_limit must be numbers") from None
    if not interval > 0 or limit < 1:
        raise ConfigError("[vdxp] poll_seconds must be positive and poll_limit at least 1")
    return UpstreamConfig(source=f"vdxp:{system_id}@{endpoint}", interval=interval, limit=limit)


@dataclass
class _Upstream:
    """The poller and the service it ingests through (closed with the worker)."""

    config: UpstreamConfig
    poller: UpstreamPoller
    service: GatewayService


def _upstream(
    settings: Settings, adapters: Mapping[str, PeerAdapter], clock: Callable[[], datetime]
) -> _Upstream | None:
    config = upstream_config(settings)
    if config is None:
        return None
    adapter = adapters.get("vdxp")
    if adapter is None or not (hasattr(adapter, "poll") and hasattr(adapter, "acknowledge")):
        log.error("[vdxp] names an upstream axis but no polling vdxp adapter is loaded: not polling it")
        return None
    service = GatewayService.from_settings(settings, clock=clock)  # ConfigError without keys: stop start-up

    def ingest(data: bytes, reference: str, recipient: str | None) -> Receipt:
        return service.ingest_upstream(data, source=config.source, reference=reference, recipient=recipient)

    poller = UpstreamPoller(cast(PollingAdapter, adapter), ingest, limit=config.limit)
    return _Upstream(config, poller, service)


def adapter_registry(settings: Settings) -> dict[str, str]:
    """:data:`ADAPTERS`, changed by the ``[adapters]`` table of the configuration file if there is one."""
    registry = dict(ADAPTERS)
    configured = settings.extra.get("adapters")
    if isinstance(configured, Mapping):
        registry.update({str(k): str(v) for k, v in configured.items()})
    return {channel: target for channel, target in registry.items() if target and channel in PUSH_CHANNELS}


def load_adapters(settings: Settings, registry: Mapping[str, str] | None = None) -> dict[str, PeerAdapter]:
    """Import and build one adapter per channel; a channel that cannot be loaded is skipped (never raises)."""
    adapters: dict[str, PeerAdapter] = {}
    for channel, target in (adapter_registry(settings) if registry is None else dict(registry)).items():
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            log.warning(
                "channel %s: no adapter (%s: module %s not found); not delivering it", channel, target, exc.name
            )
            continue
        except Exception:
            log.exception("channel %s: adapter module %s failed to import; not delivering it", channel, module_name)
            continue
        try:
            adapters[channel] = _build(getattr(module, attr or "Adapter"), settings)
        except Exception:
            log.exception("channel %s: adapter %s could not be created; not delivering it", channel, target)
    return adapters


def _build(factory: Any, settings: Settings) -> PeerAdapter:
    """``factory.from_settings(settings)`` if it has one; else ``factory(**what it accepts)`` among ``settings``,
    ``connect_timeout`` and ``read_timeout`` (the adapter timeouts of the settings)."""
    from_settings = getattr(factory, "from_settings", None)
    if from_settings is not None:
        return from_settings(settings)
    offered = {
        "settings": settings,
        "connect_timeout": settings.adapter_connect_timeout,
        "read_timeout": settings.adapter_read_timeout,
    }
    accepted = inspect.signature(factory).parameters
    return factory(**{name: value for name, value in offered.items() if name in accepted})


def peer_credentials(settings: Settings) -> Callable[[str, str], dict[str, str]]:
    """Per-agency channel credentials (the REST webhook ``hmac_key``, VDXP ``system_id``/``secret``), from the
    ``[credentials."<OrganId>"]`` tables of the configuration file — kept out of the database and of the
    environment. An agency without a table gets ``{}`` (the adapter decides whether it can do without)."""
    table = settings.extra.get("credentials")
    known: dict[str, dict[str, str]] = {}
    if isinstance(table, Mapping):
        for organ_id, values in table.items():
            if isinstance(values, Mapping):
                known[str(organ_id)] = {str(k): str(v) for k, v in values.items()}

    def lookup(organ_id: str, _channel: str) -> dict[str, str]:
        return dict(known.get(organ_id, {}))

    return lookup


def new_worker_id() -> str:
    """``host:pid:random`` — unique per process, readable in the heartbeat table and the attempt log."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


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
    With an upstream axis configured (module docstring), it is polled every ``poll_seconds``; a ``once`` pass
    polls once first, then delivers what is due, including what that poll queued.
    """
    settings.require_worker()
    clock = clock or _utcnow
    stop = stop_event or threading.Event()
    owned = adapters is None
    active = load_adapters(settings) if adapters is None else dict(adapters)
    if not active:
        log.error("no adapter could be loaded: this worker delivers nothing (channels: %s)", ", ".join(ADAPTERS))
    worker_id = worker_id or new_worker_id()
    try:
        upstream = _upstream(settings, active, clock)
    except BaseException:
        if owned:
            _close_adapters(active)
        raise
    engine = create_engine(settings)
    store = Store(engine)
    try:
        _check_schema(store, engine)
    except BaseException:
        if upstream is not None:
            upstream.service.close()
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
    )
    stats = WorkerStats()
    heartbeat = _Heartbeat(store, worker_id, settings.worker_heartbeat_seconds, clock)
    due_before = clock() if once else None
    next_poll = 0.0  # time.monotonic() of the next upstream poll round
    log.info(
        "worker %s started: channels %s%s",
        worker_id,
        ", ".join(sorted(active)) or "none",
        f"; polling {upstream.config.source} every {upstream.config.interval:g} s" if upstream else "",
    )
    try:
        with _signals(stop):
            heartbeat.start()
            if upstream is not None and once:
                stats.add_poll(upstream.poller.poll_once(stop))
                due_before = clock()  # what the poll queued for push channels goes out in this pass too
            failures = 0
            while not stop.is_set():
                if upstream is not None and not once and time.monotonic() >= next_poll:
                    stats.add_poll(upstream.poller.poll_once(stop))
                    next_poll = time.monotonic() + upstream.config.interval
                try:
                    batch = deliverer.run_batch(settings.worker_batch, stop=stop, due_before=due_before)
                except UnavailableError as exc:
                    failures += 1
                    if once and failures >= _ONCE_DB_FAILURES:
                        raise
                    wait = min(_MAX_DB_BACKOFF, settings.worker_poll_seconds * 2**failures)
                    log.warning("database unavailable (%s); next try in %.1f s", exc, wait)
                    stop.wait(wait)
                    continue
                failures = 0
                stats.add(batch)
                if batch.claimed == 0:
                    if once:
                        break
                    stop.wait(settings.worker_poll_seconds)
    finally:
        with contextlib.suppress(UnavailableError):
            stats.released += store.outbox.release_claims(worker_id)
        heartbeat.stop()
        if owned:
            _close_adapters(active)
        if upstream is not None:
            upstream.service.close()
        engine.dispose()
        log.info(
            "worker %s stopped: %d delivered, %d retried, %d dead, %d released; %d taken in from upstream",
            worker_id,
            stats.delivered,
            stats.retried,
            stats.dead,
            stats.released,
            stats.ingested,
        )
    return stats


def _close_adapters(adapters: Mapping[str, PeerAdapter]) -> None:
    for adapter in adapters.values():
        try:
            adapter.close()
        except Exception:
            log.exception("closing the %s adapter failed", adapter.channel)


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


class _Heartbeat:
    """Writes the worker's heartbeat row every ``interval`` seconds from a daemon thread.

    The row says the process is alive (``/readyz``); it is independent of deliveries, which may block on a slow
    peer for up to the adapter timeouts.
    """

    def __init__(self, store: Store, worker_id: str, interval: float, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        now = clock()
        self._row = WorkerHeartbeat(
            worker_id=worker_id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, seen_at=now
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edoc-worker-heartbeat", daemon=True)

    def start(self) -> None:
        with contextlib.suppress(UnavailableError):
            self._store.workers.prune_heartbeats(self._clock() - HEARTBEAT_RETENTION)
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._beat(stopped=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def _beat(self, *, stopped: bool = False) -> None:
        now = self._clock()
        row = WorkerHeartbeat(
            worker_id=self._row.worker_id,
            host=self._row.host,
            pid=self._row.pid,
            started_at=self._row.started_at,
            seen_at=now,
            stopped_at=now if stopped else None,
        )
        try:
            self._store.workers.beat(row)
        except UnavailableError as exc:
            log.warning("heartbeat not written: %s", exc)
        except Exception:
            log.exception("heartbeat failed")


@contextlib.contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` (main thread only: Python delivers signals there); restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("%s received: finishing the delivery in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = [
    "ADAPTERS",
    "UpstreamConfig",
    "WorkerStats",
    "adapter_registry",
    "load_adapters",
    "new_worker_id",
    "peer_credentials",
    "run_worker",
    "upstream_config",
]
