"""``GET /metrics``: the Prometheus text exposition (:mod:`gateway.metrics`).

Open when ``metrics_token`` is empty, like ``/healthz`` — meant for an internal listener that only Prometheus
reaches (deploy/README.md: do not route it through the public proxy). With ``metrics_token`` set, a scrape must
send ``Authorization: Bearer <metrics_token>`` (Prometheus ``authorization: {credentials: …}``); anything else is
the JSON ``AUTH.DENIED`` with 401, compared in constant time. The exposition names no document, system secret or
body: only counts by kind, outcome, code, edge, operation and channel.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from flask import Blueprint, Response, request

from gateway.errors import AuthError
from gateway.metrics import CONTENT_TYPE, GaugeSource, exposition


def metrics_blueprint(sources: Mapping[str, GaugeSource], token: str = "") -> Blueprint:
    """The ``/metrics`` route over the scrape-time gauge ``sources``, guarded by ``token`` when set."""
    bp = Blueprint("metrics", __name__)
    expected = token.encode()

    @bp.get("/metrics")
    def scrape() -> Response:
        if expected:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
                raise AuthError("a valid metrics bearer token is required")
        response = Response(exposition(sources), content_type=CONTENT_TYPE)
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp


__all__ = ["metrics_blueprint"]
