"""The rate-limit front (issue 10): every request's client address, its request rate, and ``Retry-After``.

WSGI middleware around every edge (inside :class:`~gateway.web.observe.RequestObserver`, so throttled requests are
measured and logged like any other). For each request it

1. sets the client address for the use cases (:func:`gateway.services.limits.source_scope`): authentication
   counts failures per address from it;
2. takes one token of the address's request rate (:meth:`GatewayApi.admit_address`) BEFORE any edge reads the
   body; beyond the rate it answers **429** with ``Retry-After`` in the shape of the edge the request was for —
   a SOAP Fault for ``/soap`` (like the guard's other HTTP-layer refusals: a 4xx with a Fault body), the VDXP
   answer for ``/vdxp/…``, the JSON error of the other edges — and ``Connection: close`` (the body is unread);
3. adds ``Retry-After`` to the answer of any request a use case refused with ``RATE.LIMITED`` (the
   authentication throttle, the per-system rate): the SOAP guard and the VDXP edge answer those in their own
   shape and status, this adds the header they do not know about.

The address is the client's, as :func:`gateway.web.origin.client_origin` finds it: the socket's peer, or — only
when the peer is one of ``trusted_proxies`` — the address the proxy saw (``X-Forwarded-For``). A trusted proxy
that names no usable address leaves the proxy's own address as the key, so such requests share one budget rather
than escaping it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from gateway.errors import RateLimitedError
from gateway.protocols import vdxp
from gateway.services.api import GatewayApi
from gateway.services.limits import refused_retry_after, source_scope
from gateway.services.vdxp_guard import IpNetwork
from gateway.web.faults import FaultInfo, fault_envelope
from gateway.web.origin import client_origin
from gateway.web.rawhttp import StartResponse, WsgiApp

_TOO_MANY: Final = "429 Too Many Requests"


class ThrottleFront:
    """The middleware of the module docstring."""

    def __init__(self, app: WsgiApp, api: GatewayApi, trusted: tuple[IpNetwork, ...] = ()) -> None:
        self._app = app
        self._api = api
        self._trusted = trusted

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        source = client_origin(environ, self._trusted).address or str(environ.get("REMOTE_ADDR") or "")
        with source_scope(source):
            try:
                self._api.admit_address(source)
            except RateLimitedError as exc:
                return _refusal(environ, start_response, exc)

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                retry = refused_retry_after()
                if retry is not None and not any(name.lower() == "retry-after" for name, _ in headers):
                    headers = [*headers, ("Retry-After", str(retry))]
                return start_response(status, headers, exc_info)

            return self._app(environ, start)  # type: ignore[arg-type]


def _refusal(environ: dict[str, Any], start_response: StartResponse, exc: RateLimitedError) -> Iterable[bytes]:
    path = str(environ.get("PATH_INFO", ""))
    if path.rstrip("/") == "/soap":
        body, content_type = fault_envelope(FaultInfo.from_error(exc)), "text/xml; charset=utf-8"
    elif path.startswith("/vdxp/"):
        body, content_type = vdxp.encode_answer(vdxp.error_answer(exc)), vdxp.ANSWER_CONTENT_TYPE
    else:
        body = json.dumps(exc.to_dict(), ensure_ascii=False).encode()
        content_type = "application/json"
    start_response(
        _TOO_MANY,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Retry-After", str(exc.retry_after)),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ],
    )
    return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


__all__ = ["ThrottleFront"]
