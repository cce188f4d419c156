"""Upstream VDXP polling, as the worker wires it: the ``[vdxp]`` table's polling settings, and the poller that takes
what the national axis holds for our agencies into our intake (:class:`gateway.services.upstream.UpstreamPoller`
over the ``vdxp`` adapter's :class:`~gateway.ports.PollingAdapter` side).

The axis pushes nothing to a VDXP client, so without this a province would send upstream but never receive.
Ingesting needs the service's keys and trust store (signature policy, receipts): a worker configured to poll
refuses to start without them (:class:`~gateway.errors.ConfigError`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.ports import PeerAdapter, PollingAdapter
from gateway.services.api import Receipt
from gateway.services.gateway import GatewayService
from gateway.services.upstream import UpstreamPoller

log = logging.getLogger(__name__)

#: Upstream polling defaults (``[vdxp]`` ``poll_seconds``, ``poll_limit``): a national axis is shared by every
#: province, so it is asked every half minute, not at the delivery loop's pace.
DEFAULT_POLL_SECONDS: Final = 30.0
DEFAULT_POLL_LIMIT: Final = 100


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
class Upstream:
    """The poller and the service it ingests through (closed with the worker)."""

    config: UpstreamConfig
    poller: UpstreamPoller
    service: GatewayService


def open_upstream(
    settings: Settings, adapters: Mapping[str, PeerAdapter], clock: Callable[[], datetime]
) -> Upstream | None:
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
    return Upstream(config, poller, service)


__all__ = [
    "DEFAULT_POLL_LIMIT",
    "DEFAULT_POLL_SECONDS",
    "Upstream",
    "UpstreamConfig",
    "open_upstream",
    "upstream_config",
]
