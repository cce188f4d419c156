"""The WSGI entry point gunicorn imports: ``gateway.web.wsgi:application``.

The module gunicorn's ``module:variable`` contract names; the application is built on the first access to
``application`` (not at import), and everything it does is in :func:`make_application`, which tests, the fuzz
harness and other servers can call.
Each gunicorn worker imports this after forking (``preload_app = False``), so each builds its own database
engine and connection pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config import Settings, load_settings
from gateway.web.app import create_app
from gateway.web.rawhttp import WsgiApp
from gateway.xmlcheck import schema


def make_application(settings: Settings | None = None) -> WsgiApp:
    """Settings (``EDOC_GATEWAY_*`` / ``EDOC_GATEWAY_CONFIG``) → GatewayService (+ the admin API's and the
    console's use cases over its store: tokens, deliveries, tracking, operators, registry) → the web app."""
    settings = settings or load_settings()
    # libxml2's schema types are initialised here, in the thread building the app, before the application threads
    # of the serving front compile their own copies (gateway.xmlcheck.schema.prepare).
    schema.prepare()
    # Imported here, not at module level: the service pulls in the database layer, which must not load (or
    # connect) when a tool merely imports the web package.
    from gateway.services import delivery_admin
    from gateway.services.admin import AdminServices
    from gateway.services.console import ConsoleServices
    from gateway.services.disk import check_disk, disk_paths
    from gateway.services.gateway import GatewayService
    from gateway.services.gauges import QueueGauges, TrackingGauges
    from gateway.services.tracking import Tracking
    from gateway.tracking.settings import rules_from

    service = GatewayService.from_settings(settings)
    service_ready = getattr(service, "readiness", None)

    checked = disk_paths(settings.data_dir, settings.effective_database_url)

    def readiness() -> Mapping[str, Any]:
        # Not ready below EITHER floor (a share of the filesystem, or an absolute minimum): issue 11 item 7.
        floors = {"min_free_percent": settings.readyz_min_free_percent, "min_free_mb": settings.readyz_min_free_mb}
        checks: dict[str, Any] = {name: check_disk(path, **floors) for name, path in checked.items()}
        if callable(service_ready):
            checks.update(service_ready())
        # A fresh worker heartbeat, when any agency is reached by push (gateway.md: /readyz … worker heartbeat).
        if settings.readyz_requires_worker:
            checks.update(delivery_admin.readiness(service.store, settings))
        return checks

    admin = AdminServices.over(service.store, settings)
    # Scrape-time gauges of /metrics, by source name (gateway.metrics).
    tracking = Tracking(service.store, rules_from(settings))
    gauges = {"queue": QueueGauges(service.store), "tracking": TrackingGauges(tracking)}
    console = ConsoleServices.over(service.store, settings, admin)
    return create_app(settings, service, readiness=readiness, admin=admin, gauge_sources=gauges, console=console)


def __getattr__(name: str) -> WsgiApp:
    """``application`` is built on first access (PEP 562) — by gunicorn's ``module:application`` lookup — not at
    import, so that tools and the fuzz harness can import :func:`make_application` with settings of their own."""
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = make_application()
    globals()["application"] = app
    return app
