"""The ``rest`` channel: adapter against the reference receiver under a real gunicorn, and failure modes."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _samples import Corpus
from peer_faults import TRANSPORT_FAULTS, CountingProxy, concurrently, transport_fault

from adapters.rest import RestAdapter, message_body, sign, verify
from gateway.config import Settings
from gateway.edxml import PackageKind, from_json, read_bytes
from gateway.payload import Payload
from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryResult,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
)
from gateway.worker.peers import load_adapters

KEY = "test-hmac-key-0123456789"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver(tmp_path):
    with _running_receiver(tmp_path) as running:
        yield running


@contextlib.contextmanager
def _running_receiver(tmp_path: Path, *args: str) -> Iterator[tuple[str, Path]]:
    """The reference receiver under gunicorn (``args``: more gunicorn options); yields (URL, store directory)."""
    port = _port()
    store = tmp_path / "received"
    env = {**os.environ, "EDOC_RECEIVER_DIR": str(store), "EDOC_RECEIVER_HMAC_KEY": KEY}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (tmp_path / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [str(gunicorn), "-b", f"127.0.0.1:{port}", "-w", "2", *args, "adapters.rest.receiver:make_app()"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/inbox"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            break
        except OSError:
            assert proc.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.2)
    try:
        yield url, store
    finally:
        # gunicorn's graceful stop can outlast 30 s on a loaded machine: a receiver that lingers is killed, not
        # left to a garbage-collected Popen that warns inside whichever test runs next on this worker.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _outgoing(corpus: Corpus, delivery_id: str = "d1") -> OutgoingPackage:
    data = corpus.read("edoc_new")
    pkg = read_bytes(data)
    return OutgoingPackage(
        delivery_id=delivery_id,
        doc_id="doc1",
        kind=pkg.kind,
        sender=pkg.sender,
        recipient="28.22.H17",
        document_id=pkg.document_id,
        payload=Payload.of(data),
        attempt=1,
    )


def test_delivers_canonical_json_and_raw_bytes_once(corpus, receiver):
    url, store = receiver
    adapter = RestAdapter()
    out = _outgoing(corpus)
    peer = Peer(organ_id="28.22.H17", channel="rest", endpoint=url, credentials={"hmac_key": KEY})
    result = adapter.deliver(peer, out)
    assert result.peer_reference == "d1"
    doc = json.loads((store / "d1.json").read_bytes())
    assert base64.b64decode(doc["raw"]) == out.data  # byte-exact
    assert from_json(doc["package"]) == read_bytes(out.data)  # the canonical JSON reads back to the same package
    assert doc["kind"] == PackageKind.EDOC.value
    adapter.deliver(peer, out)  # a retry after a lost answer
    assert (store / "duplicates.log").read_text().split() == ["d1"]
    assert sorted(p.name for p in store.iterdir()) == ["d1.json", "duplicates.log"]
    adapter.close()


def test_wrong_key_is_permanent_and_down_is_retryable(corpus, receiver, tmp_path):
    url, store = receiver
    adapter = RestAdapter()
    bad = Peer(organ_id="x", channel="rest", endpoint=url, credentials={"hmac_key": "wrong"})
    with pytest.raises(DeliveryError) as err:
        adapter.deliver(bad, _outgoing(corpus, delivery_id="d2"))
    assert err.value.retryable is False
    assert err.value.code == "DELIVERY.REFUSED" and "HTTP 401" in (err.value.peer_answer or "")
    assert not (store / "d2.json").exists()
    down = Peer(organ_id="x", channel="rest", endpoint=f"http://127.0.0.1:{_port()}/", credentials={"hmac_key": KEY})
    with pytest.raises(DeliveryUnreachable) as err:
        adapter.deliver(down, _outgoing(corpus, delivery_id="d3"))
    assert err.value.retryable is True and err.value.code == "DELIVERY.UNREACHABLE"
    adapter.close()


@pytest.mark.parametrize(
    ("endpoint", "credentials"),
    [(None, {"hmac_key": KEY}), ("ftp://127.0.0.1/x", {"hmac_key": KEY}), ("http://127.0.0.1:9/", {})],
)
def test_missing_endpoint_or_key_is_a_configuration_error(corpus, endpoint, credentials):
    adapter = RestAdapter()
    with pytest.raises(DeliveryConfigError) as err:
        adapter.deliver(Peer("x", "rest", endpoint, credentials), _outgoing(corpus))
    assert err.value.code == "DELIVERY.CONFIG" and err.value.retryable  # an operator can fix it within the budget
    adapter.close()


@pytest.mark.parametrize("fault", sorted(TRANSPORT_FAULTS))
def test_transport_failures_follow_the_shared_table(corpus, fault):
    """Issue 11: one taxonomy. A failure after the connection was made is an unknown outcome (sent=True)."""
    code, sent = TRANSPORT_FAULTS[fault]
    adapter = RestAdapter(connect_timeout=0.5, read_timeout=1)
    started = time.monotonic()
    with transport_fault(fault) as url, pytest.raises(DeliveryError) as err:
        adapter.deliver(Peer("x", "rest", url, {"hmac_key": KEY}), _outgoing(corpus))
    elapsed = time.monotonic() - started
    adapter.close()
    assert err.value.code == code, err.value
    assert err.value.retryable
    if sent is not None:
        assert isinstance(err.value, DeliveryTimeout) and err.value.sent is sent
    assert elapsed < 3, f"{fault} took {elapsed:.1f} s: a deadline did not hold"


class _Odd(http.server.BaseHTTPRequestHandler):
    mode = "500"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "slow":
            time.sleep(3)
        if self.mode == "slow-ok":  # a receiver that stores the package, then takes 1.5 s to say so
            time.sleep(1.5)
            answer = b'{"accepted": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        if self.mode == "garbage":
            self.wfile.write(b"\x00\x01 not http at all\r\n\r\n")
            return
        code = 500 if self.mode in ("500", "slow") else 400
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("mode", "code", "retryable"),
    [
        ("500", "DELIVERY.PEER_ERROR", True),
        ("400", "DELIVERY.REFUSED", False),
        ("slow", "DELIVERY.TIMEOUT", True),
        ("garbage", "DELIVERY.PROTOCOL", True),
    ],
)
def test_peer_failures_are_classified(corpus, mode, code, retryable):
    handler = type("H", (_Odd,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    adapter = RestAdapter(connect_timeout=2, read_timeout=1)
    peer = Peer(
        organ_id="x", channel="rest", endpoint=f"http://127.0.0.1:{server.server_port}/", credentials={"hmac_key": KEY}
    )
    try:
        with pytest.raises(DeliveryError) as err:
            adapter.deliver(peer, _outgoing(corpus))
        assert err.value.retryable is retryable
        assert err.value.code == code  # issue 11 finding 5: no more DELIVERY.FAILED for timeouts and 500
        if mode == "slow":
            assert err.value.sent is True  # the package went out: the outcome is unknown, not "failed"
    finally:
        adapter.close()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _odd_server(mode: str) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Odd,), {"mode": mode}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_package_read_timeout_replaces_the_adapters_for_that_call_only(corpus):
    """Issue 11 finding 6: a peer slower than the read timeout gets the same message again with a longer one. Two
    threads at once on one adapter: the call with ``read_timeout=3`` waits and succeeds, the other times out."""
    adapter = RestAdapter(connect_timeout=1, read_timeout=0.5)
    with _odd_server("slow-ok") as url:
        peer = Peer("x", "rest", url, {"hmac_key": KEY})
        patient = dataclasses.replace(_outgoing(corpus, "d-long"), read_timeout=3.0, attempt=2)
        hasty = _outgoing(corpus, "d-short")
        long_result, short_result = concurrently(
            lambda: adapter.deliver(peer, patient), lambda: adapter.deliver(peer, hasty)
        )
    adapter.close()
    assert isinstance(long_result, DeliveryResult) and long_result.peer_answer == "HTTP 200"
    assert isinstance(short_result, DeliveryTimeout) and short_result.sent is True


def test_concurrent_deliveries_to_one_peer_reuse_a_bounded_number_of_connections(corpus, tmp_path):
    """8 threads x 5 deliveries through the worker's own factory (from_settings): every message stored once, over at
    most 8 TCP connections (counted where the receiver accepts them), not one per delivery."""
    with _running_receiver(tmp_path, "-k", "gthread", "--threads", "8", "--keep-alive", "10") as (url, store):
        proxy = CountingProxy(int(url.rsplit(":", 1)[1].split("/", 1)[0]))
        settings = dataclasses.replace(Settings(), adapter_connect_timeout=5.0, adapter_read_timeout=20.0)
        adapter = load_adapters(settings, {"rest": "adapters.rest:RestAdapter"})["rest"]
        peer = Peer("x", "rest", proxy.url + "inbox", {"hmac_key": KEY})
        packages = [_outgoing(corpus, f"c{t}-{i}") for t in range(8) for i in range(5)]

        def sender(mine: list[OutgoingPackage]) -> list[DeliveryResult]:
            return [adapter.deliver(peer, p) for p in mine]

        results = concurrently(*(lambda t=t: sender(packages[t * 5 : t * 5 + 5]) for t in range(8)))
        adapter.close()
        proxy.close()
    assert all(isinstance(r, list) and len(r) == 5 for r in results), results
    assert sorted(p.name for p in store.iterdir()) == sorted(f"{p.delivery_id}.json" for p in packages)
    assert 1 <= proxy.accepted <= 8, f"{proxy.accepted} connections for 40 deliveries"
    print(f"40 deliveries from 8 threads: {proxy.accepted} TCP connections")


def test_signature_scheme(corpus):
    body = message_body(_outgoing(corpus))
    ts = str(int(time.time()))
    sig = sign(KEY.encode(), ts, body)
    assert verify(KEY.encode(), ts, body, sig)
    assert not verify(KEY.encode(), ts, body + b" ", sig)
    assert not verify(b"other", ts, body, sig)
    assert not verify(KEY.encode(), str(int(ts) - 3600), body, sign(KEY.encode(), str(int(ts) - 3600), body))
