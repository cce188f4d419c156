"""The ``edocvn`` channel: deliver stored packages to a legacy e-doc.vn axis (Bkav's eDoc, or another gateway's
legacy edge), and poll it for what it holds for our agencies (issue 13 item 3; legacy-edoc-vn.md §6).

:class:`EdocvnAdapter` is a :class:`gateway.ports.PeerAdapter` and a :class:`gateway.ports.PollingAdapter`:

* ``deliver(peer, package)``: our canonical package is read with :mod:`gateway.edxml.reader`; an edoc goes out as
  SendDocument with SwA (attachments as MIME parts), a status as UpdateTraces, to ``peer.endpoint`` (the recipient
  agency's registry endpoint) or the ``[edocvn]`` endpoint. The legacy axis authenticates the **sending agency**
  (OrganId + Token, §3), so the login is the one of ``package.sender``, from its ``[credentials."<OrganId>"]`` table
  (``legacy_token``, ``legacy_organ_id`` defaulting to the OrganId). The axis document id becomes
  ``DeliveryResult.peer_reference``.

  One SendDocument carries every ``To`` of the package, as stored: the axis files a new document once per edXML
  DocumentId (``M.Exist`` for a second one, §6.3 step 5) and then delivers it to each of its recipients itself, so
  cutting ``To`` down to one delivery's recipient would lose every other recipient. The deliveries to the other
  recipients on the same axis are therefore answered ``M.Exist``, which — like an UpdateTraces answered "Exist trace
  on esb" — means "already there" and is recorded as delivered (also what a retry after an unknown outcome gets).

* ``poll(EDOC)``: for each of our agencies with a legacy login (``[edocvn] agencies``, default all of them):
  GetPendingDocumentIds → GetDocument → :func:`gateway.edxml.writer.render` (the canonical package our intake
  takes); ``acknowledge(ref, ok=True)`` → ConfirmReceived (the axis drops it from the pending list and records
  status 01 for its sender, §6.6). A refusal by our intake (``ok=False``) is logged and leaves the document pending
  at the axis — the profile has no "refuse" call — and this process does not fetch it again (an operator sees it in
  the audit log and at the axis).

* ``poll(STATUS)``: GetTraces in **consume mode** (§6.8), each ``Status`` → a canonical status package. Consume mode
  disables at the axis what it returned, so a status is the adapter's to keep until our intake has it: statuses not
  yet acknowledged are held in memory and offered again in the next round (a database outage loses nothing while the
  worker runs), and no further GetTraces is sent while any is held (the poller commits each one before it asks for
  the next, so a status we fetched is committed before the next GetTraces of this process). **At-most-once
  risk:** a worker killed between GetTraces and the commit of our intake loses the statuses of that answer (replay
  mode would need a persisted high-water mark per agency and then de-duplication against statuses with equal
  timestamps; Bkav filters on the reporter's clock, not its own, so a mark can skip late reporters — not done
  here). Documents never have this risk: they stay pending until ConfirmReceived.

Failures are translated once, here, into the worker's errors (:mod:`adapters.edocvn.client` classifies them; the
transport part is the table every channel shares, :mod:`adapters.peer_http`). Clients (one per endpoint and login)
are cached under a lock and shared by the worker's threads; a token is never logged.

Memory (issue 14): SendDocument is built from the model, so the stored package is read whole once and parsed
(its attachments decoded); the SwA body then streams its parts (:class:`gateway.protocols.edocvn.MultipartBody`).
For a 20 MB package (one 15 MB attachment) building and reading the request body costs about +91 MiB (4.8× the
package) per send in flight (an in-process probe from a spooled payload): the bytes, the parsed tree with the base64
text, and the decoded attachment.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from adapters.edocvn.client import EdocvnClient, EdocvnError, Failure
from adapters.peer_http import DEFAULT_CONNECTIONS_PER_HOST, delivery_error, pool_size
from gateway.edxml.codes import PackageKind
from gateway.edxml.model import EdocPackage
from gateway.edxml.reader import read_bytes
from gateway.edxml.writer import render
from gateway.errors import ConfigError, GatewayError
from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryResult,
    IncomingPackage,
    OutgoingPackage,
    Peer,
)
from gateway.protocols.edocvn import PAYLOAD_BASE64_TEXT, PAYLOAD_RAW, Payload

if TYPE_CHECKING:
    from gateway.config import Settings

log = logging.getLogger(__name__)

CHANNEL: Final = "edocvn"
PAYLOADS: Final = (PAYLOAD_RAW, PAYLOAD_BASE64_TEXT)
_DOC, _TRACE = "doc", "trace"


@dataclass(frozen=True)
class Login:
    """One of our agencies' login at the legacy axis (``[credentials."<organ_id>"]``)."""

    organ_id: str
    legacy_organ_id: str
    token: str
    #: How the axis's GetDocument parts carry files for this login (None: the ``[edocvn]`` default).
    get_payload: Payload | None = None

    def __repr__(self) -> str:  # never the token
        return f"Login({self.organ_id!r}, {self.legacy_organ_id!r})"


def logins_from(credentials: Any) -> dict[str, Login]:
    """The legacy logins of the ``[credentials."<OrganId>"]`` tables that have a ``legacy_token``."""
    found: dict[str, Login] = {}
    if not isinstance(credentials, Mapping):
        return found
    for organ_id, values in credentials.items():
        if not isinstance(values, Mapping) or not str(values.get("legacy_token") or "").strip():
            continue
        organ = str(organ_id).strip()
        found[organ] = Login(
            organ_id=organ,
            legacy_organ_id=str(values.get("legacy_organ_id") or organ).strip(),
            token=str(values["legacy_token"]).strip(),
            get_payload=payload_of(values.get("legacy_get_payload"), f'[credentials."{organ}"] legacy_get_payload'),
        )
    return found


def payload_of(value: Any, where: str) -> Payload | None:
    if value is None or value == "":
        return None
    if value not in PAYLOADS:
        raise ConfigError(f"{where} must be one of {', '.join(PAYLOADS)}")
    return value  # type: ignore[no-any-return]


class EdocvnAdapter:
    """``PeerAdapter`` + ``PollingAdapter`` for the ``edocvn`` channel (module docstring)."""

    channel = CHANNEL

    def __init__(
        self,
        *,
        logins: Mapping[str, Login] | None = None,
        endpoint: str | None = None,
        send_payload: Payload = PAYLOAD_RAW,
        get_payload: Payload = PAYLOAD_BASE64_TEXT,
        poll_agencies: tuple[str, ...] | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
        spool_dir: str | None = None,
    ) -> None:
        self._logins = dict(logins or {})
        self._endpoint = endpoint
        self._send_payload = send_payload
        self._get_payload = get_payload
        self._poll_agencies = poll_agencies
        self._options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "connections_per_host": connections_per_host,
            "spool_dir": spool_dir,
        }
        self._clients: dict[tuple[str, ...], EdocvnClient] = {}
        self._lock = threading.Lock()
        #: Consumed statuses not yet acknowledged (module docstring), by reference, in arrival order.
        self._held: dict[str, IncomingPackage] = {}
        #: Documents our intake refused: left pending at the axis, not fetched again by this process.
        self._refused: set[str] = set()
        self._counter = itertools.count(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> EdocvnAdapter:
        """The factory the worker's adapter registry calls: the ``[edocvn]`` table, the credentials tables."""
        table: Any = settings.extra.get(CHANNEL) or {}
        if not isinstance(table, Mapping):
            raise ConfigError("the [edocvn] configuration must be a table")
        agencies = table.get("agencies")
        if agencies is not None and not (isinstance(agencies, list) and all(isinstance(a, str) for a in agencies)):
            raise ConfigError("[edocvn] agencies must be a list of OrganIds")
        return cls(
            logins=logins_from(settings.extra.get("credentials")),
            endpoint=(str(table.get("endpoint") or "").strip() or None),
            send_payload=payload_of(table.get("send_payload"), "[edocvn] send_payload") or PAYLOAD_RAW,
            get_payload=payload_of(table.get("get_payload"), "[edocvn] get_payload") or PAYLOAD_BASE64_TEXT,
            poll_agencies=tuple(a.strip() for a in agencies) if agencies is not None else None,
            connect_timeout=float(getattr(settings, "adapter_connect_timeout", 10.0)),
            read_timeout=float(getattr(settings, "adapter_read_timeout", 120.0)),
            connections_per_host=pool_size(settings),
            spool_dir=(str(table.get("spool_dir")) if table.get("spool_dir") else None),
        )

    # ------------------------------------------------------------------------------------------ PeerAdapter

    def deliver(self, peer: Peer, package: OutgoingPackage) -> DeliveryResult:
        endpoint = peer.endpoint or self._endpoint
        if not endpoint:
            raise DeliveryConfigError(f"agency {peer.organ_id}: the edocvn channel needs an endpoint (registry)")
        try:
            pkg = read_bytes(package.data, max_bytes=package.payload.size + 1)  # read whole once (module docstring)
        except GatewayError as exc:  # our own stored package: a defect, not the peer's doing
            raise DeliveryError(f"the stored package cannot be read: {exc.code}", retryable=False) from None
        login = self._logins.get(pkg.sender)
        if login is None:
            raise DeliveryConfigError(
                f"the legacy axis authenticates the sending agency: no legacy_token for {pkg.sender} "
                f'([credentials."{pkg.sender}"])'
            )
        send_payload = payload_of(peer.credentials.get("legacy_send_payload"), "legacy_send_payload")
        client = self._client(endpoint, login, send_payload=send_payload or self._send_payload)
        what = f"{'SendDocument' if isinstance(pkg, EdocPackage) else 'UpdateTraces'} for {package.recipient}"
        try:
            if isinstance(pkg, EdocPackage):
                axis_id = client.send_document(pkg, read_timeout=package.read_timeout)
                return DeliveryResult(peer_reference=axis_id, peer_answer=f"OK DocumentId={axis_id}")
            client.update_traces(pkg)
            return DeliveryResult(peer_answer="OK")
        except EdocvnError as exc:
            if exc.already_there:
                log.info("legacy %s: the axis already has it (%s)", what, exc.report_code)
                return DeliveryResult(peer_answer=f"already on the axis ({exc.report_code})")
            raise _translate(exc, what) from None

    # ------------------------------------------------------------------------------------------ PollingAdapter

    def poll(self, kind: PackageKind, limit: int = 100) -> Iterator[IncomingPackage]:
        """What the axis holds for our agencies, fetched lazily (one document in memory at a time)."""
        endpoint = self._polling_endpoint()
        budget = max(0, limit)
        if PackageKind(kind) is PackageKind.STATUS:
            yield from self._poll_statuses(endpoint, budget)
            return
        for login in self._polling_logins():
            if budget <= 0:
                return
            client = self._client(endpoint, login)
            for axis_id in self._pending(client, login):
                ref = _reference(login.organ_id, _DOC, axis_id)
                if ref in self._refused:
                    continue
                data = self._fetch(client, login, axis_id)
                if data is None:
                    continue
                budget -= 1
                yield IncomingPackage(peer_reference=ref, kind=PackageKind.EDOC, data=data, recipient=login.organ_id)
                if budget <= 0:
                    return

    def acknowledge(self, peer_reference: str, ok: bool, reason: str | None = None) -> None:
        organ_id, what, item = _split(peer_reference)
        if what == _TRACE:
            self._held.pop(peer_reference, None)
            if not ok:
                log.warning("legacy status %s refused by our intake (consumed at the axis): %s", peer_reference, reason)
            return
        if not ok:
            self._refused.add(peer_reference)
            log.warning(
                "legacy document %s for %s refused by our intake, left pending at the axis: %s", item, organ_id, reason
            )
            return
        login = self._logins.get(organ_id)
        if login is None:
            raise DeliveryConfigError(f"no legacy login for {organ_id} any more: {item} not confirmed")
        try:
            self._client(self._polling_endpoint(), login).confirm_received(item)
        except EdocvnError as exc:
            raise _translate(exc, f"ConfirmReceived {item}") from None

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # ------------------------------------------------------------------------------------------ polling parts

    def _poll_statuses(self, endpoint: str, budget: int) -> Iterator[IncomingPackage]:
        for ref, held in list(self._held.items()):  # consumed in an earlier round, not yet taken in
            if budget <= 0 or ref not in self._held:
                return
            budget -= 1
            yield held
        for login in self._polling_logins():
            if budget <= 0:
                return
            if self._held:
                # Consumed at the axis and not yet committed here: no further GetTraces until they are, so that at
                # most one answer's statuses are ever at risk (a kill between GetTraces and our commit).
                log.warning("%d legacy status(es) not yet taken in: GetTraces waits for them", len(self._held))
                return
            client = self._client(endpoint, login)
            try:
                traces = client.traces()
            except EdocvnError as exc:
                if exc.failure in (Failure.CONFIG, Failure.REFUSED):
                    log.warning("legacy GetTraces for %s refused: %s", login.organ_id, exc.message)
                    continue
                raise _translate(exc, f"GetTraces for {login.organ_id}") from None
            for code, reason in traces.unreadable:
                log.warning("legacy status (code %s) for %s not taken in: %s", code, login.organ_id, reason)
            fresh = []
            for status in traces.statuses:  # held BEFORE anything is yielded: consumed there, ours to keep now
                ref = _reference(login.organ_id, _TRACE, str(next(self._counter)))
                fresh.append(IncomingPackage(ref, PackageKind.STATUS, render(status), recipient=login.organ_id))
                self._held[ref] = fresh[-1]
            for item in fresh:
                if budget <= 0:
                    return  # the rest stays held for the next round
                budget -= 1
                yield item

    def _pending(self, client: EdocvnClient, login: Login) -> list[str]:
        try:
            return list(dict.fromkeys(client.pending()))  # Bkav's Redis list may repeat an id (§6.4)
        except EdocvnError as exc:
            if exc.failure in (Failure.CONFIG, Failure.REFUSED):  # this login's trouble: the others still poll
                log.warning("legacy GetPendingDocumentIds for %s refused: %s", login.organ_id, exc.message)
                return []
            raise _translate(exc, f"GetPendingDocumentIds for {login.organ_id}") from None

    def _fetch(self, client: EdocvnClient, login: Login, axis_id: str) -> bytes | None:
        try:
            return render(client.get_document(axis_id))
        except EdocvnError as exc:
            if exc.failure in (Failure.CONFIG, Failure.REFUSED):
                log.warning("legacy GetDocument %s for %s refused, skipped: %s", axis_id, login.organ_id, exc.message)
                self._refused.add(_reference(login.organ_id, _DOC, axis_id))
                return None
            raise _translate(exc, f"GetDocument {axis_id}") from None

    def _polling_logins(self) -> list[Login]:
        if self._poll_agencies is None:
            return list(self._logins.values())
        missing = [a for a in self._poll_agencies if a not in self._logins]
        if missing:
            log.warning("[edocvn] agencies without a legacy_token, not polled: %s", ", ".join(missing))
        return [self._logins[a] for a in self._poll_agencies if a in self._logins]

    def _polling_endpoint(self) -> str:
        if not self._endpoint:
            raise ConfigError("polling a legacy axis needs the [edocvn] endpoint")
        return self._endpoint

    # ------------------------------------------------------------------------------------------ clients

    def _client(self, endpoint: str, login: Login, *, send_payload: Payload | None = None) -> EdocvnClient:
        get_payload = login.get_payload or self._get_payload
        send = send_payload or self._send_payload
        # The token is part of the key (a rotated token gets a new client) only as a digest.
        key = (endpoint, login.legacy_organ_id, hashlib.sha256(login.token.encode()).hexdigest(), get_payload, send)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = EdocvnClient(
                    endpoint, login.legacy_organ_id, login.token, payload=get_payload, send_payload=send,
                    **self._options,
                )  # fmt: skip
            return client


def _reference(organ_id: str, what: str, item: str) -> str:
    return f"{organ_id}|{what}|{item}"


def _split(reference: str) -> tuple[str, str, str]:
    organ_id, what, item = [*reference.split("|", 2), "", ""][:3]
    if what not in (_DOC, _TRACE) or not item:
        raise ValueError(f"not a reference of the edocvn adapter: {reference!r}")
    return organ_id, what, item


def _translate(exc: EdocvnError, what: str) -> DeliveryError:
    """A client failure → the worker's error; Bkav's code and description kept in the detail."""
    return delivery_error(
        exc.failure,
        f"legacy {what}: {exc.message}",
        sent=exc.sent,
        peer_answer=exc.answer,
        report_code=exc.report_code,
        http_status=exc.http_status,
    )


__all__ = ["CHANNEL", "EdocvnAdapter", "Login", "logins_from"]
