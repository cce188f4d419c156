"""Prometheus metrics of the gateway (``/metrics``, :mod:`gateway.web.metrics`): what is counted, and the scrape.

Counted where it happens, once (all names start with ``edoc_``):

* ``edoc_intake_total{kind,outcome,code,edge}`` — every package intake, in :class:`gateway.services.intake.Intake`,
  whichever edge it came through (``soap``, ``rest``, ``vdxp``; ``upstream`` for packages polled from the national
  axis). ``outcome`` is ``accepted``, ``duplicate``, ``refused`` (``code`` = the wire code, e.g.
  ``EDXML.SIGNATURE``), ``unavailable`` (the database, retryable) or ``error`` (a defect, logged); ``kind`` is
  ``edoc``/``status`` once parsed;
* ``edoc_request_seconds{edge,operation,status}`` — histogram of every HTTP request, observed by
  :class:`gateway.web.observe.RequestObserver`. ``operation`` is the SOAP operation (``SendEdoc``), the VDXP
  operation (``getEdoc``), the Flask endpoint (``packages``, ``readyz``) — never the raw path (unbounded label
  values, and a client could write whatever it likes into them); ``other`` when none matched;
* ``edoc_delivery_attempts_total{channel,outcome,code}`` and ``edoc_delivery_attempt_seconds{channel,outcome}`` —
  every push attempt of the delivery worker (:class:`gateway.services.delivery.Deliverer`).

Computed at scrape time from the database (:class:`ScrapeCollector`), so they are right however many processes
run: the queue depth ``edoc_deliveries{state,age}``, ``edoc_dead_letters``, ``edoc_outbox_due`` and the age of
the oldest due push (:mod:`gateway.services.gauges`).

**Gauge sources** — the hook for more scrape-time gauges: a source is any callable returning
:class:`ScrapeGauge` values (name, help, label names, label values → value). The web composition root
(:func:`gateway.web.wsgi.make_application`) passes ``{"queue": QueueGauges(store), …}`` to ``create_app``; add a
source there (e.g. the tracking domain's late / not-taken / overdue counts). Each source runs once per scrape; one
that raises is logged and reported as ``edoc_scrape_source_ok{source="<name>"} 0`` while the others still show.

Process model: see :mod:`gateway.metrics_dir` — under gunicorn (and in ``edoc-gateway worker``) the counters live
in memory-mapped files that every scrape merges; elsewhere (tests, ``flask run``) in this process.

A full disk (issue 11 item 7): prometheus_client grows those files sparse (``truncate``) and writes through the
mapping, so on a full filesystem the first new label value touches a page with no block behind it and the kernel
kills the process with SIGBUS — measured: every gunicorn worker of a gateway whose ``data_dir`` filled up died on
its next request. :class:`_ReservedMmapedDict` reserves the blocks (``posix_fallocate``) before the mapping reaches
them, so a full disk is an ``OSError`` instead, which the counting functions below log as a WARNING and drop: a
metric is never worth a request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import mmap_dict as _mmap_dict
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.metrics_dir import scrape_directories

log = logging.getLogger(__name__)


class _ReservedMmapedDict(_mmap_dict.MmapedDict):
    """prometheus_client's value file with its blocks reserved before they are mapped (module docstring)."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            fd = os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size or _mmap_dict._INITIAL_MMAP_SIZE
                os.posix_fallocate(fd, 0, size)  # ENOSPC here, not SIGBUS at the first write through the map
            finally:
                os.close(fd)
        super().__init__(filename, read_mode)

    def _init_value(self, key: str) -> None:
        needed = self._used + len(key.encode("utf-8")) + 32  # an entry: length, key, padding, two doubles
        capacity = self._capacity
        while needed > capacity:
            capacity *= 2
        if capacity != self._capacity:
            os.posix_fallocate(self._f.fileno(), 0, capacity)
        super()._init_value(key)


# Looked up by name when a process opens its value file (prometheus_client.values.MultiProcessValue).
_values.MmapedDict = _ReservedMmapedDict  # type: ignore[misc]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Intake of a 50 MB signed package takes seconds: the default buckets stop at 10 s.
_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

INTAKE = Counter(
    "edoc_intake",
    "Packages taken in, by kind, outcome (accepted, duplicate, refused, unavailable, error), error code and edge.",
    ["kind", "outcome", "code", "edge"],
)
REQUEST_SECONDS = Histogram(
    "edoc_request_seconds",
    "HTTP requests by edge, operation (SOAP/VDXP operation or route name, never the path) and status.",
    ["edge", "operation", "status"],
    buckets=_SECONDS,
)
DELIVERY_ATTEMPTS = Counter(
    "edoc_delivery_attempts",
    "Push delivery attempts by channel, outcome (delivered, retry, dead) and error code.",
    ["channel", "outcome", "code"],
)
DELIVERY_SECONDS = Histogram(
    "edoc_delivery_attempt_seconds",
    "Duration of push delivery attempts (the adapter call) by channel and outcome.",
    ["channel", "outcome"],
    buckets=_SECONDS,
)


def count_intake(*, kind: str | None, outcome: str, code: str | None, edge: str) -> None:
    with _dropped_on_full_disk("edoc_intake_total"):
        INTAKE.labels(kind=kind or "", outcome=outcome, code=code or "", edge=edge).inc()


def observe_request(*, edge: str, operation: str, status: str, seconds: float) -> None:
    with _dropped_on_full_disk("edoc_request_seconds"):
        REQUEST_SECONDS.labels(edge=edge, operation=operation, status=status).observe(seconds)


def count_attempt(*, channel: str, outcome: str, code: str | None, seconds: float) -> None:
    with _dropped_on_full_disk("edoc_delivery_attempts_total"):
        DELIVERY_ATTEMPTS.labels(channel=channel, outcome=outcome, code=code or "").inc()
        DELIVERY_SECONDS.labels(channel=channel, outcome=outcome).observe(seconds)


#: Metrics that could not be counted in this process (logged as a WARNING the first time only).
_dropped: set[str] = set()


@contextmanager
def _dropped_on_full_disk(metric: str) -> Iterator[None]:
    """A value file that cannot grow (a full disk: module docstring) costs the count, never the request."""
    try:
        yield
    except OSError as exc:
        # Once per metric and process: a full disk fails every count after the first.
        level = logging.DEBUG if metric in _dropped else logging.WARNING
        _dropped.add(metric)
        log.log(level, "metric %s not counted: its value file cannot grow (%s)", metric, exc.strerror or exc)


# ================================================================================================ scrape-time gauges


@dataclass(frozen=True)
class ScrapeGauge:
    """One gauge family computed at scrape time: ``values`` maps label values (in ``labels`` order) to a value;
    a gauge without labels has ``labels=()`` and the single key ``()``."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    values: Mapping[tuple[str, ...], float] = field(default_factory=dict)


#: A source of scrape-time gauges (module docstring, "Gauge sources").
GaugeSource = Callable[[], Iterable[ScrapeGauge]]


class ScrapeCollector(Collector):
    """Runs the gauge sources at each scrape; a failing source costs its own gauges, not the scrape."""

    def __init__(self, sources: Mapping[str, GaugeSource]) -> None:
        self._sources = dict(sources)

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "edoc_scrape_source_ok", "Whether a scrape-time gauge source answered (1) or failed (0).", labels=["source"]
        )
        for name, source in self._sources.items():
            try:
                gauges = list(source())
            except Exception:
                log.exception("gauge source %s failed; its gauges are missing from this scrape", name)
                ok.add_metric([name], 0)
                continue
            ok.add_metric([name], 1)
            for gauge in gauges:
                family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
                for label_values, value in gauge.values.items():
                    family.add_metric(list(label_values), value)
                yield family
        yield ok


class _Files(Collector):
    """The counters of every process, merged from the multiprocess directories (:mod:`gateway.metrics_dir`)."""

    def __init__(self, directories: Iterable[Path]) -> None:
        self._directories = list(directories)

    def collect(self) -> Iterable[Metric]:
        files = [str(f) for d in self._directories for f in sorted(d.glob("*.db"))]
        return MultiProcessCollector.merge(files, accumulate=True)


class _ThisProcess(Collector):
    """Single-process mode: the default registry (our counters, plus the process and platform collectors)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(sources: Mapping[str, GaugeSource]) -> bytes:
    """The Prometheus text exposition of one scrape: counters and histograms, then the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    directories = scrape_directories()
    registry.register(_Files(directories) if directories else _ThisProcess())
    registry.register(ScrapeCollector(sources))
    return generate_latest(registry)


__all__ = [
    "CONTENT_TYPE",
    "GaugeSource",
    "ScrapeCollector",
    "ScrapeGauge",
    "count_attempt",
    "count_intake",
    "exposition",
    "observe_request",
]
