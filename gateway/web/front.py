"""The ASGI front of the web application: slow or greedy clients are dealt with here, before any thread is spent.

Issue 10, finding 1: under gunicorn's ``sync`` workers two connections trickling their headers or body at a few
bytes per second held both workers, and every legitimate call waited 25–40 s. The serving model is now:

* gunicorn's asyncio worker (:mod:`gateway.web.serving`) reads headers without a thread, and closes a connection
  whose headers are not complete within ``header_timeout_seconds``;
* this front receives the whole body in the event loop — a coroutine per connection, no thread — with a
  deadline that moves with what has arrived (``body_timeout_seconds`` of grace, then ``body_min_rate`` bytes
  per second on average), refusing a ``Content-Length`` above ``max_body_bytes`` before reading a byte, and
  spooling the body to ``data_dir/spool`` above 1 MiB;
* only a fully received request gets one of the ``worker_threads`` threads, where the WSGI application (Flask,
  the SOAP guard, spyne) runs exactly as before (:mod:`gateway.web.wsgibridge`);
* requests in progress per client address are bounded (``max_requests_per_address``), and so are open
  connections per address (:mod:`gateway.web.serving`) and running operations per system (the SOAP guard).

Refusals made here speak each edge's language: a SOAP Fault on ``/soap``, the VDXP ``FAIL`` answer on
``/vdxp/…``, the JSON error elsewhere — with ``REQUEST.TIMEOUT`` (408), ``SIZE.LIMIT`` (413) or ``RATE.LIMITED``
(429 + ``Retry-After``), and ``Connection: close``. Nothing reaches the application, so nothing is stored.

Each request runs in a fresh :class:`contextvars.Context`: a thread of the pool serves many requests, and the
log context of one must never show up in another (gateway.logs binds per request with contextvars).
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import itertools
import json
import logging
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import IO, Any, Final

from gateway.config import Settings
from gateway.errors import GatewayError, RateLimitedError, RequestError, RequestTimeoutError, SizeLimitError
from gateway.protocols import edocvn, vdxp
from gateway.protocols.edocvn.names import PLAIN_RESPONSE_TYPE
from gateway.web.faults import FaultInfo, fault_envelope
from gateway.web.memory import LARGE_REQUEST_BYTES, release_free_memory
from gateway.web.rawhttp import WsgiApp, log_safe
from gateway.web.slots import Slots
from gateway.web.wsgibridge import StreamedBody, WsgiAnswer, build_environ, call_wsgi

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

#: Bodies up to this size stay in memory while they arrive; larger ones go to a file in data_dir/spool.
SPOOL_IN_MEMORY: Final = 1 << 20
#: What a client refused for too many requests in progress is told to wait, in seconds.
RETRY_AFTER_SECONDS: Final = 1
_SOAP_PATHS: Final = frozenset({"/soap", "/soap/"})


class TrustedProxies:
    """The peers whose forwarded headers are believed (``settings.trusted_proxies``; empty: none)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(entry.strip(), strict=True) for entry in entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def client_address(scope: Mapping[str, Any], proxies: TrustedProxies) -> str:
    """The address a request is attributed to: the TCP peer, or behind trusted proxies the client they forward.

    ``X-Forwarded-For`` is read right to left, skipping trusted proxies; the first other address is the client
    (the local nginx sets the header to ``$remote_addr``, replacing whatever the client sent). From an untrusted
    peer the header is ignored: anyone can write it.
    """
    peer = str((scope.get("client") or ("-", 0))[0])
    if peer not in proxies:
        return peer
    forwarded = b",".join(value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # not an address: the proxy did not write it, so trust nothing in it
    return peer


class RunningRequests:
    """Start times of the requests running in the application threads: the worker's heartbeat reads the oldest
    (:meth:`gateway.web.serving.GatewayWorker.notify`), so a request stuck past gunicorn's ``timeout`` gets the
    worker replaced, as a stuck ``sync`` worker was."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def run(self, work: Callable[[], WsgiAnswer]) -> WsgiAnswer:
        with self._lock:
            ticket = next(self._ids)
            self._started[ticket] = time.monotonic()
        try:
            return work()
        finally:
            with self._lock:
                del self._started[ticket]

    def oldest(self) -> float | None:
        """``time.monotonic()`` at which the longest-running request started; None when none runs."""
        with self._lock:
            return min(self._started.values(), default=None)


class GatewayFront:
    """The ASGI application gunicorn's worker calls: receive, bound, then run the WSGI ``app`` in a thread."""

    def __init__(
        self, app: WsgiApp, settings: Settings, executor: Executor, running: RunningRequests | None = None
    ) -> None:
        self._app = app
        self._executor = executor
        self._running = running or RunningRequests()
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self._max_body = settings.max_body_bytes
        self._grace = settings.body_timeout_seconds
        self._min_rate = float(settings.body_min_rate)
        self._per_address = Slots(settings.max_requests_per_address)
        self._spool_dir = Path(settings.data_dir) / "spool"
        self._legacy_paths = frozenset(settings.legacy_endpoint_paths)

    @property
    def running(self) -> RunningRequests:
        return self._running

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        else:  # websocket: the gateway serves none
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        client = client_address(scope, self._proxies)
        if not self._per_address.acquire(client):
            error = RateLimitedError(
                f"too many requests in progress from this address (at most {self._per_address.limit} per worker)",
                retry_after=1,
                limit=self._per_address.limit,
            )
            await self._refuse(scope, send, 429, error, client, started)
            return
        release_later = False
        try:
            body = await self._receive_body(scope, receive, send, client, started)
            if body is None:
                return
            spool = body
            try:
                large = spool.seek(0, 2) > LARGE_REQUEST_BYTES
                spool.seek(0)
                environ = build_environ(scope, spool, client=client)
                context = contextvars.Context()  # a clean log context for every request (module docstring)
                work = self._executor.submit(self._running.run, lambda: context.run(_call, self._app, environ, large))
                try:
                    answer = await asyncio.wrap_future(work)
                except asyncio.CancelledError:
                    # The client left (gunicorn cancels the call). A request still queued is dropped; one
                    # already running cannot be stopped and keeps its address slot until it ends, so leaving
                    # and coming back does not start more work than the bound.
                    if not work.cancel():
                        release_later = True
                        work.add_done_callback(lambda done: self._end(client, spool, done))
                    raise
            finally:
                if not release_later:
                    spool.close()
            await self._answer(send, answer, started)
        finally:
            if not release_later:
                self._per_address.release(client)

    def _end(self, client: str, spool: IO[bytes], done: Future[WsgiAnswer]) -> None:
        """A request that outlived its connection is done: give back what it held (called from its thread)."""
        spool.close()
        if not done.cancelled() and done.exception() is None:
            done.result().close()  # an answer from a file nobody will read
        self._per_address.release(client)

    # ------------------------------------------------------------------------------------------ body

    async def _receive_body(
        self, scope: Scope, receive: Receive, send: Send, client: str, started: float
    ) -> IO[bytes] | None:
        """The whole body, spooled; None when the request was refused here or the client went away."""
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body:
            error = SizeLimitError(
                f"request body is {declared} bytes, above the limit of {self._max_body} bytes",
                size=declared,
                limit=self._max_body,
            )
            await self._refuse(scope, send, 413, error, client, started)
            return None
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self._spool_dir)  # noqa: SIM115
        received = 0
        try:
            while True:
                # The deadline moves with the body: the grace period, then one second per min_rate bytes.
                remaining = started + self._grace + received / self._min_rate - time.monotonic()
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.0))
                except TimeoutError:
                    error = RequestTimeoutError(
                        f"request body too slow: {received} bytes after {time.monotonic() - started:.0f} s; "
                        f"send at least {int(self._min_rate)} bytes per second",
                        received=received,
                        min_rate=int(self._min_rate),
                    )
                    await self._refuse(scope, send, 408, error, client, started)
                    spool.close()
                    return None
                if message["type"] == "http.disconnect":
                    # The body ended short: said to a client that only half-closed (a lost connection hears
                    # nothing), as the edges said it under gunicorn's WSGI workers (rawhttp.read_body).
                    error = RequestError(
                        f"request body ended after {received} of {declared} bytes"
                        if declared is not None
                        else f"request body ended after {received} bytes",
                        received=received,
                    )
                    await self._refuse(scope, send, 400, error, client, started)
                    spool.close()
                    return None
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self._max_body:  # chunked (no Content-Length to check first)
                    error = SizeLimitError(
                        f"request body is above the limit of {self._max_body} bytes", limit=self._max_body
                    )
                    await self._refuse(scope, send, 413, error, client, started)
                    spool.close()
                    return None
                spool.write(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    # ------------------------------------------------------------------------------------------ answers

    async def _answer(self, send: Send, answer: WsgiAnswer, started: float) -> None:
        """Send the application's answer — from its file, piece by piece, when it has one (a big package) — and
        cut off a client that does not read it in time."""
        size = answer.size
        deadline = self._grace + size / self._min_rate
        try:
            if answer.stream is None:
                sending = _send_all(send, answer.status, answer.headers, b"".join(answer.body))
            else:
                sending = _send_stream(send, answer.status, answer.headers, answer.stream)
            await asyncio.wait_for(sending, timeout=deadline)
        except TimeoutError:
            # Returning mid-answer makes gunicorn close the connection: the coroutine and the bytes go.
            log.warning(
                "client did not read a %d-byte answer within %.0f s; connection closed",
                size,
                deadline,
                extra={"status": answer.status, "duration_ms": round((time.monotonic() - started) * 1000, 1)},
            )
        finally:
            answer.close()

    async def _refuse(
        self, scope: Scope, send: Send, status: int, error: GatewayError, client: str, started: float
    ) -> None:
        """Refuse before the application runs, in the edge's own format, and close the connection."""
        path = str(scope.get("path", ""))
        legacy = path.rstrip("/") in self._legacy_paths
        content_type, body = _refusal_body(path, error, legacy, _header(scope, b"soapaction"))
        headers = [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"connection", b"close"),
        ]
        if status == 429:
            headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode("latin-1")))
        edge = (
            "soap" if path in _SOAP_PATHS else "vdxp" if path.startswith("/vdxp/") else "legacy" if legacy else "other"
        )
        seconds = time.monotonic() - started
        # Imported here: gunicorn's master imports this module (with the worker class) before its on_starting
        # names the multiprocess directory, and prometheus_client picks its storage when first imported.
        from gateway import metrics

        metrics.observe_request(edge=edge, operation="other", status=str(status), seconds=seconds)
        log.info(
            "%s %s %d refused before the application: client=%s %.1fms code=%s",
            log_safe(str(scope.get("method", "")), 16),
            log_safe(path, 120),
            status,
            log_safe(client),
            seconds * 1000,
            error.code,
            extra={"status": status, "duration_ms": round(seconds * 1000, 1), "code": error.code, "edge": edge},
        )
        await _send_all(send, status, headers, body)


def _call(app: WsgiApp, environ: dict[str, Any], large: bool) -> WsgiAnswer:
    """One application call in a pool thread; after a large request, free heap goes back to the system."""
    answer = call_wsgi(app, environ)
    if large or answer.size > LARGE_REQUEST_BYTES:
        release_free_memory()
    return answer


def _content_length(scope: Mapping[str, Any]) -> int | None:
    """The declared Content-Length if it is a number (gunicorn has refused a malformed or repeated one)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _refusal_body(path: str, error: GatewayError, legacy: bool, soap_action: str | None) -> tuple[str, bytes]:
    """The refusal as the edge at ``path`` would have written it (the legacy edge: a Report in the wrapper its
    SOAPAction names, legacy-edoc-vn.md §4)."""
    if legacy:
        return PLAIN_RESPONSE_TYPE, edocvn.error_answer(edocvn.parse_soap_action(soap_action), error)
    if path in _SOAP_PATHS:
        return "text/xml; charset=utf-8", fault_envelope(FaultInfo.from_error(error))
    if path.startswith("/vdxp/"):
        operation = path[len("/vdxp/") :].split("/", 1)[0]
        return vdxp.ANSWER_CONTENT_TYPE, vdxp.encode_answer(vdxp.error_answer(error, operation))
    return "application/json", json.dumps(error.to_dict(), ensure_ascii=False).encode("utf-8")


async def _send_all(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_stream(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: StreamedBody) -> None:
    """The answer read from its file a piece at a time (gunicorn's send waits while the client is behind, so at
    most a piece or two is in memory)."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for piece in body:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    """ASGI lifespan: nothing to start or stop (the WSGI application was built when gunicorn loaded it)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["GatewayFront", "RunningRequests", "TrustedProxies", "client_address"]
