"""adapters.vdxp without a gateway: how the client reads odd answers (a stub HTTP server on 127.0.0.1), how the
adapter translates them for the worker, and the agency-list import rules."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.vdxp import VdxpAdapter, VdxpClient, VdxpError, import_agencies
from adapters.vdxp.client import Failure
from gateway.edxml import PackageKind
from gateway.errors import ConfigError
from gateway.ports import (
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryTimeout,
    IncomingPackage,
    OutgoingPackage,
    Peer,
)
from gateway.protocols import vdxp
from gateway.protocols.vdxp import AgencyItem

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


@pytest.fixture
def stub() -> Iterator[tuple[str, Stub]]:
    state = Stub()

    class Handler(http.server.BaseHTTPRequestHandler):
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
        data=b"<edXML/>\r\n",
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
    with pytest.raises(DeliveryTimeout):
        adapter.deliver(Peer("000.00.00.G22", "vdxp", None, {}), _package())
    adapter.close()
    state.delay = 0
    _answer(state, 200, {"status": "OK", "ErrorCode": "0", "data": ["x" * 5000]})
    with VdxpClient(url, "s", SECRET, max_response_bytes=1000) as client, pytest.raises(VdxpError) as err:
        client.agencies()
    assert err.value.failure is Failure.PROTOCOL and "larger" in err.value.message


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
