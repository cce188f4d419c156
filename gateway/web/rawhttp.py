"""The HTTP layer of the edges that read a raw body themselves: the SOAP guard and the VDXP edge.

Both refuse on headers before reading anything (size, length, media type), then read exactly ``Content-Length``
bytes — the body is what a signature or a hash is checked over, so no framework buffers or transforms it first.
What they share lives here once: the WSGI types, :class:`Refusal` (an HTTP status for a refusal, rendered by
each edge in its own answer format), :func:`read_body` and the log helpers. Framework-free on purpose: the SOAP
path never enters Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from gateway.errors import GatewayError, RequestError

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_READ_CHUNK: Final = 1 << 20


class Refusal(Exception):
    """A refusal at the HTTP layer with its status; the edge renders ``error`` in its own format (Fault, FAIL)."""

    def __init__(self, status: int, error: GatewayError, *, close: bool = False) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        #: Ask the server to close the connection (the unread body must not be parsed as the next request).
        self.close = close


def declared_length(headers: Mapping[str, str]) -> int:
    """The request's ``Content-Length`` (0 when there is none and no chunked framing: an empty body), checked before
    a byte of the body is read: chunked bodies are refused (411), a malformed length too (400); gunicorn has
    already refused a repeated one."""
    raw = (headers.get("Content-Length") or "").strip()
    if not raw:
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            message = "Content-Length is required (chunked request bodies are not accepted)"
            raise Refusal(411, RequestError(message), close=True)
        return 0
    if not raw.isdigit():
        raise Refusal(400, RequestError("Content-Length is not a number"), close=True)
    return int(raw)


def read_body(stream: Any, length: int) -> bytes:
    """Exactly ``length`` bytes (already checked against the limit), or REQUEST.INVALID if the client stopped."""
    return b"".join(body_chunks(stream, length))


def body_chunks(stream: Any, length: int) -> Iterator[bytes]:
    """:func:`read_body` in pieces of at most 1 MiB, for an edge that spools the body instead of joining it."""
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            raise Refusal(
                400, RequestError(f"request body ended after {length - remaining} of {length} bytes"), close=True
            )
        remaining -= len(chunk)
        yield chunk


def length_for_log(environ: Mapping[str, Any]) -> str:
    """The declared ``Content-Length`` when it is a number, else ``-``."""
    raw = (environ.get("CONTENT_LENGTH") or "").strip()
    return raw if raw.isdigit() else "-"


def log_safe(value: str, limit: int = 64) -> str:
    """Attacker-controlled text for the log: printable, no spaces, bounded (no forged or split lines)."""
    return "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in value[:limit]) or "?"
