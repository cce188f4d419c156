"""Per-request observation: the latency histogram and the log context of every HTTP request (:mod:`gateway.logs`,
:mod:`gateway.metrics`).

:class:`RequestObserver` is the outermost WSGI middleware. It opens a fresh log context for the request, lets the
edges name what the request is — ``edge`` and ``operation`` — and observes ``edoc_request_seconds`` with them
and the status when the application has answered (our answers are built in memory, so that is the whole request
but the socket write). Who names what:

* Flask routes: :func:`bind_route` (an app-wide ``before_request``) binds the blueprint as ``edge`` and the
  endpoint as ``operation`` (``health``/``readyz``, ``rest``/``packages``, ``admin``/``list`` …);
* the SOAP guard binds ``soap`` and, once the envelope is parsed, the operation (``SendEdoc`` …);
* the VDXP edge binds the operation it recognised (``sendEdoc`` …), ``other`` for any other path segment.

Label values therefore come from fixed sets, never from the raw path (unbounded cardinality, and a client could
put anything there). A request nothing matched stays ``other``/``other``.

Log lines: the SOAP, VDXP and REST edges write one line per request themselves (sizes, fault codes); for the
others (admin, certificate, probes, unmatched paths) this middleware writes it — the probes and ``/metrics``
at DEBUG, since a load balancer and Prometheus ask every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from flask import request

from gateway import logs, metrics
from gateway.web.rawhttp import StartResponse, WsgiApp, log_safe

log = logging.getLogger(__name__)

#: Edges that log their own line per request.
SELF_LOGGING: Final = frozenset({"soap", "vdxp", "rest"})
#: Edges polled by machines: their line is DEBUG.
QUIET: Final = frozenset({"health", "metrics"})


class RequestObserver:
    """WSGI middleware around the whole application (module docstring)."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["500"]

        def observed_start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        with logs.request_scope(edge="other", operation="other"):
            try:
                return self._app(environ, observed_start)  # type: ignore[arg-type]
            finally:
                self._observe(environ, status[0], time.perf_counter() - started)

    @staticmethod
    def _observe(environ: dict[str, Any], status: str, seconds: float) -> None:
        edge, operation = str(logs.bound("edge") or "other"), str(logs.bound("operation") or "other")
        metrics.observe_request(edge=edge, operation=operation, status=status, seconds=seconds)
        if edge in SELF_LOGGING:
            return
        log.log(
            logging.DEBUG if edge in QUIET else logging.INFO,
            "%s %s %s %.1fms",
            log_safe(environ.get("REQUEST_METHOD", ""), 16),
            log_safe(environ.get("PATH_INFO", ""), 120),
            status,
            seconds * 1000,
            extra={"status": int(status) if status.isdigit() else None, "duration_ms": round(seconds * 1000, 1)},
        )


def bind_route() -> None:
    """Flask ``before_request``: the matched blueprint and endpoint name the request (module docstring)."""
    if request.url_rule is not None and request.blueprint and request.endpoint:
        logs.bind(edge=request.blueprint, operation=request.endpoint.rsplit(".", 1)[-1].lstrip("_"))


__all__ = ["QUIET", "SELF_LOGGING", "RequestObserver", "bind_route"]
