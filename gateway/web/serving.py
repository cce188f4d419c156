"""The gunicorn worker of the gateway: ``worker_class = "gateway.web.serving.GatewayWorker"`` (deploy/gunicorn.conf.py).

Issue 10, finding 1. gunicorn's ``sync`` worker gives a connection the whole process from its first byte, and the
``gthread`` worker a whole thread while headers and body trickle in: two slow clients stalled the service. gunicorn
27's asyncio worker (``gunicorn.workers.gasgi``) parses headers in ``data_received``, so a slow connection costs
a coroutine and a socket — but it has no deadline for the headers of a connection's first request, and no bound
on connections per address. This module adds both, and puts :class:`gateway.web.front.GatewayFront` (whole body
received with a minimum rate, then the WSGI application in a small thread pool) in front of the application
gunicorn loads, so ``gateway.web.wsgi:application`` and every caller of ``gunicorn_argv`` stay as they were.

* :class:`GatewayProtocol` — a connection whose request headers are not complete within
  ``header_timeout_seconds`` is answered 408 and closed. (Later requests on a kept-alive connection are bounded
  by gunicorn's ``keepalive`` timer, which closes the connection even if part of a request has arrived.)
  A client address holding ``max_connections_per_address`` open connections in this worker has further ones
  answered ``429 RATE.LIMITED`` and closed; peers in ``trusted_proxies`` are not counted (the front counts
  their clients' requests instead). ``worker_connections`` bounds all connections of the worker the same way.
* :class:`GatewayWorker` — builds the thread pool (``worker_threads``) and the front, installs the protocol,
  and reports its heartbeat *as of the oldest running request*: a request stuck past gunicorn's ``timeout``
  gets the worker replaced, as a stuck ``sync`` worker was, although the event loop itself is still alive.

Hook point: ``ASGIWorker._serve`` creates ``ASGIProtocol(self)`` by the module-level name of ``gasgi``; the
worker replaces that name, in its own process only, with :class:`GatewayProtocol` (checked, since gunicorn is
pinned: constraints.txt). tests/test_slow_clients.py proves each behaviour on a served gateway.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from gateway.config import Settings, load_settings
from gateway.errors import RateLimitedError
from gateway.web.front import GatewayFront, RunningRequests, TrustedProxies
from gateway.web.memory import configure_allocator

log = logging.getLogger(__name__)

#: A refused connection is kept this long to let its answer reach the client (closing at once, with the
#: client's bytes unread, makes the kernel send a reset that can overtake the answer).
REFUSED_LINGER_SECONDS: Final = 2.0


class ConnectionTable:
    """Open connections of one worker, per client address; used from the event loop only."""

    def __init__(self, per_address: int, total: int, proxies: TrustedProxies) -> None:
        self.per_address = per_address
        self.total = total
        self._proxies = proxies
        self._open: dict[str, int] = {}
        self._count = 0

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False (nothing counted) when over either bound."""
        if self._count >= self.total:
            return False
        if address not in self._proxies:
            held = self._open.get(address, 0)
            if held >= self.per_address:
                return False
            self._open[address] = held + 1
        self._count += 1
        return True

    def release(self, address: str) -> None:
        self._count -= 1
        if address in self._open:
            held = self._open[address] - 1
            if held > 0:
                self._open[address] = held
            else:
                del self._open[address]


def _refusal_bytes() -> bytes:
    error = RateLimitedError("too many open connections from this address", retry_after=1)
    body = json.dumps(error.to_dict()).encode("utf-8")
    head = (
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


_REFUSED: Final = _refusal_bytes()


class GatewayProtocol(ASGIProtocol):
    """gunicorn's HTTP/1.1 protocol with a header deadline and the per-address connection bound."""

    _address: str | None = None
    _refused: bool = False
    _deadline: asyncio.TimerHandle | None = None
    #: The client half-closed (shutdown SHUT_WR): it sends nothing more, but may still read the answer.
    _peer_eof: bool = False

    def connection_made(self, transport: Any) -> None:
        worker: GatewayWorker = self.worker
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "-"
        if not worker.connections.admit(address):
            # Not handed to gunicorn at all (nr_conns untouched): answer, stop writing, close after a moment.
            self._refused = True
            self.transport = transport
            transport.write(_REFUSED)
            if transport.can_write_eof():
                transport.write_eof()
            self._deadline = worker.loop.call_later(REFUSED_LINGER_SECONDS, transport.close)
            log.info("connection from %s refused: too many open connections", address, extra={"status": 429})
            return
        self._address = address
        super().connection_made(transport)
        self._deadline = worker.loop.call_later(worker.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped while the refusal lingers
        super().data_received(data)

    def eof_received(self) -> bool | None:
        """The client finished sending. A request in progress still gets its answer (asyncio's default would
        close the connection at once): a body cut short ends as an ``http.disconnect`` that the front answers
        with 400, as gunicorn's WSGI workers did; the connection closes once the answer is out."""
        self._peer_eof = True
        receiver = self._body_receiver
        if receiver is None:
            return None  # between requests: nothing to answer, close
        if not receiver._complete:
            receiver.signal_disconnect()
        return True

    def _close_transport(self) -> None:
        """gunicorn's close, made certain: it half-closes first and skips ``close()`` if that raises — which it
        does on a connection the client has already dropped (ENOTCONN), leaving it open for good once
        :meth:`eof_received` kept it open to answer."""
        transport = self.transport
        super()._close_transport()
        if transport is not None and not transport.is_closing():
            transport.close()

    def _arm_keepalive_timer(self) -> None:
        if self._peer_eof:  # no further request can come on a half-closed connection
            self._close_transport()
            if self._request_ready is not None:
                self._request_ready.set()
            return
        super()._arm_keepalive_timer()

    def _on_headers_complete(self) -> Any:
        self._cancel_deadline()
        return super()._on_headers_complete()

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._closed or self._current_request is not None:
            return
        worker: GatewayWorker = self.worker
        log.info(
            "connection from %s closed: request headers not complete within %g s",
            self._address,
            worker.header_timeout,
            extra={"status": 408, "code": "REQUEST.TIMEOUT"},
        )
        self._send_error_response(408, f"request headers not complete within {worker.header_timeout:g} s")
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # let the connection's task see it is closed, as keepalive expiry does

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._refused:
            return
        if self._address is not None:
            self.worker.connections.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class GatewayWorker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker serving the gateway's WSGI application through :class:`GatewayFront`."""

    settings: Settings
    header_timeout: float
    connections: ConnectionTable
    executor: ThreadPoolExecutor
    running: RunningRequests

    def init_process(self) -> None:
        settings = load_settings()
        settings.require_serving()
        self.settings = settings
        self.header_timeout = settings.header_timeout_seconds
        proxies = TrustedProxies(settings.trusted_proxies)
        self.connections = ConnectionTable(settings.max_connections_per_address, self.cfg.worker_connections, proxies)
        self.executor = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="edoc-web")
        self.running = RunningRequests()
        os.makedirs(settings.data_dir / "spool", mode=0o700, exist_ok=True)
        configure_allocator()  # large buffers are returned to the system when freed (gateway.web.memory)
        _install_protocol()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()  # self.asgi = what gunicorn loaded: our WSGI application
        self.asgi = GatewayFront(self.asgi, self.settings, self.executor, self.running)
        # Everything built so far (imports, the compiled schemas, spyne's model, the engine) lives as long as the
        # worker: moved to the permanent generation, the collector no longer walks it in every full collection,
        # which otherwise paused the worker's threads and event loop for milliseconds (issue 14).
        gc.collect()
        gc.freeze()

    def notify(self) -> None:
        """The heartbeat, dated at the start of the oldest request still running in a thread (module docstring)."""
        now = time.monotonic()
        oldest = self.running.oldest()
        stamp = now if oldest is None else min(now, oldest)
        os.utime(self.tmp.fileno(), (stamp, stamp))

    def _cleanup(self) -> None:
        super()._cleanup()
        # Queued requests are dropped (their clients are gone with the loop); a thread still running one cannot be
        # stopped: the process exits when it ends, or when the arbiter kills it after graceful_timeout.
        self.executor.shutdown(wait=False, cancel_futures=True)


def _install_protocol() -> None:
    """Make ``ASGIWorker._serve`` build :class:`GatewayProtocol` (module docstring, "Hook point")."""
    current = gasgi.ASGIProtocol
    if current is not ASGIProtocol and current is not GatewayProtocol:
        raise RuntimeError(f"gunicorn.workers.gasgi.ASGIProtocol is {current!r}: not the protocol this worker extends")
    gasgi.ASGIProtocol = GatewayProtocol  # type: ignore[misc]


__all__ = ["ConnectionTable", "GatewayProtocol", "GatewayWorker"]
