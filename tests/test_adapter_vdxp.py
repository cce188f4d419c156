"""adapters.vdxp without a gateway: how the client reads odd answers (a stub HTTP server on 127.0.0.1), how the
adapter translates them for the worker, and the agency-list import rules."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from peer_faults import TRANSPORT_FAULTS, concurrently, transport_fault

from adapters.vdxp import VdxpAdapter, VdxpClient, VdxpError, import_agencies
from adapters.vdxp.client import Failure
from gateway.config import Settings
from gateway.edxml import PackageKind
from gateway.errors import ConfigError
from gateway.payload import Payload
from gateway.ports import (
    DeliveryConfigError,
    DeliveryError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryResult,
    DeliveryTimeout,
    IncomingPackage,
    OutgoingPackage,
    Peer,
)
from gateway.protocols import vdxp
from gateway.protocols.vdxp import AgencyItem
from gateway.worker.peers import load_adapters

SECRET = "stub-secret-0123456789"


@dataclass
class Stub:
    """What the stub answers next, and what it saw."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    #: Answers for the next requests, in order, before the default above.
    queue: list[tuple[int, bytes]] = field(default_factory=list)
    #: TCP connections accepted (the stub speaks HTTP/1.1 and keeps them alive).
    connections: int = 0


@pytest.fixture
def stub() -> Iterator[tuple[str, Stub]]:
    state = Stub()

    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real axis behind nginx does

        def setup(self) -> None:  # once per connection
            super().setup()
            with lock:
                state.connections += 1

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.seen.append((self.path, {k: v for k, v in self.headers.items()}, body))
            if state.delay:
                threading.Event().wait(state.delay)
            status, answer = state.queue.pop(0) if state.queue else (state.status, state.body)
            self.send_response(status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/vdxp", state
    finally:
        server.shutdown()
        server.server_close()


def _answer(state: Stub, status: int, payload: Any) -> None:
    state.status = status
    state.body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload


def _package() -> OutgoingPackage:
    return OutgoingPackage(
        delivery_id="d" * 32,
        doc_id="c" * 32,
        kind=PackageKind.EDOC,
        sender="000.00.00.H41",
        recipient="000.00.00.G22",
        document_id="x",
        payload=Payload.of(b"<edXML/>\r\n"),
        attempt=1,
    )


def test_the_client_signs_each_call_with_only_its_parameters(stub):
    url, state = stub
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocId": "abc"})
    client = VdxpClient(url, "00.53.W00", SECRET)
    assert client.send_edoc(b"<edXML/>\r\n", sender="000.00.00.H41", kind=PackageKind.STATUS) == "abc"
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": ""})
    client.update_status("abc", "fail", "Sai địa chỉ")
    client.close()

    (path1, headers1, body1), (path2, headers2, body2) = state.seen
    assert path1 == "/vdxp/sendEdoc" and path2 == "/vdxp/updateStatus"
    assert body1 == b"<edXML/>\r\n"  # exactly the package: no CRLF added
    assert headers1["Content-Type"] == "application/octet-stream"
    assert headers1["XroadVnpt-hash-file"] == vdxp.file_hash(body1)
    assert headers1["XroadVnpt-messagetype"] == "status"
    assert body2 == b"{}"
    lookup = vdxp.mapping_headers({k: v.encode("latin-1") for k, v in headers2.items()})
    verified = vdxp.verify_request(lookup, SECRET, vdxp.Operation.UPDATE_STATUS, system_id="00.53.W00")
    assert verified.params == {"docid": "abc", "status": "fail", "description": "Sai địa chỉ"}
    assert "hash-file" not in headers2[vdxp.SIGN_HEADER]  # nothing stale from the previous call
    assert headers2[vdxp.SIGN_HEADER].isascii()


@pytest.mark.parametrize(
    ("status", "payload", "failure", "error"),
    [
        (200, {"status": "FAIL", "ErrorCode": "22", "ErrorDesc": "edXML sai"}, Failure.REFUSED, DeliveryRefused),
        (413, {"status": "FAIL", "ErrorCode": "SIZE.LIMIT", "ErrorDesc": "x"}, Failure.REFUSED, DeliveryRefused),
        (
            503,
            {"status": "FAIL", "ErrorCode": "SERVICE.UNAVAILABLE", "ErrorDesc": "x"},
            Failure.PEER,
            DeliveryPeerError,
        ),
        (429, {"status": "FAIL", "ErrorCode": "x", "ErrorDesc": "x"}, Failure.PEER, DeliveryPeerError),
        (502, b"<html>Bad Gateway</html>", Failure.PEER, DeliveryPeerError),
        (200, b"<html>login</html>", Failure.PROTOCOL, DeliveryProtocolError),
        (404, {"status": "FAIL", "ErrorCode": "NOT_FOUND", "ErrorDesc": "x"}, Failure.PROTOCOL, DeliveryProtocolError),
        (302, b"", Failure.PROTOCOL, DeliveryProtocolError),
        (200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": ""}, Failure.PROTOCOL, DeliveryProtocolError),  # no DocId
        (200, {"status": "OK", "ErrorCode": "5", "DocId": "x"}, Failure.REFUSED, DeliveryRefused),
    ],
)
def test_answers_are_classified_for_the_worker(stub, status, payload, failure, error):
    url, state = stub
    _answer(state, status, payload)
    if status == 302:
        state.headers = {"Location": "http://127.0.0.1:9/elsewhere"}
    client = VdxpClient(url, "s", SECRET)
    with pytest.raises(VdxpError) as err:
        client.send_edoc(b"<edXML/>", sender="000.00.00.H41", kind=PackageKind.EDOC)
    assert err.value.failure is failure
    assert err.value.retryable is (failure is not Failure.REFUSED)
    client.close()
    adapter = VdxpAdapter(endpoint=url, system_id="s", secret=SECRET)
    with pytest.raises(error) as delivered:
        adapter.deliver(Peer("000.00.00.G22", "vdxp", None, {}), _package())
    assert delivered.value.retryable is (failure is not Failure.REFUSED)
    adapter.close()


def test_timeouts_and_oversized_answers(stub):
    url, state = stub
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "data": []})
    state.delay = 1.0
    adapter = VdxpAdapter(endpoint=url, system_id="s", secret=SECRET, read_timeout=0.2)
    with pytest.raises(DeliveryTimeout) as err:
        adapter.deliver(Peer("000.00.00.G22", "vdxp", None, {}), _package())
    assert err.value.sent is True  # sendEdoc went out: the axis may have the package (outcome unknown)
    adapter.close()
    state.delay = 0
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "data": ["x" * 5000]})
    with VdxpClient(url, "s", SECRET, max_response_bytes=1000) as client, pytest.raises(VdxpError) as err:
        client.agencies()
    assert err.value.failure is Failure.PROTOCOL and "larger" in err.value.message


def test_missing_endpoint_or_credentials_is_a_configuration_error():
    for adapter, peer in (
        (VdxpAdapter(), Peer("000.00.00.G22", "vdxp", "http://127.0.0.1:9/vdxp", {})),
        (VdxpAdapter(endpoint="http://127.0.0.1:9/vdxp", system_id="s"), Peer("000.00.00.G22", "vdxp", None, {})),
    ):
        with pytest.raises(DeliveryConfigError) as err:
            adapter.deliver(peer, _package())
        assert err.value.code == "DELIVERY.CONFIG" and err.value.retryable


@pytest.mark.parametrize("fault", sorted(TRANSPORT_FAULTS))
def test_transport_failures_follow_the_shared_table(fault):
    """Issue 11: one taxonomy with SOAP and REST. A failure after the connection was made is unknown (sent=True)."""
    code, sent = TRANSPORT_FAULTS[fault]
    started = time.monotonic()
    with transport_fault(fault) as url:
        adapter = VdxpAdapter(endpoint=url + "vdxp", system_id="s", secret=SECRET, connect_timeout=0.5, read_timeout=1)
        with pytest.raises(DeliveryError) as err:
            adapter.deliver(Peer("000.00.00.G22", "vdxp", None, {}), _package())
        adapter.close()
    elapsed = time.monotonic() - started
    assert err.value.code == code, err.value
    assert err.value.retryable
    if sent is not None:
        assert isinstance(err.value, DeliveryTimeout) and err.value.sent is sent
    # the client retries a connection that was never made twice (0.5 s each, 0.2 + 0.4 s apart)
    assert elapsed < 4, f"{fault} took {elapsed:.1f} s: a deadline did not hold"


def test_the_package_read_timeout_replaces_the_adapters_for_that_call_only(stub):
    """Issue 11 finding 6: an axis slower than the read timeout gets the same message again with a longer one; the
    cached client is shared, so the longer timeout is per call (two threads at once)."""
    url, state = stub
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocId": "slow-but-fine"})
    state.delay = 1.5
    adapter = VdxpAdapter(endpoint=url, system_id="s", secret=SECRET, connect_timeout=1, read_timeout=0.5)
    peer = Peer("000.00.00.G22", "vdxp", None, {})
    patient = dataclasses.replace(_package(), read_timeout=3.0, attempt=2)
    long_result, short_result = concurrently(
        lambda: adapter.deliver(peer, patient), lambda: adapter.deliver(peer, _package())
    )
    adapter.close()
    assert long_result == DeliveryResult(peer_reference="slow-but-fine", peer_answer="OK DocId=slow-but-fine")
    assert isinstance(short_result, DeliveryTimeout) and short_result.sent is True


def test_concurrent_deliveries_to_one_axis_reuse_a_bounded_number_of_connections(stub):
    """8 threads x 5 sendEdoc through the worker's own factory (from_settings, one cached client): all answered,
    over at most 8 TCP connections (counted by the stub as it accepts them), not one per call."""
    url, state = stub
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocId": "x"})
    settings = dataclasses.replace(Settings(), extra={"vdxp": {"endpoint": url, "system_id": "s", "secret": SECRET}})
    adapter = load_adapters(settings, {"vdxp": "adapters.vdxp:VdxpAdapter"})["vdxp"]
    peer = Peer("000.00.00.G22", "vdxp", None, {})

    def sender() -> int:
        return len([adapter.deliver(peer, _package()) for _ in range(5)])

    results = concurrently(*([sender] * 8))
    adapter.close()
    assert results == [5] * 8, results
    assert len(state.seen) == 40
    assert 1 <= state.connections <= 8, f"{state.connections} connections for 40 calls"
    print(f"40 sendEdoc from 8 threads: {state.connections} TCP connections")


def test_poll_fetches_lazily_and_skips_an_item_the_axis_refuses(stub):
    url, state = stub
    listing = {
        "status": "OK",
        "ErrorCode": "0",
        "data": [{"docId": "a", "messageType": "edoc"}, {"docId": "b", "messageType": "status"}],
    }
    refused = {"status": "FAIL", "ErrorCode": "NOT_FOUND", "ErrorDesc": "gone"}
    package = {"status": "OK", "ErrorCode": "0", "data": base64.b64encode(b"<b/>").decode()}
    state.queue = [(200, json.dumps(x).encode()) for x in (listing, refused, package)]
    adapter = VdxpAdapter(endpoint=url, system_id="s", secret=SECRET)
    polled = adapter.poll(PackageKind.EDOC)
    assert state.seen == []  # nothing is asked before the caller iterates
    assert list(polled) == [IncomingPackage(peer_reference="b", kind=PackageKind.STATUS, data=b"<b/>")]
    assert [path for path, _, _ in state.seen] == ["/vdxp/getReceivedEdocList", "/vdxp/getEdoc", "/vdxp/getEdoc"]

    state.queue = [(200, json.dumps(listing).encode()), (503, json.dumps(refused).encode())]
    with pytest.raises(DeliveryPeerError):
        list(adapter.poll(PackageKind.EDOC))  # a temporary failure ends the poll; the worker polls again later
    state.queue = [(200, json.dumps({"status": "OK", "ErrorCode": "0"}).encode())]
    adapter.acknowledge("b", ok=False, reason="không đọc được")
    verified = vdxp.verify_request(
        vdxp.mapping_headers({k: v.encode("latin-1") for k, v in state.seen[-1][1].items()}),
        SECRET,
        vdxp.Operation.UPDATE_STATUS,
        system_id="s",
    )
    assert verified.params == {"docid": "b", "status": "fail", "description": "không đọc được"}
    adapter.close()
    with pytest.raises(ConfigError):
        next(VdxpAdapter().poll(PackageKind.EDOC))


def test_import_rules_create_update_and_keep_local():
    @dataclass
    class Known:
        organ_id: str
        channel: str

    class FakeRegistry:
        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []

        def list_agencies(self) -> list[Known]:
            return [Known("000.00.00.H41", "mailbox"), Known("000.00.00.G22", "vdxp")]

        def import_records(self, rows):
            self.rows = list(rows)
            return type("Report", (), {"created": 2, "updated": 1})()

    items = [
        AgencyItem(id="1", code="000.00.00.G22", name="Văn phòng Chính phủ", mail="", pid="0"),
        AgencyItem(id="2", code="000.00.01.G22", name="Vụ Hành chính", mail="", pid="1"),
        AgencyItem(id="3", code="000.00.00.H41", name="Tên khác cho Nghệ An", mail="", pid="0"),
        AgencyItem(id="4", code="not an id!", name="?", mail="", pid="0"),
        AgencyItem(id="5", code="000.00.01.G22", name="trùng", mail="", pid="1"),
        AgencyItem(id="6", code="000.00.00.H14", name="", mail="", pid="99"),
    ]
    registry = FakeRegistry()
    report = import_agencies(items, registry)
    assert (report.created, report.updated, report.kept_local) == (2, 1, 1)
    assert report.skipped == ("not an id!", "000.00.01.G22")
    assert registry.rows == [
        {"organ_id": "000.00.00.G22", "name": "Văn phòng Chính phủ"},  # known vdxp agency: name only
        {"organ_id": "000.00.01.G22", "name": "Vụ Hành chính", "parent": "000.00.00.G22", "channel": "vdxp"},
        {"organ_id": "000.00.00.H14", "name": "000.00.00.H14", "channel": "vdxp"},  # unknown pid: derived later
    ]
