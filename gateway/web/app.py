"""The web composition root: ``create_app(settings, api)`` wires the WSGI routes; nothing happens at import.

Routes:

- ``/soap`` — ``POST`` SOAP 1.1 and ``GET ?wsdl``, through :class:`gateway.web.guard.SoapGuard` into spyne;
- ``/healthz`` — the process is alive and answers (no dependency is touched: a load balancer must not take
  every worker out because the database blinked);
- ``/readyz`` — the injected readiness check (database, disk, …) passes; 503 otherwise, with the failing checks;
- ``/admin/v1/deliveries…`` — the operators' API (:mod:`gateway.web.admin`), only when ``admin_token`` is set;
- ``/rest/v1/packages`` — canonical JSON packages from modern systems and REST peers (:mod:`gateway.web.rest`);
- ``/vdxp/<operation>`` — the VDXP-compatible REST API (:class:`gateway.web.vdxp.VdxpEdge`, edxml.md §11),
  mounted WSGI-style (``SCRIPT_NAME`` ``/vdxp``, ``PATH_INFO`` ``/<operation>``).

Later edges (REST, admin) are mounted here too.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.config import Settings
from gateway.services.api import GatewayApi
from gateway.web.admin import AdminEdge
from gateway.web.guard import SoapGuard, StartResponse, WsgiApp
from gateway.web.rest import RestEdge
from gateway.web.soap import soap_wsgi_app
from gateway.web.vdxp import VdxpEdge

log = logging.getLogger(__name__)

#: A readiness check: named results (``{"database": True, "disk": False}``); ready when all are true.
#: Raising counts as not ready.
Readiness = Callable[[], Mapping[str, bool]]

SOAP_PATH = "/soap"
VDXP_PATH = "/vdxp"
REST_PATH = "/rest"
ADMIN_PATH = "/admin"


def create_app(settings: Settings, api: GatewayApi, *, readiness: Readiness | None = None) -> WsgiApp:
    """Build the WSGI application for ``settings`` over the use cases ``api``.

    ``readiness`` is what ``/readyz`` asks; without one the process is ready as soon as it serves.
    """
    _quiet_spyne_logging()
    soap = SoapGuard(soap_wsgi_app(api, settings.max_body_bytes), api, settings)
    store = getattr(api, "store", None)
    admin = AdminEdge(store, settings.admin_token) if settings.admin_token and store is not None else None
    return _Router(soap, readiness, vdxp=VdxpEdge(api, settings), rest=RestEdge(api, settings), admin=admin)


class _Router:
    """A few fixed routes do not need a framework; a tiny dispatcher keeps the request path obvious."""

    def __init__(
        self,
        soap: WsgiApp,
        readiness: Readiness | None,
        *,
        vdxp: WsgiApp | None = None,
        rest: WsgiApp | None = None,
        admin: WsgiApp | None = None,
    ) -> None:
        self._soap = soap
        self._readiness = readiness
        self._vdxp = vdxp
        self._rest = rest
        self._admin = admin

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path in (SOAP_PATH, SOAP_PATH + "/"):
            return self._soap(environ, start_response)
        if self._vdxp is not None and path.startswith(VDXP_PATH + "/"):
            inner = dict(environ)
            inner["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + VDXP_PATH
            inner["PATH_INFO"] = path[len(VDXP_PATH) :]
            return self._vdxp(inner, start_response)
        if self._admin is not None and path.startswith(ADMIN_PATH + "/"):
            return self._admin(environ, start_response)
        if self._rest is not None and path.startswith(REST_PATH + "/"):
            return self._rest(environ, start_response)
        if path == "/healthz":
            return _json(start_response, 200, {"status": "ok", "pid": os.getpid()})
        if path == "/readyz":
            return self._ready(start_response)
        return _json(start_response, 404, {"code": "NOT_FOUND", "message": f"no such path {path!r}"})

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        if self._readiness is None:
            return _json(start_response, 200, {"ready": True, "checks": {}})
        try:
            checks = {name: bool(ok) for name, ok in self._readiness().items()}
        except Exception:
            log.exception("readiness check raised")
            checks = {"readiness": False}
        ready = all(checks.values())
        return _json(start_response, 200 if ready else 503, {"ready": ready, "checks": checks})


_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def _json(start_response: StartResponse, status: int, body: Mapping[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(
        f"{status} {_REASONS[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Cache-Control", "no-store")],
    )
    return [data]


def _quiet_spyne_logging() -> None:
    """spyne logs every client Fault with a traceback, and at DEBUG whole documents; the guard logs instead.

    Done here, in the composition root, not at import. Only CRITICAL passes, which spyne uses for exceptions that
    escape a method — and :meth:`EdocGatewayService.call_wrapper` catches those first and logs them itself.
    """
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
