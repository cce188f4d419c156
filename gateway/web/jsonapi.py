"""JSON answers of the Flask edges (health, admin, REST): one response helper and ONE error translation.

STYLE.md rule 5: errors are translated once, at the edge. For the JSON edges that is :func:`install_error_handlers`:
a :class:`~gateway.errors.GatewayError` raised anywhere in a view becomes ``GatewayError.to_dict()``
(``{"code", "message", "message_vi", "path"?, "detail"?}``) with the status of :func:`http_status`; a routing
failure (unknown path, wrong method, a body the framework refused) the same body with its own status; and any
other exception a 500 ``GATEWAY.INTERNAL`` whose details go to the log only. The VDXP edge answers in the SDK's
shape instead (:mod:`gateway.protocols.vdxp.answers`) and never lets an error reach these handlers; the SOAP
path answers Faults and never enters Flask.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    GatewayError,
    LimitError,
    NotFoundError,
    RateLimitedError,
    RequestError,
    RouteError,
    SizeLimitError,
    StatusQuotaError,
)
from gateway.web.faults import INTERNAL_CODE
from gateway.web.rawhttp import log_safe

log = logging.getLogger(__name__)

#: HTTP status per error class (the first class in this order the error is an instance of); 400 otherwise, 503
#: for any retryable error (the client should try again later).
_STATUS: Final[tuple[tuple[type[GatewayError], int], ...]] = (
    (AuthError, 401),
    (AccessError, 403),
    (NotFoundError, 404),
    (DuplicateError, 409),
    (SizeLimitError, 413),
    (RouteError, 422),
    (RateLimitedError, 429),
    (StatusQuotaError, 429),
    (LimitError, 413),
)


def http_status(exc: GatewayError) -> int:
    """The HTTP status of a refusal at a JSON edge."""
    if exc.retryable:
        return 503
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 400)


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON answer (UTF-8, keys in the order written), never cached: every answer is about one caller's data."""
    response = current_app.json.response(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def install_error_handlers(app: Flask) -> None:
    """Register the one translation of errors into JSON answers on ``app`` (see the module docstring)."""
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)


def _gateway_error(exc: GatewayError) -> Response:
    response = json_response(exc.to_dict(), http_status(exc))
    retry_after = exc.detail.get("retry_after")
    if isinstance(retry_after, int) and response.status_code == 429:
        # RFC 9110 §10.2.3: when the same request may succeed (RATE.LIMITED, a daily LIMIT.STATUSES quota).
        response.headers["Retry-After"] = str(retry_after)
    return response


def _http_error(exc: HTTPException) -> Response:
    """What the framework refused before a view ran: the same JSON shape, with the framework's status."""
    status = exc.code or 500
    if status == 404:
        error: GatewayError = NotFoundError(f"no such path {request.path[:200]!r}")
    elif status == 413:
        error = SizeLimitError("the request body is too large")
    else:
        error = RequestError(f"{exc.name}: {exc.description}" if exc.description else exc.name)
    response = json_response(error.to_dict(), status)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _internal_error(exc: Exception) -> Response:
    # A defect: the client gets a JSON 500, never a traceback or an HTML page; the log gets the traceback.
    log.error("internal error at %s %s", log_safe(request.method, 16), log_safe(request.path, 120), exc_info=exc)
    return json_response({"code": INTERNAL_CODE, "message": "internal error"}, 500)
