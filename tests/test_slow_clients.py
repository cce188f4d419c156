"""Issue 10, finding 1 (and 6): slow and greedy clients against the real gateway, served as ``serve`` serves it.

Under gunicorn's ``sync`` workers two connections trickling headers or a body at a few bytes per second made every
legitimate call wait 25–40 s. These tests open such connections — from other loopback addresses (127.0.0.2,
127.0.0.3: Linux routes all of 127/8 to lo), so the per-address bounds count them apart from the legitimate
client on 127.0.0.1 — and check that the gateway keeps serving, closes them by its deadlines, refuses what is
over its bounds, and stores nothing from a refused request (SQLite and PostgreSQL).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from gatewayproc import gateway_env, served
from lxml import etree
from web_fake_app import SYSTEMS, gunicorn

from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B = "000.00.01.H53", "000.00.00.G22"
AGENCIES = f"organ_id,name,signature_policy\n{A},Văn phòng UBND tỉnh Tây Ninh,require\n{B},Văn phòng Chính phủ,\n"
SOAP_TNS = "urn:edoc-gateway:soap:1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
XML = "text/xml; charset=utf-8"


@dataclass
class Gateway:
    settings: Settings
    secrets: dict[str, str]
    log: Path

    @property
    def port(self) -> int:
        return int(self.settings.bind.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://{self.settings.bind}"

    def stored(self) -> tuple[int, int]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return tuple(  # type: ignore[return-value]
                    conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                    for table in ("documents", "deliveries")
                )
        finally:
            engine.dispose()


@pytest.fixture
def start(tmp_path, database_url, pki) -> Callable[..., Iterator[Gateway]]:
    """``with start(**settings) as gw``: the real gateway (gunicorn_argv, deploy/gunicorn.conf.py) with two
    systems, SA acting for A (signature required) and SB for B."""

    @contextmanager
    def run(**settings: str) -> Iterator[Gateway]:
        env = gateway_env(tmp_path, database_url, pki, max_package_bytes=1024 * 1024, **settings)
        loaded = load_settings(env=env)
        upgrade(loaded)
        registry = Registry.from_settings(loaded)
        (tmp_path / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
        registry.import_file(tmp_path / "agencies.csv")
        creds = {"SA": registry.add_system("SA", [A]), "SB": registry.add_system("SB", [B])}
        log = tmp_path / "gunicorn.log"
        with served(loaded, env, log):
            yield Gateway(loaded, creds, log)

    return run


def _package(pki, number: str) -> bytes:
    """A signed edXML package from A to B (about 10 KB), a new document for each ``number``."""
    base = demo_package()
    header = dataclasses.replace(
        base.message_header,
        from_=Organization(organ_id=A, organ_name="Văn phòng UBND tỉnh Tây Ninh"),
        to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
        document_id=f"{A},2026/11/28,{number}/VP-HCTC",
        code=dataclasses.replace(base.message_header.code, code_number=number),
    )
    cred = pki.agencies[A]
    return sign_package(
        render(dataclasses.replace(base, message_header=header)),
        SigningKey.from_files(cred.key, cred.cert, pki.chain),
    )


def _send_edoc_envelope(system: str, secret: str, package: bytes) -> bytes:
    """A SendEdoc request with a fresh WS-Security PasswordDigest token, as raw bytes."""
    nonce = secrets.token_bytes(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f'<wsse:Username>{system}</wsse:Username><wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></soap:Header>"
        f'<soap:Body><tns:SendEdoc xmlns:tns="{SOAP_TNS}"><tns:edxmlPackage>{base64.b64encode(package).decode()}'
        "</tns:edxmlPackage></tns:SendEdoc></soap:Body></soap:Envelope>"
    ).encode()


def _post_head(length: int, path: str = "/soap") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: {XML}\r\nContent-Length: {length}\r\n\r\n".encode()


def _connect(port: int, source: str, timeout: float = 30) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _fault_code(body: bytes) -> str | None:
    return etree.fromstring(body).findtext(f".//{{{SOAP_TNS}}}code")


class Trickle:
    """Background sender: every ``interval`` seconds, one more byte of each connection's data (1 byte/s)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._streams: list[tuple[socket.socket, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        #: connections the server closed while bytes were still being sent (how long after start)
        self.closed_after: dict[int, float] = {}
        self._started = time.monotonic()

    def add(self, sock: socket.socket, data: bytes) -> None:
        self._streams.append((sock, data))

    def __enter__(self) -> Trickle:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock, _ in self._streams:
            sock.close()

    def _run(self) -> None:
        sent = 0
        while not self._stop.is_set():
            for index, (sock, data) in enumerate(self._streams):
                if index in self.closed_after or sent >= len(data):
                    continue
                try:
                    sock.sendall(data[sent : sent + 1])
                except OSError:
                    self.closed_after[index] = time.monotonic() - self._started
            sent += 1
            self._stop.wait(self.interval)


# --------------------------------------------------------------------------- slow clients do not stall the service


def test_slow_headers_and_bodies_do_not_stall_legitimate_calls(start, pki):
    with start() as gw:
        client = GatewayClient(gw.url + "/soap", "SA", gw.secrets["SA"])
        try:
            for n in range(4):  # warm both workers (first-use costs: XSD compile per thread, connections)
                client.send_edoc(_package(pki, f"w{n}"))
            body = _send_edoc_envelope("SA", gw.secrets["SA"], _package(pki, "slow"))
            with Trickle() as trickle:
                for _ in range(8):  # headers at 1 byte/s
                    trickle.add(_connect(gw.port, "127.0.0.2"), _post_head(len(body)))
                for _ in range(8):  # complete headers, then the body at 1 byte/s
                    sock = _connect(gw.port, "127.0.0.3")
                    sock.sendall(_post_head(len(body)))
                    trickle.add(sock, body)
                time.sleep(2)  # every slow connection is open and has sent something
                timings = {}
                started = time.monotonic()
                wsdl = requests.get(gw.url + "/soap?wsdl", timeout=10)
                timings["wsdl"] = time.monotonic() - started
                assert wsdl.status_code == 200 and b"definitions" in wsdl.content
                for n in range(3):
                    started = time.monotonic()
                    receipt = client.send_edoc(_package(pki, f"legit{n}"))
                    timings[f"send{n}"] = time.monotonic() - started
                    assert receipt.duplicate is False
                assert not trickle.closed_after, "a slow connection was closed before its deadline"
        finally:
            client.close()
        assert max(timings.values()) < 1.0, timings
        assert gw.stored() == (7, 7)  # the 4 warm-ups and 3 legitimate ones; nothing from the slow bodies


def test_slow_headers_are_closed_by_the_header_deadline(start):
    with start(HEADER_TIMEOUT_SECONDS="2") as gw:
        with Trickle(interval=0.5) as trickle:
            sock = _connect(gw.port, "127.0.0.2")
            trickle.add(sock, _post_head(1000))
            started = time.monotonic()
            response = _read_all(sock)
            elapsed = time.monotonic() - started
        status, headers, _ = _split(response)
        assert status == 408 and headers["connection"] == "close"
        assert 1.5 < elapsed < 4, elapsed  # the deadline, not the client's pace (it had 40 bytes to go)
        assert "request headers not complete within 2 s" in gw.log.read_text()


def test_body_slower_than_the_minimum_rate_is_408_and_nothing_is_stored(start, pki):
    with start(BODY_TIMEOUT_SECONDS="1", BODY_MIN_RATE="2000") as gw:
        body = _send_edoc_envelope("SA", gw.secrets["SA"], _package(pki, "slow-body"))
        with Trickle() as trickle:
            sock = _connect(gw.port, "127.0.0.2")
            sock.sendall(_post_head(len(body)) + body[:2000])
            trickle.add(sock, body[2000:])
            started = time.monotonic()
            response = _read_all(sock)
            elapsed = time.monotonic() - started
        status, headers, payload = _split(response)
        assert status == 408, response[:300]
        assert headers["connection"] == "close"
        assert headers["content-type"] == XML
        assert _fault_code(payload) == "REQUEST.TIMEOUT"
        assert elapsed < 4, elapsed  # grace 1 s + 2000 bytes at 2000 B/s: about 2 s after the first byte
        assert gw.stored() == (0, 0)

        # The same request at an ordinary pace is taken in: the refusal was about the pace, not the request.
        ok = requests.post(
            gw.url + "/soap",
            data=_send_edoc_envelope("SA", gw.secrets["SA"], _package(pki, "slow-body")),
            headers={"Content-Type": XML},
            timeout=30,
        )
        assert ok.status_code == 200, ok.text[:300]
        assert gw.stored() == (1, 1)


def test_content_length_above_the_limit_is_refused_before_the_body(start):
    with start() as gw:
        limit = gw.settings.max_body_bytes
        with _connect(gw.port, "127.0.0.2") as sock:
            started = time.monotonic()
            sock.sendall(_post_head(limit + 1, "/vdxp/sendEdoc") + b"{")
            status, headers, payload = _split(_read_all(sock))
        assert time.monotonic() - started < 2
        assert status == 413 and headers["connection"] == "close"
        answer = json.loads(payload)
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "SIZE.LIMIT")  # in the VDXP edge's own shape
        assert gw.stored() == (0, 0)


# --------------------------------------------------------------------------- bounded concurrency per address


def test_open_connections_per_address_are_bounded(start):
    with start(WORKERS="1", MAX_CONNECTIONS_PER_ADDRESS="3") as gw:
        held = []
        for _ in range(3):
            sock = _connect(gw.port, "127.0.0.2")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a connection within the bound is served"
            held.append(sock)  # kept open (keep-alive)
        with _connect(gw.port, "127.0.0.2") as extra:
            status, headers, payload = _split(_read_all(extra))
        assert status == 429 and headers["retry-after"] == "1"
        assert json.loads(payload)["code"] == "RATE.LIMITED"
        # Another address is not affected …
        assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
        # … and a closed connection gives its place back.
        held.pop().close()
        time.sleep(0.3)
        with _connect(gw.port, "127.0.0.2") as again:
            again.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            assert _read_all(again).startswith(b"HTTP/1.1 200")
        for sock in held:
            sock.close()


def test_requests_in_progress_per_address_are_bounded(start, pki):
    with start(WORKERS="1", MAX_REQUESTS_PER_ADDRESS="2") as gw:
        waiting = []
        for _ in range(2):  # headers in, body never comes: two requests in progress
            sock = _connect(gw.port, "127.0.0.2")
            sock.sendall(_post_head(5000))
            waiting.append(sock)
        time.sleep(0.3)
        with _connect(gw.port, "127.0.0.2") as third:
            third.sendall(_send_edoc_envelope_request(gw, pki, "third"))
            status, headers, payload = _split(_read_all(third))
        assert status == 429 and headers["retry-after"] == "1" and headers["connection"] == "close"
        assert _fault_code(payload) == "RATE.LIMITED"  # a SOAP Fault, as the SOAP edge answers
        # Another address is served meanwhile, and nothing of the refused request was stored.
        ok = requests.post(
            gw.url + "/soap",
            data=_send_edoc_envelope("SA", gw.secrets["SA"], _package(pki, "other")),
            headers={"Content-Type": XML},
            timeout=30,
        )
        assert ok.status_code == 200
        assert gw.stored() == (1, 1)
        for sock in waiting:
            sock.close()


def _send_edoc_envelope_request(gw: Gateway, pki, number: str) -> bytes:
    body = _send_edoc_envelope("SA", gw.secrets["SA"], _package(pki, number))
    return _post_head(len(body)) + body


# --------------------------------------------------------------------------- bounded concurrency per system


def _get_agencies(url: str, system: str, *, tls: bool = True) -> requests.Response:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<t:GetAgencies xmlns:t="{SOAP_TNS}"/></soap:Body></soap:Envelope>'
    )
    headers = {"Content-Type": XML, **({"X-Forwarded-Proto": "https"} if tls else {})}
    return requests.post(url + "/soap", data=envelope, headers=headers, auth=(system, SYSTEMS[system][0]), timeout=30)


def test_operations_in_progress_per_system_are_bounded(tmp_path):
    # The fake use cases hold GetAgencies while data/hold-agencies exists (web_fake_app), so the first call is
    # certainly still running when the second arrives.
    with gunicorn(tmp_path, trusted_proxies="127.0.0.1", max_requests_per_system="1") as server:
        hold = server.data_dir / "hold-agencies"
        hold.touch()
        first: list[requests.Response] = []
        thread = threading.Thread(target=lambda: first.append(_get_agencies(server.url, "sys-sender")))
        thread.start()
        deadline = time.monotonic() + 10
        while not (server.data_dir / "agencies-entered").exists():
            assert time.monotonic() < deadline, "the first call never reached the operation"
            time.sleep(0.02)
        second = _get_agencies(server.url, "sys-sender")
        assert second.status_code == 429 and second.headers["Retry-After"] == "1"
        assert _fault_code(second.content) == "RATE.LIMITED"
        # Another system is not held back by the first one's running operation.
        other = requests.post(
            server.url + "/soap",
            data=(
                '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                f'<t:GetPendingList xmlns:t="{SOAP_TNS}"><t:organId>000.00.00.H02</t:organId></t:GetPendingList>'
                "</soap:Body></soap:Envelope>"
            ),
            headers={"Content-Type": XML, "X-Forwarded-Proto": "https"},
            auth=("sys-receiver", SYSTEMS["sys-receiver"][0]),
            timeout=30,
        )
        assert other.status_code == 200, other.text[:300]
        hold.unlink()
        thread.join(30)
        assert first[0].status_code == 200
        assert _get_agencies(server.url, "sys-sender").status_code == 200  # the slot was given back


# --------------------------------------------------------------------------- forwarded headers (finding 6)


@pytest.mark.parametrize("trusted", [None, "127.0.0.1"], ids=["default", "trusted-127.0.0.1"])
def test_forwarded_proto_is_believed_only_from_trusted_proxies(tmp_path, trusted):
    settings = {"trusted_proxies": trusted} if trusted else {}
    with gunicorn(tmp_path, **settings) as server:
        resp = _get_agencies(server.url, "sys-sender", tls=True)  # Basic + X-Forwarded-Proto: https from 127.0.0.1
    if trusted:
        assert resp.status_code == 200, resp.text[:300]
    else:
        assert resp.status_code == 500
        assert _fault_code(resp.content) == "AUTH.DENIED"
        assert b"only over TLS" in resp.content


def test_the_worker_class_imports_nothing_the_master_must_not_decide_early():
    # gunicorn's master imports the worker class before its on_starting hook names prometheus_client's
    # multiprocess directory; prometheus_client fixes its storage when first imported, so importing it there
    # made every worker count in private memory that /metrics never read.
    code = (
        "import sys, gateway.web.serving; "
        "print(sorted(m for m in ('prometheus_client', 'spyne', 'flask') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
