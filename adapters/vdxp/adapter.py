"""The ``vdxp`` channel: deliver stored packages to a VDXP axis (``sendEdoc``) and poll it for ours.

:class:`VdxpAdapter` is a :class:`gateway.ports.PeerAdapter` and a :class:`gateway.ports.PollingAdapter`:

* ``deliver(peer, package)`` → ``sendEdoc(from = package.sender, messagetype = package.kind)`` to
  ``peer.endpoint`` (or the adapter's endpoint) with ``peer.credentials`` ``{"system_id", "secret"}`` (or the
  adapter's); the axis's ``DocId`` becomes ``DeliveryResult.peer_reference``.
* ``poll(kind)`` → ``getReceivedEdocList`` + ``getEdoc`` per item, lazily (one package in memory at a time);
  ``acknowledge(ref, ok)`` → ``updateStatus(done | fail)``. Polling uses the adapter's own endpoint and
  credentials: it is this gateway's mailbox at the axis, not a peer's.

Failures, translated once here into the worker's errors (transport failures by the table every channel shares,
:mod:`adapters.peer_http`; the VDXP answer by its status and HTTP code):

====================================================  ============================================  ================
what happened                                         error                                         retried
====================================================  ============================================  ================
no connection within the connect timeout (after the   ``DELIVERY.TIMEOUT`` (``sent=False``)         yes
client's connect retries)
no answer within the read timeout, answer still       ``DELIVERY.TIMEOUT`` (``sent=True``: outcome  yes, same id
arriving at the deadline, connection broken after     unknown, the axis may have stored it)
it was made
connection refused, DNS, TLS                          ``DELIVERY.UNREACHABLE``                      yes
FAIL or no VDXP answer with HTTP 5xx / 408 / 425 /    ``DELIVERY.PEER_ERROR``                       yes
429
not a VDXP answer (HTML, redirect, 404 …, too large)  ``DELIVERY.PROTOCOL``                         yes
FAIL with HTTP 200 (or 413): the axis's final word    ``DELIVERY.REFUSED``                          no
no endpoint or credentials configured                 ``DELIVERY.CONFIG``                           yes (an operator
                                                                                                    can fix it)
====================================================  ============================================  ================

The package is sent as the raw body; a big one (spooled) is streamed from its spool file with an exact
``Content-Length`` and its ``hash-file`` comes from the SHA-256 counted when it was spooled (issue 14: the worker
holds about 1 MiB of buffers for a 20 MB ``sendEdoc``, measured in ``tests/test_push_big.py``).
``OutgoingPackage.read_timeout``, when set, replaces the adapter's read timeout for that ``sendEdoc``. Clients (one
per endpoint and credential set) are cached under a lock and shared by the worker's threads.

Configuration (:meth:`VdxpAdapter.from_settings`): a ``[vdxp]`` table in the configuration file with
``endpoint`` (the axis's base URL, e.g. ``https://axis.example/vdxp``; used for agencies on the ``vdxp`` channel
without an endpoint of their own), ``system_id`` and ``secret`` (this gateway's credentials at the axis; used
unless the caller passes per-agency ``Peer.credentials``).
The adapter never retries by itself beyond :class:`~adapters.vdxp.client.VdxpClient`'s connection retries.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from adapters.peer_http import DEFAULT_CONNECTIONS_PER_HOST, delivery_error, pool_size
from adapters.vdxp.client import VdxpClient, VdxpError
from gateway.edxml.codes import PackageKind
from gateway.errors import ConfigError
from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryResult,
    IncomingPackage,
    OutgoingPackage,
    Peer,
)
from gateway.protocols.vdxp import UpdateStatus

if TYPE_CHECKING:
    from gateway.config import Settings

log = logging.getLogger(__name__)


class VdxpAdapter:
    """``PeerAdapter`` + ``PollingAdapter`` for the ``vdxp`` channel; one client (HTTP pool) per credential set."""

    channel = "vdxp"

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        system_id: str | None = None,
        secret: str | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
    ) -> None:
        self._endpoint = endpoint
        self._system_id = system_id
        self._secret = secret
        self._client_options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "connections_per_host": connections_per_host,
        }
        self._clients: dict[tuple[str, str, str], VdxpClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> VdxpAdapter:
        """The factory the worker's adapter registry calls: the ``[vdxp]`` table, the adapter timeouts."""
        table: Any = settings.extra.get("vdxp") or {}
        if not isinstance(table, Mapping):
            raise ConfigError("the [vdxp] configuration must be a table (endpoint, system_id, secret)")
        return cls(
            endpoint=_opt(table, "endpoint"),
            system_id=_opt(table, "system_id"),
            secret=_opt(table, "secret"),
            connect_timeout=float(getattr(settings, "adapter_connect_timeout", 10.0)),
            read_timeout=float(getattr(settings, "adapter_read_timeout", 120.0)),
            connections_per_host=pool_size(settings),
        )

    # ------------------------------------------------------------------------------------------ PeerAdapter

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        endpoint = peer.endpoint or self._endpoint
        system_id = peer.credentials.get("system_id") or self._system_id
        secret = peer.credentials.get("secret") or self._secret
        if not endpoint or not system_id or not secret:
            # Retryable: an operator can add the configuration, and the delivery then goes out within its budget.
            raise DeliveryConfigError(
                f"agency {peer.organ_id}: the vdxp channel needs an endpoint and credentials (system_id, secret)"
            )
        client = self._client(endpoint, system_id, secret)
        try:
            doc_id = client.send_edoc(
                package.payload, sender=package.sender, kind=package.kind, read_timeout=package.read_timeout
            )
        except VdxpError as exc:
            raise _translate(exc, f"sendEdoc for {package.recipient}") from None
        return DeliveryResult(peer_reference=doc_id, peer_answer=f"OK DocId={doc_id}")

    # ------------------------------------------------------------------------------------------ PollingAdapter

    def poll(self, kind: PackageKind, limit: int = 100) -> Iterator[IncomingPackage]:
        """Packages of ``kind`` waiting at the axis, fetched one by one as the caller iterates.

        An item whose ``getEdoc`` the axis refuses for good is skipped (it stays listed there, for an operator);
        a transport failure ends the poll with a retryable DeliveryError.
        """
        client = self._own_client()
        try:
            items = client.received_list(kind)[: max(0, limit)]
        except VdxpError as exc:
            raise _translate(exc, "getReceivedEdocList") from None
        for item in items:
            try:
                data = client.get_edoc(item.doc_id)
            except VdxpError as exc:
                if exc.retryable:
                    raise _translate(exc, f"getEdoc {item.doc_id}") from None
                log.warning("VDXP getEdoc %s refused, skipped: %s", item.doc_id, exc.error_code)
                continue
            yield IncomingPackage(
                peer_reference=item.doc_id,
                kind=_kind(item.message_type, kind),
                data=data,
                recipient=item.recipient.strip() or None,
            )

    def acknowledge(self, peer_reference: str, ok: bool, reason: str | None = None) -> None:
        try:
            status = UpdateStatus.DONE if ok else UpdateStatus.FAIL
            self._own_client().update_status(peer_reference, status, reason)
        except VdxpError as exc:
            raise _translate(exc, f"updateStatus {peer_reference}") from None

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # ------------------------------------------------------------------------------------------ clients

    def _own_client(self) -> VdxpClient:
        if not self._endpoint or not self._system_id or not self._secret:
            raise ConfigError("polling VDXP needs the adapter's endpoint, system_id and secret")
        return self._client(self._endpoint, self._system_id, self._secret)

    def _client(self, endpoint: str, system_id: str, secret: str) -> VdxpClient:
        # The secret is part of the key (a rotated secret gets a new client) only as a digest.
        key = (endpoint, system_id, hashlib.sha256(secret.encode()).hexdigest())
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = VdxpClient(endpoint, system_id, secret, **self._client_options)
            return client


def _translate(exc: VdxpError, what: str) -> DeliveryError:
    """A client failure → the worker's error (module table); the peer's ErrorCode and HTTP status kept in detail."""
    return delivery_error(
        exc.failure,
        f"VDXP {what}: {exc.message}",
        sent=exc.sent,
        peer_answer=exc.answer,
        error_code=exc.error_code,
        http_status=exc.http_status,
    )


def _opt(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    return (str(value).strip() or None) if value is not None else None


def _kind(message_type: str, default: PackageKind) -> PackageKind:
    try:
        return PackageKind(message_type.strip().lower())
    except ValueError:
        return default


__all__ = ["VdxpAdapter"]
