"""Peers that misbehave at the TCP level, on 127.0.0.1, for the adapter tests (issue 11: one error taxonomy).

* :class:`CountingProxy` — a TCP forwarder in front of a real receiver that counts the connections it accepts: the
  server-side proof that concurrent deliveries reuse keep-alive connections.
* :func:`raw_peer` — a socket server whose handler does something no HTTP framework would: read the request and
  close (or reset) the connection without answering, answer a byte at a time.
* :func:`unanswered_port` — a port that accepts no connections within any test's connect timeout (a listening socket
  whose accept queue is full: Linux drops further SYNs), the loopback stand-in for a firewall that drops packets.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator


class CountingProxy:
    """Forwards every accepted connection to ``127.0.0.1:target``; ``accepted`` counts them."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self._target))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def read_request(conn: socket.socket) -> bytes:
    """One whole HTTP request (headers and a Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def close_after_request(conn: socket.socket) -> None:
    """Read the whole request, then close without a word (the peer died before answering)."""
    read_request(conn)


def reset_after_request(conn: socket.socket) -> None:
    """Read the whole request, then reset the connection (RST: SO_LINGER 0)."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def trickle(seconds_per_byte: float, total: int = 60) -> Callable[[socket.socket], None]:
    """Read the request, send 200 headers promptly, then the body a byte every ``seconds_per_byte``."""

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {total}\r\n\r\n".encode())
        for _ in range(total):
            time.sleep(seconds_per_byte)
            conn.sendall(b" ")

    return handler


def not_http(conn: socket.socket) -> None:
    """Read the request, answer bytes that are not an HTTP status line."""
    read_request(conn)
    conn.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")


@contextlib.contextmanager
def raw_peer(handler: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on 127.0.0.1 running ``handler`` on each connection (then closing it); yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            handler(conn)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port where a new connection is never accepted in time: a listening socket with backlog 0 whose queue is
    filled first (Linux then drops further SYNs, so ``connect`` times out instead of being refused)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):  # enough to fill the accept queue (backlog 0 holds one or two)
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


# ------------------------------------------------------------------------------------------ the shared table

#: Transport failures every channel must classify alike (adapters.peer_http): name → (wire code, ``sent``; None for
#: errors without a ``sent`` flag).
TRANSPORT_FAULTS: dict[str, tuple[str, bool | None]] = {
    "refused": ("DELIVERY.UNREACHABLE", None),
    "connect-timeout": ("DELIVERY.TIMEOUT", False),
    "closed-after-request": ("DELIVERY.TIMEOUT", True),
    "reset-after-request": ("DELIVERY.TIMEOUT", True),
    "trickling-answer": ("DELIVERY.TIMEOUT", True),
    "not-http": ("DELIVERY.PROTOCOL", None),
}


@contextlib.contextmanager
def transport_fault(name: str) -> Iterator[str]:
    """A URL where the :data:`TRANSPORT_FAULTS` failure ``name`` happens (trickling: a byte every 0.3 s)."""
    if name == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield f"http://127.0.0.1:{port}/"
    elif name == "connect-timeout":
        with unanswered_port() as port:
            yield f"http://127.0.0.1:{port}/"
    else:
        handler = {
            "closed-after-request": close_after_request,
            "reset-after-request": reset_after_request,
            "trickling-answer": trickle(0.3),
            "not-http": not_http,
        }[name]
        with raw_peer(handler) as url:
            yield url


def concurrently(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` at once, one thread each; their results or the exceptions they raised, in order."""
    results: list[object] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results
