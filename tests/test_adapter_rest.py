"""The ``rest`` channel: adapter against the reference receiver under a real gunicorn, and failure modes."""

from __future__ import annotations

import base64
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
from pathlib import Path

import pytest
from _samples import Corpus

from adapters.rest import RestAdapter, message_body, sign, verify
from gateway.edxml import PackageKind, from_json, read_bytes
from gateway.ports import DeliveryError, OutgoingPackage, Peer

KEY = "test-hmac-key-0123456789"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver(tmp_path):
    port = _port()
    store = tmp_path / "received"
    env = {**os.environ, "EDOC_RECEIVER_DIR": str(store), "EDOC_RECEIVER_HMAC_KEY": KEY}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (tmp_path / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [str(gunicorn), "-b", f"127.0.0.1:{port}", "-w", "2", "adapters.rest.receiver:make_app()"],
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
    yield url, store
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
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
        data=data,
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
    assert not (store / "d2.json").exists()
    down = Peer(organ_id="x", channel="rest", endpoint=f"http://127.0.0.1:{_port()}/", credentials={"hmac_key": KEY})
    with pytest.raises(DeliveryError) as err:
        adapter.deliver(down, _outgoing(corpus, delivery_id="d3"))
    assert err.value.retryable is True
    adapter.close()


class _Odd(http.server.BaseHTTPRequestHandler):
    mode = "500"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "slow":
            time.sleep(3)
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
    finally:
        adapter.close()
        server.shutdown()
        server.server_close()


def test_signature_scheme(corpus):
    body = message_body(_outgoing(corpus))
    ts = str(int(time.time()))
    sig = sign(KEY.encode(), ts, body)
    assert verify(KEY.encode(), ts, body, sig)
    assert not verify(KEY.encode(), ts, body + b" ", sig)
    assert not verify(b"other", ts, body, sig)
    assert not verify(KEY.encode(), str(int(ts) - 3600), body, sign(KEY.encode(), str(int(ts) - 3600), body))
