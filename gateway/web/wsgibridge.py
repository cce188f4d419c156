"""A small PEP 3333 bridge: an ASGI HTTP scope plus a fully received body → one call of a WSGI application.

Why our own and not a library (``a2wsgi``, ``asgiref.wsgi``): those stream the body to the WSGI application
while it runs in a thread, so a client that sends its body slowly holds that thread — the very thing the serving
model (:mod:`gateway.web.front`) exists to prevent. Here the front receives the whole body first, and the bridge
only turns a finished request into a WSGI call and the WSGI answer into bytes; it has no I/O of its own. Swapping
in another bridge means replacing :func:`build_environ` and :func:`call_wsgi`, nothing else.

The environ is what gunicorn's own WSGI workers build, so the application cannot tell the difference:
``PATH_INFO`` percent-decoded from the raw path and carried as latin-1 (PEP 3333 "bytes in a str"),
``SCRIPT_NAME`` from the scope's ``root_path``, ``wsgi.url_scheme`` from the scope (gunicorn sets it from
``X-Forwarded-Proto`` only for peers in ``forwarded_allow_ips``), repeated headers joined with ``,``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final
from urllib.parse import unquote_to_bytes

from gateway.payload import Payload
from gateway.web.rawhttp import WsgiApp

#: environ key of the TCP peer (the proxy, behind one); ``REMOTE_ADDR`` is the client (gateway.web.front).
ENV_PEER_ADDR = "edoc_gateway.peer_addr"


#: The piece a :class:`StreamedBody` is read and sent in.
SEND_CHUNK: Final = 256 * 1024


class StreamedBody:
    """An answer body held in a :class:`~gateway.payload.Payload` (a spool file when big: a GetEdoc of a 20 MB
    package, issue 14). Any WSGI server iterates it in pieces and calls :meth:`close`; :func:`call_wsgi` keeps it as
    it is, so the front sends it from the file instead of joining it in memory."""

    def __init__(self, payload: Payload) -> None:
        self.payload = payload

    @property
    def size(self) -> int:
        return self.payload.size

    def __iter__(self) -> Iterator[bytes]:
        return self.payload.chunks(SEND_CHUNK)

    def close(self) -> None:
        self.payload.close()


@dataclass
class WsgiAnswer:
    """What the application answered: status code, headers (latin-1 bytes, as ASGI wants them) and body — in
    ``body``, or in ``stream`` (an answer from a file; the receiver closes it)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: list[bytes] = field(default_factory=list)
    stream: StreamedBody | None = None

    @property
    def size(self) -> int:
        return self.stream.size if self.stream is not None else sum(len(chunk) for chunk in self.body)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def build_environ(scope: Mapping[str, Any], body: IO[bytes], *, client: str) -> dict[str, Any]:
    """The WSGI environ of one HTTP request; ``body`` is the whole request body, positioned at 0.

    ``client`` is the address the request is attributed to (the forwarded one behind a trusted proxy); the
    socket peer is kept under :data:`ENV_PEER_ADDR`. A chunked request keeps no ``CONTENT_LENGTH``, as under
    gunicorn's WSGI workers, so the edges refuse it as before (411).
    """
    root_path = scope.get("root_path", "") or ""
    raw_path = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
    path = unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("latin-1")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    server = scope.get("server") or ("localhost", 80)
    peer = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client,
        "REMOTE_PORT": str(peer[1]),
        ENV_PEER_ADDR: str(peer[0]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "CONTENT_LENGTH":
            environ["CONTENT_LENGTH"] = value
            continue
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> WsgiAnswer:
    """Run the application for ``environ`` to the end: status, headers, and the body iterated and closed.

    Runs in a worker thread; the whole answer is collected — in memory, or kept in its file when the application
    answers with a :class:`StreamedBody` — so the thread is free before a slow reader has taken a byte of it.
    """
    answer = WsgiAnswer(500, [])
    started = False

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # exc_info (an error page replacing a started answer) needs no re-raise: nothing has been sent yet.
        nonlocal started
        started = True
        answer.status = int(status.split(" ", 1)[0])
        answer.headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        return answer.body.append  # the legacy write() callable

    result: Iterable[bytes] = app(environ, start_response)
    if isinstance(result, StreamedBody):
        if not started:
            result.close()
            raise RuntimeError("the WSGI application returned without calling start_response")
        answer.stream = result
        return answer
    try:
        for chunk in result:
            if chunk:
                answer.body.append(bytes(chunk))
    finally:
        close = getattr(result, "close", None)
        if callable(close):
            close()
    if not started:
        raise RuntimeError("the WSGI application returned without calling start_response")
    return answer


__all__ = ["ENV_PEER_ADDR", "StreamedBody", "WsgiAnswer", "build_environ", "call_wsgi"]
