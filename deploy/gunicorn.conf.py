"""gunicorn configuration for ``edoc-gateway`` — read by ``gunicorn -c deploy/gunicorn.conf.py``.

Reads the gateway's own settings (``EDOC_GATEWAY_*`` or the file in ``EDOC_GATEWAY_CONFIG``) for what the operator
configures (bind, workers, log level); the rest are fixed choices explained below. Command-line options and
``GUNICORN_CMD_ARGS`` still override everything here (gunicorn's precedence).

Worker class: ``gateway.web.serving.GatewayWorker`` — gunicorn's asyncio (ASGI) worker with the gateway's front
(issue 10). A connection costs a coroutine, not a thread or a process, while its headers and body arrive: headers
must be complete within ``header_timeout_seconds``, a body must keep up ``body_min_rate`` bytes/s after
``body_timeout_seconds`` of grace (else 408 ``REQUEST.TIMEOUT``), a ``Content-Length`` above the limit is refused
before a byte is read, and open connections and requests in progress per client address are bounded. Only a
request that has fully arrived gets one of ``worker_threads`` threads, where the WSGI application
(``gateway.web.wsgi:application``) runs as before. Intake is CPU-bound (parse, XSD, signature verification,
base64 of up to 50 MB) and holds the GIL, so the pool is small on purpose: more threads would add little
throughput but multiply peak memory, which is bounded by workers × worker_threads × (one large package) — the
sizing in deploy/README.md. So gunicorn may face clients directly (``serve``, the demo); nginx in front remains
defence in depth (TLS, buffering, its own limits), not the only defence.
"""

import os

from gateway import logs, metrics_dir
from gateway.config import load_settings

_settings = load_settings()

wsgi_app = "gateway.web.wsgi:application"
bind = _settings.bind
workers = _settings.workers
worker_class = "gateway.web.serving.GatewayWorker"
# The worker's threads are worker_threads (gateway setting), not gunicorn's ``threads``.

# Idle kept-alive connections close after this; it also bounds a later request's headers on such a connection
# (the timer is not stopped by a partial request). The first request's headers: header_timeout_seconds.
keepalive = 5
# The application is WSGI, built when the worker loads it: no ASGI lifespan events to run.
asgi_lifespan = "off"

# No preload: each worker imports the app after the fork and builds its own database engine and pool
# (connections must never be shared across a fork).
preload_app = False

# Recycle workers now and then: a 50 MB package leaves the heap fragmented; jitter keeps them from restarting
# together.
max_requests = 1000
max_requests_jitter = 100

# A 50 MB signed package takes seconds, not minutes; a worker whose oldest running request started 120 s ago is
# stuck and gets replaced (GatewayWorker.notify dates its heartbeat at that request's start).
timeout = 120
# On SIGTERM, let in-flight intakes finish (they are one transaction each; an interrupted one leaves nothing).
graceful_timeout = 30

# Forwarded headers (issue 10, finding 6): believed only from trusted_proxies (EDOC_GATEWAY_TRUSTED_PROXIES), empty
# by default, so a client reaching gunicorn directly — even from 127.0.0.1 — cannot claim TLS (X-Forwarded-Proto
# → scheme, which decides whether HTTP Basic is allowed) or another address (X-Forwarded-For, read by the front).
# Behind the local nginx of deploy/, set it to 127.0.0.1. gunicorn's own FORWARDED_ALLOW_IPS variable is not
# used: one setting decides, and an old one left in an env file stops start-up instead of being half-obeyed.
if "FORWARDED_ALLOW_IPS" in os.environ:
    raise SystemExit(
        "FORWARDED_ALLOW_IPS is no longer read: set EDOC_GATEWAY_TRUSTED_PROXIES (e.g. 127.0.0.1 for the local "
        "nginx) and remove FORWARDED_ALLOW_IPS"
    )
_settings.require_serving()
forwarded_allow_ips = ",".join(_settings.trusted_proxies)
# Only X-Forwarded-Proto, which nginx always overwrites. gunicorn's default also believes X-Forwarded-Ssl and
# X-Forwarded-Protocol, which nginx passes through from the client unless told otherwise.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# The heartbeat file on tmpfs, so a slow or read-only disk (ProtectSystem=strict) cannot make workers look dead.
if os.path.isdir("/dev/shm"):  # noqa: S108 -- tmpfs, not a temporary file
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# gunicorn ≥ 25 opens a control socket in $XDG_RUNTIME_DIR or $HOME/.gunicorn: not writable under
# ProtectSystem=strict/DynamicUser, one fixed path shared by every instance on the host, and nothing we use.
control_socket_disable = True

# The edges log one line per request (SOAP, VDXP, REST: method, path, status, sizes, system, time, fault code;
# the others through gateway.web.observe); gunicorn's access log would only repeat them.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()

# Every line is one structured event (gateway.logs): JSON by default (log_format), with the request's context
# (edge, operation, system, doc_id, document_id, delivery_id). gunicorn's own lines, spyne's and alembic's go
# through the same formatter. stderr: journald under systemd. spyne is quieted by create_app.
logs.configure_structlog()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "gateway.logs.formatter", "log_format": _settings.log_format},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"},
    },
    "root": {"level": _settings.log_level.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level.upper(), "handlers": ["stderr"], "propagate": False},
        # Migration chatter at every worker start is not news.
        "alembic": {"level": "WARNING"},
    },
}


# /metrics under several workers: prometheus_client's multiprocess mode in <data_dir>/metrics/web, emptied once
# when the master starts (before any worker forks, so they all inherit PROMETHEUS_MULTIPROC_DIR); a worker that
# exits keeps its counts in the total (gateway.metrics_dir). No operator step.
def on_starting(server: object) -> None:
    metrics_dir.prepare_web(_settings.data_dir)


def child_exit(server: object, worker: object) -> None:
    metrics_dir.process_dead(worker.pid)  # type: ignore[attr-defined]
