"""Alert rounds as the worker and ``edoc-gateway alerts run`` schedule them (issue 9 item 6).

The worker runs :class:`AlertScheduler`: a daemon thread doing one round every ``alerts_interval_seconds`` (0 turns
it off), so a slow SMTP server or a long round never holds up a delivery, and a round never waits for one.
``alerts run`` (:func:`run_alerts`) is the same loop in its own process, for deployments that keep alerts apart
from delivery workers (or run it by hand with ``--once``); no cron file is needed either way.

Any number of these may run against one database: rounds are single cluster-wide by the round lease, and raising
is idempotent by the alerts table's UNIQUE key (:mod:`gateway.services.alerts`, "One round at a time").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.config import Settings
from gateway.db import Store, create_engine
from gateway.errors import UnavailableError
from gateway.services.alerts import Alerts, RoundResult
from gateway.worker.heartbeat import new_worker_id, signals
from gateway.worker.notify import SmtpTransport, WebhookPoster

log = logging.getLogger(__name__)
#: A lease older than this is taken over (its holder died mid-round); at least ten minutes.
_MIN_LEASE_STALE = timedelta(minutes=10)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build_alerts(settings: Settings, store: Store, clock: Callable[[], datetime] = _utcnow) -> Alerts:
    """The alert service with the channels the settings configure (``CONFIG.INVALID`` for bad rules)."""
    return Alerts.from_settings(
        store,
        settings,
        mail=SmtpTransport.from_settings(settings),
        webhook=WebhookPoster.from_settings(settings),
        clock=clock,
    )


class AlertScheduler:
    """One alert round every ``interval`` seconds in a daemon thread (module docstring); the first at start."""

    def __init__(self, alerts: Alerts, interval: float, holder: str) -> None:
        self.alerts = alerts
        self.interval = interval
        self.holder = holder
        self.results: list[RoundResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edoc-alerts", daemon=True)
        self.lease_stale = max(_MIN_LEASE_STALE, timedelta(seconds=2 * interval))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def run_once(self) -> RoundResult | None:
        """One guarded round; None when it failed (logged: the next round tries again)."""
        try:
            result = self.alerts.run_round(self.holder, lease_stale=self.lease_stale)
        except UnavailableError as exc:
            log.warning("alerts: database unavailable (%s); next round in %g s", exc, self.interval)
            return None
        except Exception:
            log.exception("alerts: round failed; next round in %g s", self.interval)
            return None
        self.results.append(result)
        del self.results[:-100]
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)


def start_scheduler(
    settings: Settings, store: Store, worker_id: str, clock: Callable[[], datetime] = _utcnow
) -> AlertScheduler | None:
    """The worker's scheduler, started; None when ``alerts_interval_seconds`` is 0."""
    if settings.alerts_interval_seconds <= 0:
        log.info("alerts: off (alerts_interval_seconds = 0)")
        return None
    scheduler = AlertScheduler(build_alerts(settings, store, clock), settings.alerts_interval_seconds, worker_id)
    scheduler.start()
    return scheduler


def run_alerts(
    settings: Settings,
    *,
    once: bool = False,
    stop_event: threading.Event | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> list[RoundResult]:
    """``edoc-gateway alerts run``: rounds every ``alerts_interval_seconds`` until stopped, or one (``once``)."""
    stop = stop_event or threading.Event()
    engine = create_engine(settings)
    try:
        alerts = build_alerts(settings, Store(engine), clock)
        interval = settings.alerts_interval_seconds if settings.alerts_interval_seconds > 0 else 300.0
        scheduler = AlertScheduler(alerts, interval, f"alerts-run:{new_worker_id()}")
        if once:
            result = alerts.run_round(scheduler.holder, lease_stale=scheduler.lease_stale)
            return [result]
        with signals(stop):
            while not stop.is_set():
                scheduler.run_once()
                stop.wait(interval)
        return scheduler.results
    finally:
        engine.dispose()


__all__ = ["AlertScheduler", "build_alerts", "run_alerts", "start_scheduler"]
