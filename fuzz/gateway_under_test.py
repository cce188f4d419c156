"""The real gateway, in-process, for the fuzz targets: a demo PKI, SQLite in a scratch directory, three agencies,
a system acting for each, and the production WSGI application (guard, spyne, Flask edges, services, store).

In-process rather than served: a fuzzer runs hundreds of thousands of inputs, and what it looks for — an exception
class nobody mapped — is decided by the application, not by gunicorn's socket handling (which the served tests and
``bench/hostile_load.py`` cover). Requests go through :func:`werkzeug.test.run_wsgi_app`, the same WSGI call
gunicorn makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.test import EnvironBuilder, run_wsgi_app

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.pki import DemoPki, create_demo_pki
from gateway.services.registry import Registry
from gateway.web.wsgi import make_application

#: The demo package's sender and recipients (gateway.demo.documents), so that generated inputs are accepted.
SENDER, RECEIVER, UNIT, PARENT = "000.00.01.H53", "000.00.00.G22", "000.01.01.H53", "000.00.00.H53"
AGENCIES = f"""organ_id,name,signature_policy
{PARENT},UBND tỉnh Tây Ninh,verify-if-present
{SENDER},Văn phòng UBND tỉnh Tây Ninh,verify-if-present
{UNIT},Ban Tiếp Công dân,verify-if-present
{RECEIVER},Văn phòng Chính phủ,verify-if-present
"""
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-username-token-profile-1.0#PasswordDigest"
_B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-soap-message-security-1.0#Base64Binary"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class _ExceptionLog(logging.Handler):
    """Remembers the exception class and innermost gateway frame of each logged traceback: an edge answers
    ``GATEWAY.INTERNAL`` without saying why (by design), and a crash report needs the why."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/gateway/" in f.filename]
            where = f" at {frames[-1].filename.rsplit('/gateway/', 1)[1]}:{frames[-1].lineno}" if frames else ""
            self.seen.append(f"{type(exc).__name__}{where}")


class GatewayUnderTest:
    """One gateway in ``workdir`` (created empty); systems ``S-SENDER`` and ``S-RECEIVER``."""

    def __init__(self, workdir: Path) -> None:
        self.exceptions = _ExceptionLog()
        logging.getLogger().addHandler(self.exceptions)
        workdir.mkdir(parents=True, exist_ok=True)
        self.pki: DemoPki = create_demo_pki(workdir / "pki")
        env = {
            "EDOC_GATEWAY_DATA_DIR": str(workdir / "data"),
            "EDOC_GATEWAY_DATABASE_URL": f"sqlite:///{workdir / 'data' / 'gateway.db'}",
            "EDOC_GATEWAY_SECRET_KEY": secrets.token_urlsafe(24),
            "EDOC_GATEWAY_GATEWAY_KEY": str(self.pki.gateway_key),
            "EDOC_GATEWAY_GATEWAY_CERT": str(self.pki.gateway_cert),
            "EDOC_GATEWAY_TRUST_STORE": str(self.pki.trust),
            "EDOC_GATEWAY_CRL_FILES": ",".join(str(c) for c in self.pki.crls),
            "EDOC_GATEWAY_MAX_PACKAGE_BYTES": str(2 * 1024 * 1024),
            # A fuzzer is one address sending thousands of requests a second, most of them refused: the rate
            # limits and login throttling (tested on their own) would answer RATE.LIMITED to nearly all of them.
            "EDOC_GATEWAY_RATE_PER_ADDRESS": "0",
            "EDOC_GATEWAY_RATE_PER_SYSTEM": "0",
            "EDOC_GATEWAY_AUTH_FAILURES_PER_ADDRESS": "0",
            "EDOC_GATEWAY_AUTH_FAILURES_PER_USER": "0",
            "EDOC_GATEWAY_MAX_STATUSES_PER_DAY": "0",
            "EDOC_GATEWAY_MAX_STATUSES_TOTAL": "0",
        }
        (workdir / "data").mkdir(exist_ok=True)
        self.settings: Settings = load_settings(env=env)
        upgrade(self.settings)
        registry = Registry.from_settings(self.settings)
        agencies = workdir / "agencies.csv"
        agencies.write_text(AGENCIES, encoding="utf-8")
        registry.import_file(agencies)
        self.secrets = {
            "S-SENDER": registry.add_system("S-SENDER", [SENDER]),
            "S-RECEIVER": registry.add_system("S-RECEIVER", [RECEIVER]),
        }
        self.app = make_application(self.settings)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        """One WSGI call, its whole answer read (so a crash while streaming the body is seen too)."""
        self.exceptions.seen.clear()
        builder = EnvironBuilder(method=method, path=path, data=body, headers=headers or {})
        environ = builder.get_environ()
        environ["REMOTE_ADDR"] = "127.0.0.1"
        app_iter, status, resp_headers = run_wsgi_app(self.app, environ, buffered=True)
        try:
            data = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        return Answer(int(status.split()[0]), resp_headers.get("Content-Type", ""), data)

    # ----------------------------------------------------------------------------------------- credentials

    def wsse_header(self, system: str = "S-SENDER") -> str:
        """A fresh WS-Security UsernameToken (PasswordDigest): a new nonce each call, so no replay refusals."""
        nonce = os.urandom(16)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        token = nonce + created.encode() + self.secrets[system].encode()
        digest = base64.b64encode(hashlib.sha1(token).digest())  # noqa: S324 -- PasswordDigest is SHA-1 by profile
        return (
            f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{system}</wsse:Username>"
            f'<wsse:Password Type="{_DIGEST}">{digest.decode()}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{_B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
        )

    def rest_headers(self, body: bytes, system: str = "S-SENDER") -> dict[str, str]:
        """The REST edge's HMAC headers over ``body`` with the current time."""
        ts = str(int(time.time()))
        sig = hmac.new(self.secrets[system].encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "X-Edoc-System": system,
            "X-Edoc-Timestamp": ts,
            "X-Edoc-Signature": "sha256=" + sig,
        }
