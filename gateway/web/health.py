"""``/healthz`` and ``/readyz``, for load balancers, systemd and the operators.

- ``/healthz`` — the process is alive and answers; no dependency is touched, so a load balancer does not take
  every worker out because the database blinked;
- ``/readyz`` — the injected readiness check (database, disk, worker heartbeat …) passes; 503 otherwise, with
  the failing checks. A check that raises counts as not ready.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from flask import Blueprint, Response

from gateway.web.jsonapi import json_response

log = logging.getLogger(__name__)

#: A readiness check: named results (``{"database": True, "disk": False}``); ready when all are true.
#: Raising counts as not ready.
Readiness = Callable[[], Mapping[str, bool]]


def health_blueprint(readiness: Readiness | None) -> Blueprint:
    """The two probes; without ``readiness`` the process is ready as soon as it serves."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok", "pid": os.getpid()})

    @bp.get("/readyz")
    def readyz() -> Response:
        if readiness is None:
            return json_response({"ready": True, "checks": {}})
        try:
            checks = {name: bool(ok) for name, ok in readiness().items()}
        except Exception:
            log.exception("readiness check raised")
            checks = {"readiness": False}
        ready = all(checks.values())
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    return bp
