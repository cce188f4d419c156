"""``/healthz`` and ``/readyz``, for load balancers, systemd and the operators.

- ``/healthz`` — the process is alive and answers; no dependency is touched, so a load balancer does not take
  every worker out because the database blinked;
- ``/readyz`` — the injected readiness check (database, disk, worker heartbeat …) passes; 503 otherwise, with
  the failing checks. A check that raises counts as not ready. A check may answer a value with ``ok`` and
  ``to_dict()`` instead of a bool (the disk check, :mod:`gateway.services.disk`): its figures and the reason it
  failed go under ``details`` (issue 11 item 7: the answer says why), and the first failure of a check in this
  process is logged as a WARNING with that reason (load balancers poll often: not every poll).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flask import Blueprint, Response

from gateway.web.jsonapi import json_response

log = logging.getLogger(__name__)


class CheckResult(Protocol):
    """A check's answer with its figures (:class:`gateway.services.disk.DiskCheck`)."""

    @property
    def ok(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


#: A readiness check: named results (``{"database": True, "disk": DiskCheck(…)}``); ready when all are true.
#: Raising counts as not ready.
Readiness = Callable[[], Mapping[str, "bool | CheckResult"]]


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
        details: dict[str, dict[str, Any]] = {}
        try:
            checks: dict[str, bool] = {}
            for name, result in readiness().items():
                if isinstance(result, bool):
                    checks[name] = result
                else:
                    checks[name] = bool(result.ok)
                    details[name] = result.to_dict()
        except Exception:
            log.exception("readiness check raised")
            checks = {"readiness": False}
        _log_changes(checks, details)
        ready = all(checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        if details:
            body["details"] = details
        return json_response(body, 200 if ready else 503)

    return bp


#: The checks that failed at the last poll in this process (a WARNING when one starts failing, INFO when it passes).
_failing: set[str] = set()


def _log_changes(checks: Mapping[str, bool], details: Mapping[str, Mapping[str, Any]]) -> None:
    for name, ok in checks.items():
        if not ok and name not in _failing:
            _failing.add(name)
            reason = details.get(name, {}).get("reason")
            log.warning("readiness check %s failed%s", name, f": {reason}" if reason else "")
        elif ok and name in _failing:
            _failing.discard(name)
            log.info("readiness check %s passes again", name)
