"""The ``rest`` channel: push a package as canonical JSON to a peer's HTTPS endpoint, HMAC-signed.

Wire contract (what a REST peer implements; :mod:`adapters.rest.receiver` is the reference):

``POST <endpoint>`` with ``Content-Type: application/json`` and the body::

    {"messageId": "<delivery id, stable across retries>", "docId": "...", "kind": "edoc" | "status",
     "sender": "<OrganId>", "recipient": "<OrganId>", "documentId": "...",
     "package": {<canonical JSON of the package, xsd/edxml-package.schema.json>},
     "raw": "<base64 of the package bytes exactly as received: non-repudiation>"}

Headers: ``X-Edoc-Message-Id`` (= messageId), ``X-Edoc-Timestamp`` (Unix seconds) and
``X-Edoc-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>`` — the webhook scheme most
platforms use, so a receiver can check authenticity and freshness before parsing. Any 2xx means delivered;
408, 429 and 5xx are retried; other 4xx are permanent (dead-lettered at once). Receivers must de-duplicate
on messageId: after a crash between their 2xx and our commit, the same message comes again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import requests

from gateway.edxml import read_bytes, to_json
from gateway.errors import GatewayError
from gateway.ports import DeliveryError, DeliveryResult, OutgoingPackage, Peer

SIGNATURE_HEADER = "X-Edoc-Signature"
TIMESTAMP_HEADER = "X-Edoc-Timestamp"
MESSAGE_ID_HEADER = "X-Edoc-Message-Id"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


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
    doc = {
        "messageId": package.delivery_id,
        "docId": package.doc_id,
        "kind": package.kind.value,
        "sender": package.sender,
        "recipient": package.recipient,
        "documentId": package.document_id,
        "package": to_json(read_bytes(package.data)),
        "raw": base64.b64encode(package.data).decode("ascii"),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class RestAdapter:
    """``PeerAdapter`` for the ``rest`` channel; one HTTP session (connection pool) per adapter."""

    channel = "rest"

    def __init__(self, *, connect_timeout: float = 10, read_timeout: float = 60) -> None:
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        if not peer.endpoint:
            raise DeliveryError(f"agency {peer.organ_id} has no REST endpoint", retryable=False)
        key = peer.credentials.get("hmac_key")
        if not key:
            raise DeliveryError(f"agency {peer.organ_id} has no REST HMAC key", retryable=False)
        try:
            body = message_body(package)
        except GatewayError as exc:  # a stored package always reads; this would be a bug or a corrupted store
            raise DeliveryError(f"package {package.doc_id} cannot be converted: {exc}", retryable=False) from None
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            MESSAGE_ID_HEADER: package.delivery_id,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(key.encode("utf-8"), ts, body),
            "User-Agent": "edoc-gateway",
        }
        try:
            resp = self._session.post(peer.endpoint, data=body, headers=headers, timeout=self._timeout)
        except requests.Timeout:
            raise DeliveryError(f"{peer.endpoint} timed out", retryable=True) from None
        except requests.RequestException as exc:
            raise DeliveryError(f"{peer.endpoint} unreachable: {type(exc).__name__}", retryable=True) from None
        answer = resp.text[:200]
        if 200 <= resp.status_code < 300:
            ref = None
            try:
                reply = resp.json()
                ref = str(reply.get("receiverRef")) if isinstance(reply, dict) and reply.get("receiverRef") else None
            except ValueError:
                pass
            return DeliveryResult(peer_reference=ref, peer_answer=f"HTTP {resp.status_code}")
        retryable = resp.status_code >= 500 or resp.status_code in _RETRYABLE_STATUS
        raise DeliveryError(
            f"{peer.endpoint} answered HTTP {resp.status_code}",
            retryable=retryable,
            peer_answer=answer,
            http_status=resp.status_code,
        )

    def close(self) -> None:
        self._session.close()
