"""The worker's peer adapters: which adapter serves which channel, how it is built, and the per-agency channel
credentials it is handed.

Adapters are chosen by channel through :data:`ADAPTERS`, a map of dotted paths (``module:attribute``), so an
adapter package can be added or left out without touching the core (warehouse's "backends chosen by
configuration"); the core never imports an adapter (an import-linter contract). The attribute is a factory
returning a :class:`gateway.ports.PeerAdapter`: a class with a ``from_settings(settings)`` classmethod, or a
callable given whichever of ``settings``, ``connect_timeout`` and ``read_timeout`` it accepts. A TOML configuration
file may change the map with an ``[adapters]`` table (``vdxp = "my_package.vdxp:Adapter"``; an empty string
disables a channel). A channel whose module is missing or whose factory fails is skipped with a logged warning:
the worker still delivers on the other channels, and leaves that channel's deliveries to workers that have its
adapter.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.config import Settings
from gateway.ports import PeerAdapter
from gateway.services.routing import PUSH_CHANNELS

log = logging.getLogger(__name__)

#: channel → ``module:factory``.
ADAPTERS: Final[Mapping[str, str]] = {
    "soap": "adapters.soap:SoapAdapter",
    "rest": "adapters.rest:RestAdapter",
    "vdxp": "adapters.vdxp:VdxpAdapter",
    "edocvn": "adapters.edocvn:EdocvnAdapter",
}


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


def close_adapters(adapters: Mapping[str, PeerAdapter]) -> None:
    for adapter in adapters.values():
        try:
            adapter.close()
        except Exception:
            log.exception("closing the %s adapter failed", adapter.channel)


__all__ = ["ADAPTERS", "adapter_registry", "close_adapters", "load_adapters", "peer_credentials"]
