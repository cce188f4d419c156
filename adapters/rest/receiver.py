"""Reference REST receiver: what a modern QLVB implements to take pushes on the ``rest`` channel.

A WSGI app (``gunicorn 'adapters.rest.receiver:make_app()'``) configured by environment variables:
``EDOC_RECEIVER_DIR`` (where messages are stored), ``EDOC_RECEIVER_HMAC_KEY`` (the shared key),
``EDOC_RECEIVER_MAX_BYTES`` (body limit, default 70 MiB). It checks size, signature and freshness before
parsing, stores each message once per messageId (atomic write; a repeat is answered 200 and counted as a
duplicate, never written again), and answers ``{"accepted": true, "receiverRef": ...}``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from adapters.rest import MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _reply(start: StartResponse, status: str, doc: dict[str, Any]) -> Iterable[bytes]:
    body = json.dumps(doc).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(directory: str | os.PathLike[str] | None = None, key: str | None = None, max_bytes: int | None = None):
    """The receiver WSGI app; arguments default to the ``EDOC_RECEIVER_*`` environment variables."""
    root = Path(directory or os.environ["EDOC_RECEIVER_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    secret = (key or os.environ["EDOC_RECEIVER_HMAC_KEY"]).encode("utf-8")
    limit = max_bytes or int(os.environ.get("EDOC_RECEIVER_MAX_BYTES", str(70 * 1024 * 1024)))

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(start, "405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return _reply(start, "411 Length Required", {"error": "Content-Length required"})
        if length > limit:
            return _reply(start, "413 Payload Too Large", {"error": f"body above {limit} bytes"})
        body = environ["wsgi.input"].read(length)
        ts = environ.get("HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_"), "")
        sig = environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), "")
        if not verify(secret, ts, body, sig):
            return _reply(start, "401 Unauthorized", {"error": "bad or stale signature"})
        try:
            doc = json.loads(body)
            message_id = str(doc["messageId"])
        except (ValueError, KeyError, TypeError):
            return _reply(start, "400 Bad Request", {"error": "not a message"})
        if message_id != environ.get("HTTP_" + MESSAGE_ID_HEADER.upper().replace("-", "_")) or not _SAFE_ID.match(
            message_id
        ):
            return _reply(start, "400 Bad Request", {"error": "bad messageId"})
        target = root / f"{message_id}.json"
        tmp = root / f".{message_id}.{os.getpid()}.{id(environ)}.tmp"
        tmp.write_bytes(body)
        try:
            os.link(tmp, target)  # atomic and exclusive: stored whole, once, even under concurrent repeats
        except FileExistsError:
            with (root / "duplicates.log").open("a", encoding="utf-8") as log:
                log.write(message_id + "\n")
        finally:
            tmp.unlink()
        return _reply(start, "200 OK", {"accepted": True, "receiverRef": message_id})

    return app
