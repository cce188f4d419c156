"""A fake of the use cases (the GatewayApi Protocol) and a real gunicorn serving the web layer over it.

STYLE.md: "Test fakes implement the same interfaces as the real adapters". The web tests need the web edge —
guard, spyne, Faults, WSDL, gunicorn configuration — not intake; so they run against :class:`FakeApi`, an
in-memory mailbox with the same authentication contract as the real service (WS-Security digest with a nonce
cache and a Created window, HTTP Basic). gunicorn imports ``web_fake_app:make_app()`` (a factory, so importing
this module from a test builds nothing).

Conventions of the fake: every package is addressed to ``RECEIVER``; a package starting with ``b"RAISE"`` makes
``submit`` fail with an unexpected exception, one starting with ``b"DUP"`` with ``EDXML.DUPLICATE``. While the file
``<data_dir>/hold-agencies`` exists, ``agencies`` (GetAgencies) waits, after creating ``<data_dir>/agencies-entered``:
a test can keep an operation running for as long as it needs (the per-system concurrency bound, issue 10).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import load_settings
from gateway.edxml.codes import PackageKind, StatusCode
from gateway.errors import AccessError, AuthError, DuplicateError, NotFoundError, ReplayError
from gateway.payload import Payload
from gateway.services.api import (
    AckOutcome,
    AgencyInfo,
    DeliveryState,
    DocumentView,
    PendingItem,
    Receipt,
    RecipientView,
    StatusEntry,
)

if TYPE_CHECKING:
    from gateway.web.rawhttp import WsgiApp

ROOT = Path(__file__).resolve().parent.parent
SENDER = "000.00.00.H01"
RECEIVER = "000.00.00.H02"
#: system id → (secret, agencies it acts for)
SYSTEMS = {"sys-sender": ("sender-secret-1", {SENDER}), "sys-receiver": ("receiver-secret-2", {RECEIVER})}
#: The text of the exception the fake raises for ``b"RAISE…"`` packages; must never reach a client.
INTERNAL_SECRET = "fake-internal-detail-db-password-hunter2"


@dataclass
class _Stored:
    receipt: Receipt
    data: bytes
    sender: str
    delivery: PendingItem  # its fetched_at is the delivery's
    acknowledged_at: datetime | None = None
    ack_reason: str | None = None


class FakeApi:
    """In-memory GatewayApi: one worker process, so its nonce cache and mailbox are the whole truth."""

    def __init__(self, window_seconds: int = 300, hold_dir: Path | None = None) -> None:
        self._hold_dir = hold_dir
        self._window = timedelta(seconds=window_seconds)
        self._nonces: set[str] = set()
        self._docs: dict[str, _Stored] = {}  # by doc_id
        self._by_delivery: dict[str, str] = {}

    # ---------------------------------------------------------------------------------- authentication

    def admit_address(self, source: str) -> None:
        """No request-rate limit in the fake (the real limiter is tested in test_limits.py)."""

    def authenticate_basic(self, username: str, password: str) -> str:
        secret, _ = SYSTEMS.get(username, ("", set()))
        if not secret or not hmac.compare_digest(secret.encode(), password.encode()):
            raise AuthError("unknown system or wrong password")
        return username

    def authenticate_digest(self, username: str, digest_b64: str, nonce_b64: str, created: str) -> str:
        secret, _ = SYSTEMS.get(username, ("", set()))
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            raise AuthError("malformed Nonce or Created") from None
        expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
        if not secret or not hmac.compare_digest(expected, digest_b64):
            raise AuthError("unknown system or wrong password")
        if when.tzinfo is None or abs(datetime.now(UTC) - when) > self._window:
            raise ReplayError("Created is outside the replay window")
        if nonce_b64 in self._nonces:
            raise ReplayError("this Nonce has been used before")
        self._nonces.add(nonce_b64)
        return username

    # ------------------------------------------------------------------------------------------ intake

    def submit(self, system_id: str, data: bytes | Payload, expected: PackageKind | None = None) -> Receipt:
        if isinstance(data, Payload):  # the SOAP edge hands over what it decoded (issue 14)
            data = data.read()
        if data.startswith(b"RAISE"):
            raise RuntimeError(INTERNAL_SECRET)
        if data.startswith(b"DUP"):
            raise DuplicateError("a different package with this DocumentId was already received")
        sha = hashlib.sha256(data).hexdigest()
        doc_id = "doc-" + sha[:16]
        if doc_id in self._docs:
            return replace(self._docs[doc_id].receipt, duplicate=True)
        now = datetime.now(UTC)
        kind = expected or PackageKind.EDOC
        receipt = Receipt(doc_id, kind, "DOC-" + sha[:8], sha, now, False, b"<Receipt>" + sha.encode() + b"</Receipt>")
        sender = sorted(SYSTEMS[system_id][1])[0]
        delivery = PendingItem(
            "dlv-" + sha[:16], doc_id, kind, sender, RECEIVER, receipt.document_id, now, len(data), DeliveryState.QUEUED
        )
        self._docs[doc_id] = _Stored(receipt, data, sender, delivery)
        self._by_delivery[delivery.delivery_id] = doc_id
        return receipt

    # ----------------------------------------------------------------------------------------- mailbox

    def _acts_for(self, system_id: str, organ_id: str) -> None:
        if organ_id not in SYSTEMS[system_id][1]:
            raise AccessError(f"system {system_id} does not act for {organ_id}")

    def _delivery(self, system_id: str, delivery_id: str) -> _Stored:
        stored = self._docs.get(self._by_delivery.get(delivery_id, ""))
        if stored is None or stored.delivery.recipient not in SYSTEMS[system_id][1]:
            raise NotFoundError(f"no delivery {delivery_id} for this system")
        return stored

    def pending(self, system_id: str, organ_id: str, kind: PackageKind, limit: int = 100) -> list[PendingItem]:
        self._acts_for(system_id, organ_id)
        items = [
            s.delivery
            for s in self._docs.values()
            if s.delivery.recipient == organ_id and s.delivery.kind == kind and s.acknowledged_at is None
        ]
        return items[:limit]

    def fetch(self, system_id: str, delivery_id: str) -> bytes:
        stored = self._delivery(system_id, delivery_id)
        fetched_at = stored.delivery.fetched_at or datetime.now(UTC)
        stored.delivery = replace(stored.delivery, state=DeliveryState.FETCHED, fetched_at=fetched_at)
        return stored.data

    def fetch_payload(self, system_id: str, delivery_id: str) -> Payload:
        return Payload.of(self.fetch(system_id, delivery_id))

    def acknowledge(self, system_id: str, delivery_id: str, outcome: AckOutcome, reason: str | None = None) -> None:
        stored = self._delivery(system_id, delivery_id)
        stored.acknowledged_at = datetime.now(UTC)
        stored.ack_reason = reason
        state = DeliveryState.DELIVERED if outcome is AckOutcome.DONE else DeliveryState.FAILED
        stored.delivery = replace(stored.delivery, state=state)

    def document_view(
        self, system_id: str, *, document_id: str | None = None, doc_id: str | None = None
    ) -> DocumentView:
        for stored in self._docs.values():
            r = stored.receipt
            if (doc_id and r.doc_id == doc_id) or (document_id and r.document_id == document_id):
                if not SYSTEMS[system_id][1] & {stored.sender, stored.delivery.recipient}:
                    break
                arrived = StatusEntry(
                    r.doc_id, RECEIVER, RECEIVER, StatusCode.ARRIVED, "Đã đến", None, r.received_at, False, True
                )
                recipient = RecipientView(
                    RECEIVER,
                    stored.delivery.delivery_id,
                    stored.delivery.state,
                    stored.delivery.fetched_at,
                    stored.acknowledged_at,
                    stored.ack_reason,
                    (arrived,),
                )
                return DocumentView(r.doc_id, r.document_id, stored.sender, r.received_at, (recipient,))
        raise NotFoundError("no such document for this system")

    def agencies(self, parent: str | None = None) -> list[AgencyInfo]:
        if self._hold_dir is not None and (self._hold_dir / "hold-agencies").exists():
            (self._hold_dir / "agencies-entered").touch()
            deadline = time.monotonic() + 30
            while (self._hold_dir / "hold-agencies").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        every = [
            AgencyInfo("000.00.00.H00", "UBND tỉnh (demo)", None, 1, "mailbox", True),
            AgencyInfo(SENDER, "Sở Nội vụ (demo)", "000.00.00.H00", 2, "mailbox", True),
            AgencyInfo(RECEIVER, "Sở Tài chính (demo)", "000.00.00.H00", 2, "mailbox", True),
        ]
        return [a for a in every if parent is None or a.parent == parent]


def make_app() -> WsgiApp:
    """``gunicorn … 'web_fake_app:make_app()'``: the real create_app over the fake use cases.

    spyne is imported only here, in the server process: its vendored ``six`` installs an import hook without
    ``find_spec``, and every failed import after it raises an ImportWarning, which ``filterwarnings = error``
    would turn into failures anywhere in the test process.
    """
    from gateway.web.app import create_app

    settings = load_settings()

    def readiness() -> Mapping[str, bool]:
        return {"database": not (settings.data_dir / "not-ready").exists()}

    return create_app(settings, FakeApi(settings.wss_window_seconds, settings.data_dir), readiness=readiness)


# ------------------------------------------------------------------------------- a real gunicorn


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    port: int
    data_dir: Path
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text("utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(tmp: Path, *, env: Mapping[str, str] | None = None, **settings: str) -> Iterator[Server]:
    """Start ``.venv/bin/gunicorn -c deploy/gunicorn.conf.py`` on a free port with one worker; stop it after.

    ``settings`` become ``EDOC_GATEWAY_<NAME>`` variables; ``env`` adds other variables.
    """
    port = _free_port()
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EDOC_GATEWAY_", "GUNICORN_")) and k != "FORWARDED_ALLOW_IPS"
    }
    environ.update(env or {})
    environ.update(
        {
            "EDOC_GATEWAY_BIND": f"127.0.0.1:{port}",
            "EDOC_GATEWAY_WORKERS": "1",  # the fake's state lives in one process
            "EDOC_GATEWAY_DATA_DIR": str(data_dir),
            "EDOC_GATEWAY_LOG_LEVEL": "INFO",
            **{"EDOC_GATEWAY_" + k.upper(): v for k, v in settings.items()},
        }
    )
    stderr_path = tmp / "gunicorn.stderr"
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                str(gunicorn_bin),
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--pythonpath",
                str(ROOT / "tests"),
                "web_fake_app:make_app()",
            ],
            cwd=tmp,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(f"http://127.0.0.1:{port}", port, data_dir, stderr_path)
    try:
        _wait_healthy(server, proc)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(server: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become healthy:\n{server.log()}")
