"""Polling other axes, as the worker wires it: the national VDXP axis (``[vdxp]``) and a legacy e-doc.vn axis
(``[edocvn]``), each by its own :class:`gateway.services.upstream.UpstreamPoller` over that channel's adapter
(its :class:`~gateway.ports.PollingAdapter` side), with its own ``poll_seconds`` and ``poll_limit``.

Neither axis pushes to us: what it holds for our agencies waits there until we fetch it, so without this a province
would send to an axis but never receive from it. Each polled package goes through our intake as a package of that
axis (:meth:`GatewayService.ingest_upstream` with the source's ``channel``): it may speak only for the agencies on
that channel, and is delivered only to the agencies hosted here. Ingesting needs the service's keys and trust store
(signature policy, receipts): a worker configured to poll refuses to start without them
(:class:`~gateway.errors.ConfigError`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, cast

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.ports import PeerAdapter, PollingAdapter
from gateway.services.api import Receipt
from gateway.services.gateway import GatewayService
from gateway.services.upstream import UpstreamPoller

log = logging.getLogger(__name__)

#: Polling defaults (``poll_seconds``, ``poll_limit`` of each table): an axis is shared by many systems, so it is
#: asked every half minute, not at the delivery loop's pace.
DEFAULT_POLL_SECONDS: Final = 30.0
DEFAULT_POLL_LIMIT: Final = 100
#: The axes a worker polls: channel (= its table, its adapter, the channel of the agencies it reaches) → the keys
#: that must be set in the table for it to name an axis to poll. The ``[edocvn]`` logins are the
#: ``[credentials."<OrganId>"] legacy_token`` entries, which the adapter reads.
AXES: Final[Mapping[str, tuple[str, ...]]] = {"vdxp": ("endpoint", "system_id", "secret"), "edocvn": ("endpoint",)}


@dataclass(frozen=True)
class PollConfig:
    """The polling part of one axis's table (the adapter reads endpoint and credentials itself)."""

    #: The axis's channel: the adapter polled, and the only agencies its packages may speak for.
    channel: str
    #: Where packages come from, in the audit rows (never a secret).
    source: str
    interval: float
    limit: int


def poll_config(settings: Settings, channel: str) -> PollConfig | None:
    """Polling settings when the ``[channel]`` table names an axis and ``poll`` is not false; else None."""
    table = settings.extra.get(channel)
    if not isinstance(table, Mapping):
        return None
    values = {key: str(table.get(key) or "").strip() for key in AXES[channel]}
    if not all(values.values()):
        return None
    poll = table.get("poll", True)
    if not isinstance(poll, bool):
        raise ConfigError(f"[{channel}] poll must be true or false")
    if not poll:
        return None
    try:
        interval = float(table.get("poll_seconds", DEFAULT_POLL_SECONDS))
        limit = int(table.get("poll_limit", DEFAULT_POLL_LIMIT))
    except (TypeError, ValueError):
        raise ConfigError(f"[{channel}] poll_seconds and poll_limit must be numbers") from None
    if not interval > 0 or limit < 1:
        raise ConfigError(f"[{channel}] poll_seconds must be positive and poll_limit at least 1")
    endpoint = values["endpoint"]
    source = f"vdxp:{values['system_id']}@{endpoint}" if channel == "vdxp" else f"{channel}:{endpoint}"
    return PollConfig(channel=channel, source=source, interval=interval, limit=limit)


def poll_configs(settings: Settings) -> tuple[PollConfig, ...]:
    """One :class:`PollConfig` per configured axis, in :data:`AXES` order."""
    return tuple(config for channel in AXES if (config := poll_config(settings, channel)) is not None)


@dataclass(frozen=True)
class Source:
    """One polled axis: its settings and its poller."""

    config: PollConfig
    poller: UpstreamPoller


@dataclass
class Polling:
    """The pollers of a worker and the service they ingest through (closed with the worker)."""

    service: GatewayService
    sources: tuple[Source, ...]
    #: The pollers run in threads of their own and add to one :class:`~gateway.worker.WorkerStats`.
    stats_lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        self.service.close()


def open_polling(
    settings: Settings, adapters: Mapping[str, PeerAdapter], clock: Callable[[], datetime]
) -> Polling | None:
    """The pollers of the configured axes whose adapter can poll; None when there are none."""
    usable: list[tuple[PollConfig, PollingAdapter]] = []
    for config in poll_configs(settings):
        adapter = adapters.get(config.channel)
        if adapter is None or not (hasattr(adapter, "poll") and hasattr(adapter, "acknowledge")):
            log.error("[%s] names an axis to poll but no polling adapter of that channel is loaded", config.channel)
            continue
        usable.append((config, cast(PollingAdapter, adapter)))
    if not usable:
        return None
    service = GatewayService.from_settings(settings, clock=clock)  # ConfigError without keys: stop start-up
    sources = tuple(
        Source(config, UpstreamPoller(adapter, _ingest(service, config), limit=config.limit, name=config.channel))
        for config, adapter in usable
    )
    return Polling(service, sources)


def _ingest(service: GatewayService, config: PollConfig) -> Callable[[bytes, str, str | None], Receipt]:
    def ingest(data: bytes, reference: str, recipient: str | None) -> Receipt:
        return service.ingest_upstream(
            data, source=config.source, channel=config.channel, reference=reference, recipient=recipient
        )

    return ingest


__all__ = [
    "AXES",
    "DEFAULT_POLL_LIMIT",
    "DEFAULT_POLL_SECONDS",
    "PollConfig",
    "Polling",
    "Source",
    "open_polling",
    "poll_config",
    "poll_configs",
]
