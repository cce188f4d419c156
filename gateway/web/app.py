"""The web composition root: ``create_app(settings, api, …)`` builds the one WSGI app; nothing happens at import.

Routes:

- ``/soap`` (and ``/soap/``) — ``POST`` SOAP 1.1 and ``GET ?wsdl``, through :class:`gateway.web.guard.SoapGuard`
  into spyne. Not a Flask route: :class:`SoapMount` hands the untouched environ to the guard before Flask sees
  the request, so the SOAP path (limits, Faults, the WSDL) is exactly what the guard and spyne make of it;
- ``/healthz``, ``/readyz`` — the probes (:mod:`gateway.web.health`);
- ``/gateway/certificate.pem`` — the gateway certificate and its chain, as receipts carry them
  (:mod:`gateway.web.certificate`), when ``gateway_cert`` is set;
- ``/admin/v1/…`` — the operators' and the console's API (:mod:`gateway.web.admin`, role-scoped tokens), when
  the admin services are given (the entry point always gives them; without any token every call is 401);
- ``/rest/v1/packages`` — canonical JSON packages from modern systems and REST peers (:mod:`gateway.web.rest`);
- ``/vdxp/<operation>`` — the VDXP-compatible REST API (:mod:`gateway.web.vdxp`, edxml.md §11);
- ``/legacy/edoc`` and the ``legacy_paths`` — the legacy e-doc.vn SOAP profile (:mod:`gateway.web.legacy`);
- ``/console/…`` — the operators' web console (:mod:`gateway.web.console`: sessions, CSRF, HTML pages), when its
  services are given;
- ``/metrics`` — Prometheus (:mod:`gateway.web.metrics`; Bearer ``metrics_token`` when set).

Every request passes :class:`gateway.web.observe.RequestObserver` first (latency histogram, log context), then
:class:`gateway.web.throttle.ThrottleFront` (the client address, its request rate, ``Retry-After``).

Everything but ``/soap`` is a Flask blueprint; errors of the JSON edges are translated once
(:mod:`gateway.web.jsonapi`), an unknown path answers a JSON 404 (under ``/console`` an HTML page).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from flask import Flask

from gateway.config import Settings
from gateway.metrics import GaugeSource
from gateway.services.api import GatewayApi
from gateway.services.console import ConsoleServices
from gateway.web.admin import AdminBackend, AdminEdge
from gateway.web.certificate import certificate_blueprint
from gateway.web.console import console_blueprint
from gateway.web.guard import SoapGuard
from gateway.web.health import Readiness, health_blueprint
from gateway.web.jsonapi import install_error_handlers
from gateway.web.legacy import LegacyEdge
from gateway.web.metrics import metrics_blueprint
from gateway.web.observe import RequestObserver, bind_route
from gateway.web.origin import trusted_networks
from gateway.web.rawhttp import StartResponse, WsgiApp
from gateway.web.rest import RestEdge
from gateway.web.soap import soap_wsgi_app
from gateway.web.throttle import ThrottleFront
from gateway.web.vdxp import VdxpEdge

SOAP_PATH: Final = "/soap"


def create_app(
    settings: Settings,
    api: GatewayApi,
    *,
    readiness: Readiness | None = None,
    admin: AdminBackend | None = None,
    gauge_sources: Mapping[str, GaugeSource] | None = None,
    console: ConsoleServices | None = None,
) -> Flask:
    """The WSGI application for ``settings`` over the use cases ``api``.

    ``readiness`` is what ``/readyz`` asks; without one the process is ready as soon as it serves.
    ``admin`` are the admin API's use cases (tokens, deliveries, tracking); the API is mounted only with them.
    ``console`` are the operator console's use cases; the console (``/console``) is mounted only with them.
    ``gauge_sources`` are the scrape-time gauges of ``/metrics`` (:mod:`gateway.metrics`).
    """
    _quiet_spyne_logging()
    app = Flask("gateway.web")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keys in the order the edge wrote them
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Vietnamese as UTF-8, not \\u escapes
    # Paths are matched as sent: never a redirect to another spelling (a client posting there would not follow).
    app.url_map.merge_slashes = False
    install_error_handlers(app)
    app.before_request(bind_route)
    app.register_blueprint(health_blueprint(readiness))
    app.register_blueprint(metrics_blueprint(gauge_sources or {}, settings.metrics_token))
    if settings.gateway_cert is not None:
        app.register_blueprint(certificate_blueprint(settings.gateway_cert))
    app.register_blueprint(RestEdge(api, settings).blueprint())
    app.register_blueprint(VdxpEdge(api, settings).blueprint())
    app.register_blueprint(LegacyEdge(api, settings).blueprint())
    if admin is not None:
        app.register_blueprint(AdminEdge(admin).blueprint())
    if console is not None:
        app.register_blueprint(console_blueprint(console, settings))
    soap = SoapGuard(soap_wsgi_app(api, settings.max_body_bytes), api, settings)
    # The rate-limit front sees every request before an edge reads its body (issue 10).
    trusted = trusted_networks(settings.trusted_proxies)
    app.wsgi_app = RequestObserver(ThrottleFront(SoapMount(soap, app.wsgi_app), api, trusted))  # type: ignore[method-assign]
    return app


class SoapMount:
    """WSGI middleware: ``/soap`` and ``/soap/`` go to the SOAP guard with the environ untouched, all else to Flask."""

    def __init__(self, soap: WsgiApp, other: WsgiApp) -> None:
        self._soap = soap
        self._other = other

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in (SOAP_PATH, SOAP_PATH + "/"):
            return self._soap(environ, start_response)
        return self._other(environ, start_response)


def _quiet_spyne_logging() -> None:
    """spyne logs every client Fault with a traceback, and at DEBUG whole documents; the guard logs instead.

    Done here, in the composition root, not at import. Only CRITICAL passes, which spyne uses for exceptions that
    escape a method — and :meth:`EdocGatewayService.call_wrapper` catches those first and logs them itself.
    """
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
