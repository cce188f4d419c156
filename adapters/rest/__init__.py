"""The ``rest`` channel: push a package as canonical JSON to a peer's HTTPS endpoint, HMAC-signed.

Wire contract (what a REST peer implements; :mod:`adapters.rest.receiver` is the reference):

``POST <endpoint>`` with ``Content-Type: application/json`` and the body::

    {"messageId": "<delivery id, stable across retries>", "docId": "...", "kind": "edoc" | "status",
     "sender": "<OrganId>", "recipient": "<OrganId>", "documentId": "...",
     "package": {<canonical JSON of the package, xsd/edxml-package.schema.json>},
     "raw": "<base64 of the package bytes exactly as received: non-repudiation>"}

Headers: ``X-Edoc-Message-Id`` (= messageId), ``X-Edoc-Timestamp`` (Unix seconds) and
``X-Edoc-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>`` — the webhook scheme most
platforms use, so a receiver can check authenticity and freshness before parsing. Any 2xx means delivered.
Receivers must de-duplicate on messageId: after a crash between their 2xx and our commit, or after an answer we
did not wait for, the same message comes again.

Failures (the shared table of :mod:`adapters.peer_http`; the HTTP status is the contract's answer here):

============================================================  =========================================  =======
what happened                                                 error                                      retried
============================================================  =========================================  =======
no connection within the connect timeout                      ``DELIVERY.TIMEOUT`` (``sent=False``)      yes
no answer within the read timeout, answer trickling past it,  ``DELIVERY.TIMEOUT`` (``sent=True``: the   yes
connection broken after it was made                           outcome is unknown, the peer may have it)
connection refused, DNS, TLS                                  ``DELIVERY.UNREACHABLE``                   yes
HTTP 5xx, 408, 425, 429                                       ``DELIVERY.PEER_ERROR``                    yes
HTTP 413 and every other 4xx (bad signature, bad message)     ``DELIVERY.REFUSED``                       no
not HTTP, 1xx/3xx, an answer over 1 MiB                       ``DELIVERY.PROTOCOL``                      yes
no endpoint, not an http(s) URL, no HMAC key                  ``DELIVERY.CONFIG``                        yes
============================================================  =========================================  =======

The read timeout is the adapter's unless the worker asks for another for one attempt
(``OutgoingPackage.read_timeout``: a longer one after an unknown outcome). One ``requests`` session serves every
peer and every worker thread, its keep-alive pools sized for concurrent sends (:func:`adapters.peer_http.mount_pools`).

Memory (issue 14): the body is built whole — the package read into memory once, parsed into the model, rendered
as canonical JSON (attachments base64 inside it) next to the base64 of the raw bytes, then encoded — so a 20 MB
package (one 15 MB attachment) costs about +240 MiB (12.6× the package) per send in flight while the body is built
(an in-process probe of :func:`message_body` from a spooled payload; the 44 MiB body is then sent as it is). The
contract itself carries the package twice; streaming it would mean writing the JSON around two base64 encoders fed
from the spool file and the parsed attachments: not done — VDXP streams (:mod:`adapters.vdxp.client`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import requests

from adapters.peer_http import (
    DEFAULT_CONNECTIONS_PER_HOST,
    AnswerTooLarge,
    SlowAnswer,
    classify_status,
    delivery_error,
    mount_pools,
    pool_size,
    read_answer,
    transport_error,
)
from gateway.edxml import read_bytes, to_json
from gateway.ports import DeliveryConfigError, DeliveryResult, OutgoingPackage, Peer

if TYPE_CHECKING:
    from gateway.config import Settings

SIGNATURE_HEADER = "X-Edoc-Signature"
TIMESTAMP_HEADER = "X-Edoc-Timestamp"
MESSAGE_ID_HEADER = "X-Edoc-Message-Id"
#: Largest answer read from a peer: the contract's answer is a few dozen bytes.
MAX_ANSWER_BYTES: Final = 1024 * 1024


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Edoc-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(
    key: bytes, timestamp: str, body: bytes, signature: str, *, max_age: int = 300, now: float | None = None
) -> bool:
    """Receiver side: a valid signature over a timestamp no older (or newer) than ``max_age`` seconds."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(sign(key, timestamp, body), signature)


def message_body(package: OutgoingPackage) -> bytes:
    """The JSON body for one delivery (canonical JSON of the package plus its raw bytes)."""
    raw = package.data  # once: a big package's spool file is read whole here (module docstring: the cost)
    doc = {
        "messageId": package.delivery_id,
        "docId": package.doc_id,
        "kind": package.kind.value,
        "sender": package.sender,
        "recipient": package.recipient,
        "documentId": package.document_id,
        "package": to_json(read_bytes(raw)),
        "raw": base64.b64encode(raw).decode("ascii"),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class RestAdapter:
    """``PeerAdapter`` for the ``rest`` channel: one HTTP session (keep-alive pools per peer host) shared by the
    worker's threads; thread-safe (no per-call state outside the call)."""

    channel = "rest"

    def __init__(
        self,
        *,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_answer = max_answer_bytes
        self._session = mount_pools(requests.Session(), connections_per_host=connections_per_host)

    @classmethod
    def from_settings(cls, settings: Settings) -> RestAdapter:
        """The factory the worker's adapter registry calls: the adapter timeouts, pools sized for its threads."""
        return cls(
            connect_timeout=float(settings.adapter_connect_timeout),
            read_timeout=float(settings.adapter_read_timeout),
            connections_per_host=pool_size(settings),
        )

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        endpoint = (peer.endpoint or "").strip()
        # Configuration errors are retried: an operator can fix the registry while the retry budget lasts.
        if not endpoint:
            raise DeliveryConfigError(f"agency {peer.organ_id} has no REST endpoint")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeliveryConfigError(f"the REST endpoint of {peer.organ_id} is not an http(s) URL")
        key = peer.credentials.get("hmac_key")
        if not key:
            raise DeliveryConfigError(f"agency {peer.organ_id} has no REST HMAC key")
        # A stored package always reads: a failure here is a bug or a corrupted store, not the peer's doing, so it
        # propagates as is (the engine records DELIVERY.INTERNAL and logs the traceback) rather than as a peer error.
        body = message_body(package)
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            MESSAGE_ID_HEADER: package.delivery_id,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(key.encode("utf-8"), ts, body),
            "User-Agent": "edoc-gateway",
        }
        read_timeout = package.read_timeout if package.read_timeout is not None else self._read_timeout
        try:
            resp = self._session.post(
                endpoint,
                data=body,
                headers=headers,
                timeout=(self._connect_timeout, read_timeout),
                stream=True,
                allow_redirects=False,
            )
            with resp:
                content = read_answer(resp, max_bytes=self._max_answer, seconds=read_timeout)
        except (requests.RequestException, AnswerTooLarge, SlowAnswer) as exc:  # one table: adapters.peer_http
            raise transport_error(exc, endpoint) from None
        status = resp.status_code
        if 200 <= status < 300:
            ref = None
            try:
                reply = json.loads(content)
                ref = str(reply.get("receiverRef")) if isinstance(reply, dict) and reply.get("receiverRef") else None
            except ValueError:
                pass
            return DeliveryResult(peer_reference=ref, peer_answer=f"HTTP {status}")
        failure = classify_status(status, contract_answer=True)
        raise delivery_error(
            failure,
            f"{endpoint} answered HTTP {status}",
            peer_answer=f"HTTP {status}: " + content[:200].decode("utf-8", "replace"),
            http_status=status,
        )

    def close(self) -> None:
        self._session.close()
