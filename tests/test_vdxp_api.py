"""The VDXP-compatible edge under a real gunicorn (deploy/gunicorn.conf.py), on SQLite and PostgreSQL:

* every request the VNPT SDK sends replayed byte for byte — same headers (stale SDK parameters, ``Expect:
  100-continue``), same body (the SDK's extra CRLF) — and answered in the shape the SDK parses: the requests as
  tests/_vdxp_vectors.py builds them the SDK's way (always), and the real SDK's wire capture
  (``vectors/vnpt-sdk/requests.json`` of the external corpus) when present — the ``sdk`` fixture;
* our own :class:`adapters.vdxp.VdxpClient` through every operation, and the refusals;
* :class:`adapters.vdxp.VdxpAdapter` delivering a stored package to a SECOND gateway's ``/vdxp`` edge and polling
  it there, plus :func:`adapters.vdxp.sync_agencies` between the two.

The cast: the SDK's system (with its own secret, as an operator migrating from VDXP keeps it) acts for Nghệ An
(H41, and so its unit H41U); ``vpcp`` for the Government Office (G22); H14 and G17 are the other recipients of
the VPCP letter the SDK's status answers.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import io
import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from _vdxp_vectors import (
    CAPTURE_ABSENT,
    OWN_SECRET,
    OWN_SYSTEM_ID,
    CapturedRequest,
    SdkRequests,
    SdkSession,
    capture_present,
    own_sdk,
    real_sdk,
)
from gatewayproc import free_port, gateway_env, served

from adapters.vdxp import VdxpAdapter, VdxpClient, VdxpError, sync_agencies
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package, status_for
from gateway.edxml import EdocPackage, Organization, PackageKind, StatusCode, render
from gateway.edxml.dates import VN_TZ
from gateway.errors import AuthError, RequestError
from gateway.payload import Payload
from gateway.ports import (
    DeliveryError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
)
from gateway.protocols import vdxp
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry
from gateway.web.vdxp import VdxpEdge

G22, H41, H14, G17 = "000.00.00.G22", "000.00.00.H41", "000.00.00.H14", "000.00.00.G17"
H41U = "000.00.05.H41"  # a level-2 unit of Nghệ An: 00.53.W00 acts for it through H41
#: Nghệ An's system in the tests that are not about the SDK's requests.
SYSTEM_ID, SECRET = OWN_SYSTEM_ID, OWN_SECRET
LIST_TIME = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Gateway:
    url: str
    settings: Settings
    secrets: dict[str, str]
    log: Path
    clients: list[VdxpClient] = dataclasses.field(default_factory=list)

    @property
    def vdxp(self) -> str:
        return self.url + "/vdxp"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, system: str, secret: str | None = None) -> VdxpClient:
        client = VdxpClient(self.vdxp, system, secret or self.secrets[system], read_timeout=60)
        self.clients.append(client)
        return client

    def query(self, sql: str, **params: object) -> list[tuple]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {table}")[0][0]


#: A system as the tests register it: (agencies, secret or None for a generated one[, add_system's VDXP options]).
SystemSpec = tuple[list[str], str | None] | tuple[list[str], str | None, dict]
#: The VDXP options of a system whose clients run the stock VNPT SDK (fixed timestamp), on this loopback test
#: host: legacy-sdk mode, bound to the address the tests connect from (issue 10 finding 7).
SDK_ON_LOOPBACK: dict = {"vdxp_replay": "legacy-sdk", "allow_from": ["127.0.0.1"]}


@contextlib.contextmanager
def running_gateway(
    data_dir: Path, database_url: str, pki, agencies: list[dict], systems: dict[str, SystemSpec], **env_extra: str
) -> Iterator[Gateway]:
    """A migrated database with ``agencies`` and ``systems`` (id → :data:`SystemSpec`), served by gunicorn."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = gateway_env(data_dir, database_url, pki, max_package_bytes=256 * 1024, **env_extra)
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(agencies)
        creds = {
            sid: registry.add_system(sid, spec[0], secret=spec[1], **(spec[2] if len(spec) > 2 else {}))
            for sid, spec in systems.items()
        }
    log = data_dir / "gunicorn.log"
    gw = Gateway(f"http://{settings.bind}", settings, creds, log)
    try:
        with served(settings, env, log):
            yield gw
    finally:
        for client in gw.clients:
            client.close()


AGENCIES = [
    {"organ_id": G22, "name": "Văn phòng Chính phủ"},
    {"organ_id": H41, "name": "UBND tỉnh Nghệ An"},
    {"organ_id": H41U, "name": "Sở Nội vụ tỉnh Nghệ An"},
    {"organ_id": H14, "name": "UBND tỉnh Sơn La"},
    {"organ_id": G17, "name": "Bộ Tài chính"},
]


def _systems(system_id: str, secret: str) -> dict[str, SystemSpec]:
    """The systems of the tests: ``system_id`` (Nghệ An's, with its secret as given, running the stock SDK so
    in legacy-sdk mode bound to loopback) and one per other agency (strict, the default: our own client)."""
    return {
        system_id: ([H41], secret, SDK_ON_LOOPBACK),
        "vpcp": ([G22], None),
        "sys-h14": ([H14], None),
        "sys-g17": ([G17], None),
    }


SYSTEMS = _systems(SYSTEM_ID, SECRET)


@pytest.fixture
def gateway(tmp_path, database_url, pki) -> Iterator[Gateway]:
    with running_gateway(tmp_path / "gw", database_url, pki, AGENCIES, SYSTEMS) as gw:
        yield gw


@pytest.fixture
def sdk_gateway(tmp_path, database_url, pki, sdk: SdkRequests) -> Iterator[Gateway]:
    """A gateway where the SDK's system (id and secret of ``sdk``) acts for Nghệ An."""
    with running_gateway(tmp_path / "gw", database_url, pki, AGENCIES, _systems(sdk.system_id, sdk.secret)) as gw:
        yield gw


@pytest.fixture
def sqlite_gateway(tmp_path, pki, sdk: SdkRequests) -> Iterator[Gateway]:
    systems = _systems(sdk.system_id, sdk.secret)
    with running_gateway(tmp_path / "gw", f"sqlite:///{tmp_path / 'gw.db'}", pki, AGENCIES, systems) as gw:
        yield gw


# ================================================================================================ helpers


def _post(gw: Gateway, path: str, headers: dict[str, str], body: bytes, method: str = "POST") -> tuple[int, dict]:
    """One raw HTTP request with exactly these headers (values as UTF-8 bytes) and this body."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            if name.lower() != "content-length":
                conn.putheader(name, value.encode("utf-8"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.getheader("Content-Type", "").startswith("application/json"), data[:200]
    assert data.isascii()
    return resp.status, json.loads(data)


def _replay(gw: Gateway, r: CapturedRequest) -> tuple[int, dict]:
    return _post(gw, "/vdxp" + r.path, r.headers, r.body)


def _resigned(sdk: SdkRequests, r: CapturedRequest, secret: str | None = None, **changes: str) -> CapturedRequest:
    """The SDK's request with some parameter values changed, signed again as the SDK would (same entry order,
    same stale entries) with the SDK system's secret: what the SDK sends for a docId of OUR gateway."""
    entries = [(name, changes.get(name, value)) for name, value in r.entries]
    headers = dict(r.headers)
    for name, value in changes.items():
        headers[vdxp.PREFIX + name] = value
    headers[vdxp.SIGN_HEADER] = vdxp.gson_json([(vdxp.PREFIX + n, v) for n, v in entries])
    headers[vdxp.HASH_HEADER] = vdxp.sign(secret or sdk.secret, headers[vdxp.SIGN_HEADER])
    return dataclasses.replace(r, headers=headers)


def _ok(status: int, answer: dict) -> dict:
    assert status == 200, answer
    assert answer["status"] == "OK", answer
    assert answer["ErrorCode"] == "0"
    assert isinstance(answer["ErrorDesc"], str)
    return answer


#: What the SDK reads from each operation's answer besides status/ErrorCode/ErrorDesc (edxml.md §11.1, §11.4),
#: written out here independently of the edge: a refusal must carry these keys, empty, or the SDK throws a
#: NullPointerException instead of showing the error (issue 8, finding 7).
SDK_READS: dict[str | None, dict] = {
    "sendEdoc": {"DocId": ""},
    "getReceivedEdocList": {"data": []},
    "getEdoc": {"data": ""},
    "updateStatus": {},
    "getSentEdocList": {"data": []},
    "getAgenciesList": {"data": []},
    "getSynchronizeUnit": {"data": []},
    "registerAgency": {},
    None: {},  # a name VDXP does not have
}


def _fail(status: int, answer: dict, code: str, http_status: int = 200, *, op: str | None) -> dict:
    """A refusal of ``op`` in the SDK's shape: FAIL, our code, a description, and ``op``'s answer keys empty."""
    assert status == http_status, answer
    assert answer["status"] == "FAIL"
    assert answer["ErrorCode"] == code, answer
    assert isinstance(answer["ErrorDesc"], str) and answer["ErrorDesc"]
    assert answer == {"status": "FAIL", "ErrorCode": code, "ErrorDesc": answer["ErrorDesc"], **SDK_READS[op]}
    return answer


def _edoc(sender: str, recipients: tuple[str, ...], number: str) -> tuple[bytes, EdocPackage]:
    base = demo_package()
    h = base.message_header
    h = dataclasses.replace(
        h,
        from_=Organization(organ_id=sender, organ_name=f"Đơn vị {sender}"),
        to=tuple(Organization(organ_id=o, organ_name=o) for o in recipients),
        document_id=f"{sender},2026/11/28,{number}/VP-HCTC",
        code=dataclasses.replace(h.code, code_number=number),
    )
    pkg = dataclasses.replace(base, message_header=h)
    return render(pkg), pkg


# ================================================================================================ SDK replay


def test_every_captured_sdk_request_is_accepted_and_answered_in_the_sdks_shape(sdk_gateway, sdk):
    gateway = sdk_gateway
    official = sdk.document
    vpcp = gateway.client("vpcp")
    vpcp.send_edoc(official, sender=G22, kind=PackageKind.EDOC)  # the document the captured status is about

    answers: dict[str, dict] = {}
    for r in sdk.requests:  # in the order the SDK sent them
        status, answer = _replay(gateway, r)
        answers[r.operation] = answer
        if r.operation in ("getEdoc", "updateStatus"):
            # The captured docId is another axis's message id: authenticated fine, and simply not ours.
            _fail(status, answer, "NOT_FOUND", op=r.operation)
        else:
            _ok(status, answer)

    agencies = answers["getAgenciesList"]["data"]
    assert {a["code"] for a in agencies} == {a["organ_id"] for a in AGENCIES}
    assert all(set(a) == {"id", "code", "name", "mail", "pid"} for a in agencies)
    assert all(isinstance(v, str) for a in agencies for v in a.values())
    unit = next(a for a in agencies if a["code"] == H41U)
    assert unit["pid"] == next(a["id"] for a in agencies if a["code"] == H41)
    assert next(a for a in agencies if a["code"] == "000.00.00.G22")["name"] == "Văn phòng Chính phủ"

    status_doc = answers["sendEdoc"]["DocId"]
    assert HEX_ID.match(status_doc)
    received = answers["getReceivedEdocList"]["data"]
    assert len(received) == 1
    item = received[0]
    assert set(item) == {
        "docId",
        "serviceType",
        "messageType",
        "created_time",
        "updated_time",
        "from",
        "to",
        "status",
        "status_desc",
    }
    assert (item["serviceType"], item["messageType"], item["from"], item["to"]) == ("eDoc", "edoc", G22, H41)
    assert LIST_TIME.match(item["created_time"]) and LIST_TIME.match(item["updated_time"])
    assert item["status"] == "initial"
    # Its stale docId (getEdoc's) is not applied (finding 8); 00.53.W00 has sent no edoc, only the status.
    assert answers["getSentEdocList"]["data"] == []

    # The same calls for OUR docId, signed as the SDK signs (stale entries, its order, Expect: 100-continue).
    delivery = item["docId"]
    answer = _ok(*_replay(gateway, _resigned(sdk, sdk.request("getEdoc"), docId=delivery)))
    assert base64.b64decode(answer["data"]) == official  # byte for byte
    _ok(*_replay(gateway, _resigned(sdk, sdk.request("updateStatus"), docId=delivery)))
    assert _ok(*_replay(gateway, sdk.request("getReceivedEdocList")))["data"] == []  # acknowledged "done"

    sent = _ok(
        *_replay(gateway, _resigned(sdk, sdk.request("getSentEdocList"), docId=status_doc, messagetype="status"))
    )
    assert [(s["senderDocId"], s["fromCode"], s["toCode"], s["messageType"]) for s in sent["data"]] == [
        (status_doc, H41, G22, "status")
    ]

    # The status the SDK sent reached the sender's mailbox without the SDK's CRLF: the file exactly.
    statuses = vpcp.received_list(PackageKind.STATUS)
    assert [(s.sender, s.recipient) for s in statuses] == [(H41, G22)]
    assert vpcp.get_edoc(statuses[0].doc_id) == sdk.sent_file()
    # and the replayed send is idempotent: the same DocId, nothing new stored
    before = gateway.count("documents")
    assert _ok(*_replay(gateway, sdk.request("sendEdoc")))["DocId"] == status_doc
    assert gateway.count("documents") == before


# ========================================================================================= a long-lived SDK client


def test_own_sdk_emulation_signs_the_entries_the_real_sdk_signed():
    """The SDK emulation of tests/_vdxp_vectors.py signs, call after call, the same entries as the real SDK's
    capture (the same names, the stale ones included; the order is not significant), so what the long-lived test
    below sends is what the SDK sends."""
    if not capture_present():
        pytest.skip(CAPTURE_ABSENT)
    own, real = own_sdk(), real_sdk()
    for op in vdxp.Operation:
        assert {n for n, _ in own.request(op.value).entries} == {n for n, _ in real.request(op.value).entries}, op


def test_long_lived_sdk_client_lists_its_sent_documents_after_a_get_edoc(gateway):
    """Finding 8: the SDK's getSentEdocList after a getEdoc re-signs getEdoc's docId; it must not filter the list."""
    vpcp = gateway.client("vpcp")
    incoming, _ = _edoc(G22, (H41,), "701")
    vpcp.send_edoc(incoming, sender=G22, kind=PackageKind.EDOC)
    outgoing, _ = _edoc(H41, (G22,), "702")

    sdk = SdkSession(SYSTEM_ID, SECRET, datetime.now(VN_TZ))  # one client object for the session, as SDK apps keep it

    def call(r: CapturedRequest) -> dict:
        return _ok(*_replay(gateway, r))

    sent_id = call(sdk.send_edoc(outgoing, H41, "edoc"))["DocId"]
    received = call(sdk.get_received_edoc_list("edoc"))["data"]
    assert [(i["from"], i["to"]) for i in received] == [(G22, H41)]
    delivery = received[0]["docId"]
    assert base64.b64decode(call(sdk.get_edoc(delivery))["data"]) == incoming
    call(sdk.update_status(delivery, "done"))
    assert sdk.entries[vdxp.DOC_ID] == delivery  # the stale entry every later call re-signs

    sent = call(sdk.get_sent_edoc_list())["data"]
    assert [(s["senderDocId"], s["fromCode"], s["toCode"]) for s in sent] == [(sent_id, H41, G22)]
    # asking for its own docId in the same session: the map is stale, so the filter is not applied — the list
    # still holds the document (a superset the SDK application filters), never an empty one
    call(sdk.send_edoc(_edoc(H41, (G22,), "703")[0], H41, "edoc"))
    both = call(sdk.get_sent_edoc_list(doc_id=sent_id))["data"]
    assert sent_id in {s["senderDocId"] for s in both} and len(both) == 2
    # a clean client (ours, or a fresh SDK object) gets the filter it asked for
    assert [s["senderDocId"] for s in gateway.client(SYSTEM_ID).sent_list(doc_id=sent_id)] == [sent_id]
    log = gateway.log.read_text(errors="replace")
    assert "POST /vdxp/getSentEdocList 200" in log and "ignored=docId" in log


# ================================================================================================ our client


def test_client_sends_lists_fetches_acknowledges_and_reports(gateway):
    vpcp, nghe_an, son_la = gateway.client("vpcp"), gateway.client(SYSTEM_ID), gateway.client("sys-h14")
    data, pkg = _edoc(G22, (H41U, H14), "501")
    doc_id = vpcp.send_edoc(data, sender=G22, kind=PackageKind.EDOC)
    assert HEX_ID.match(doc_id)
    assert vpcp.send_edoc(data, sender=G22, kind=PackageKind.EDOC) == doc_id  # a retry: the same answer

    # 00.53.W00 acts for H41 and so reads the mailbox of its unit H41U as well: one list for the system.
    items = nghe_an.received_list(PackageKind.EDOC)
    assert [(i.sender, i.recipient, i.message_type, i.status) for i in items] == [(G22, H41U, "edoc", "initial")]
    assert nghe_an.get_edoc(items[0].doc_id) == data
    nghe_an.update_status(items[0].doc_id, "processing")
    assert nghe_an.received_list(PackageKind.EDOC)[0].status == "initial"  # fetched, not acknowledged
    nghe_an.update_status(items[0].doc_id, "done")
    nghe_an.update_status(items[0].doc_id, "done")  # repeated: still fine
    assert nghe_an.received_list(PackageKind.EDOC) == []

    for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED):
        status = render(status_for(pkg, H41U, code))
        nghe_an.send_edoc(status, sender=H41U, kind=PackageKind.STATUS)

    other = son_la.received_list(PackageKind.EDOC)
    assert len(other) == 1
    son_la.update_status(other[0].doc_id, "fail", "Sai địa chỉ nhận — không thuộc thẩm quyền")

    statuses = vpcp.received_list(PackageKind.STATUS)
    assert [(s.sender, s.recipient) for s in statuses] == [(H41U, G22), (H41U, G22)]
    for s in statuses:
        assert vpcp.get_edoc(s.doc_id).startswith(b"<?xml")
        vpcp.update_status(s.doc_id, "done")

    sent = {row["toCode"]: row for row in vpcp.sent_list(PackageKind.EDOC, doc_id=doc_id)}
    assert set(sent) == {H41U, H14}
    assert (sent[H41U]["receiveStatus"], sent[H41U]["statusCode"], sent[H41U]["deliveryState"]) == (
        "done",
        "03",
        "delivered",
    )
    assert sent[H14]["receiveStatus"] == "fail"
    assert "không thuộc thẩm quyền" in sent[H14]["receiveStatusDesc"]
    assert all(row["senderDocId"] == doc_id and row["fromCode"] == G22 for row in sent.values())
    assert LIST_TIME.match(sent[H41U]["sentTime"]) and LIST_TIME.match(sent[H41U]["receivedTime"])
    assert sent[H41U]["notation"] == "501/VP-HCTC"
    assert len(vpcp.sent_list()) == 2
    assert nghe_an.sent_list() == []  # nghe_an sent statuses only
    assert len(nghe_an.sent_list(PackageKind.STATUS)) == 2

    assert {a.code for a in son_la.agencies()} == {a["organ_id"] for a in AGENCIES}


def test_refusals_answer_fail_with_the_gateway_code_and_store_nothing(sqlite_gateway, sdk):
    gw = sqlite_gateway
    vpcp, nghe_an = gw.client("vpcp"), gw.client(sdk.system_id)
    data, pkg = _edoc(G22, (H41,), "601")

    def refused(fn) -> VdxpError:
        before = gw.count("documents")
        with pytest.raises(VdxpError) as err:
            fn()
        assert gw.count("documents") == before
        return err.value

    wrong = refused(lambda: gw.client("vpcp", "not-the-secret-0123456789").send_edoc(data, sender=G22, kind="edoc"))
    unknown = refused(lambda: gw.client("nobody", "whatever-secret-0123").agencies())
    assert wrong.error_code == unknown.error_code == "AUTH.DENIED"
    assert wrong.http_status == unknown.http_status == 200 and not wrong.retryable
    assert wrong.message.split(": ", 2)[-1] == unknown.message.split(": ", 2)[-1]  # no system enumeration
    assert gw.query("SELECT count(*) FROM audit_log WHERE action = 'auth.denied'")[0][0] >= 2

    mismatch = refused(lambda: vpcp.send_edoc(data, sender=H41, kind=PackageKind.EDOC))
    assert mismatch.error_code == "REQUEST.INVALID"
    assert refused(lambda: nghe_an.send_edoc(data, sender=G22, kind=PackageKind.EDOC)).error_code == "ACCESS.DENIED"
    stranger, _ = _edoc(G22, ("000.00.00.H99",), "602")
    assert refused(lambda: vpcp.send_edoc(stranger, sender=G22, kind="edoc")).error_code == "ROUTE.UNKNOWN_RECIPIENT"
    broken = data.replace(b"<edXML:Subject>", b"<edXML:Subjekt>", 1).replace(b"</edXML:Subject>", b"</edXML:Subjekt>")
    assert refused(lambda: vpcp.send_edoc(broken, sender=G22, kind="edoc")).error_code == "EDXML.SCHEMA"
    assert refused(lambda: vpcp.send_edoc(b"<!DOCTYPE x []><x/>", sender=G22, kind="edoc")).error_code.startswith(
        "EDXML."
    )
    assert refused(lambda: vpcp.get_edoc("0" * 32)).error_code == "NOT_FOUND"
    bad_kind = refused(lambda: vpcp._call(vdxp.Operation.GET_RECEIVED_EDOC_LIST, {"messagetype": "fax"}))
    assert bad_kind.error_code == "REQUEST.INVALID"

    doc_id = vpcp.send_edoc(data, sender=G22, kind=PackageKind.EDOC)
    item = nghe_an.received_list(PackageKind.EDOC)[0]
    # A status package sent as messagetype=edoc is taken for what it is (the SDK's own capture does this).
    nghe_an.send_edoc(render(status_for(pkg, H41, StatusCode.ARRIVED)), sender=H41, kind=PackageKind.EDOC)
    assert [s.sender for s in vpcp.received_list(PackageKind.STATUS)] == [H41]
    assert refused(lambda: gw.client("sys-h14").get_edoc(item.doc_id)).error_code == "NOT_FOUND"  # not its mailbox
    nghe_an.update_status(item.doc_id, "fail", "thử")
    assert refused(lambda: nghe_an.update_status(item.doc_id, "done")).error_code == "REQUEST.INVALID"
    assert vpcp.sent_list(doc_id=doc_id)[0]["receiveStatus"] == "fail"

    # The body is bound by hash-file: a changed body with the original signature is refused.
    r = sdk.request("sendEdoc")
    status, answer = _post(gw, "/vdxp/sendEdoc", r.headers, r.body.replace(b">01<", b">06<"))
    _fail(status, answer, "AUTH.DENIED", op="sendEdoc")
    # Without the signature headers there is nothing to check.
    bare = {k: v for k, v in sdk.request("getAgenciesList").headers.items() if "sign-header" not in k}
    _fail(*_post(gw, "/vdxp/getAgenciesList", bare, b""), "AUTH.DENIED", op="getAgenciesList")

    # HTTP-layer refusals carry the same FAIL body.
    _fail(*_post(gw, "/vdxp/sendEdoc", r.headers, b"x" * (256 * 1024 + 3)), "SIZE.LIMIT", 413, op="sendEdoc")
    _fail(
        *_post(gw, "/vdxp/getAgenciesList", sdk.request("getAgenciesList").headers, b"{" * 70_000),
        "SIZE.LIMIT",
        413,
        op="getAgenciesList",
    )
    _fail(
        *_post(gw, "/vdxp/getAgenciesList", sdk.request("getAgenciesList").headers, b"[1]"),
        "REQUEST.INVALID",
        op="getAgenciesList",
    )
    _fail(*_post(gw, "/vdxp/getAgenciesList", {}, b"", method="GET"), "REQUEST.INVALID", 405, op="getAgenciesList")
    _fail(*_post(gw, "/vdxp/nosuchOperation", {}, b""), "NOT_FOUND", 404, op=None)
    _fail(
        *_post(gw, "/vdxp/registerAgency", {}, b"{}"), "REQUEST.INVALID", op="registerAgency"
    )  # VDXP has it; we do not serve it
    multipart = dict(r.headers, **{"Content-Type": "multipart/form-data; boundary=x"})
    _fail(*_post(gw, "/vdxp/sendEdoc", multipart, b"--x--"), "REQUEST.INVALID", 415, op="sendEdoc")
    # and the SOAP edge is still where it was
    with urllib.request.urlopen(gw.url + "/soap?wsdl", timeout=10) as resp:
        assert resp.status == 200
    log = gw.log.read_text(errors="replace")
    assert "POST /vdxp/sendEdoc 200" in log and "code=AUTH.DENIED" in log
    assert "edXMLEnvelope" not in log  # never a body in the log


def test_every_operation_refused_answers_with_every_key_the_sdk_reads(sqlite_gateway, sdk):
    """Finding 7: the SDK dereferences DocId (sendEdoc) and data (getEdoc, the lists) whatever the status, so each
    refusal carries them, empty and of the type the SDK reads — for a refused signature and a refused request."""
    gw = sqlite_gateway
    refused = {
        "sendEdoc": (_resigned(sdk, sdk.request("sendEdoc"), messagetype="fax"), "REQUEST.INVALID"),
        "getReceivedEdocList": (
            _resigned(sdk, sdk.request("getReceivedEdocList"), messagetype="fax"),
            "REQUEST.INVALID",
        ),
        "getEdoc": (sdk.request("getEdoc"), "NOT_FOUND"),  # another axis's docId
        "updateStatus": (_resigned(sdk, sdk.request("updateStatus"), status="maybe"), "REQUEST.INVALID"),
        "getSentEdocList": (_resigned(sdk, sdk.request("getSentEdocList"), messagetype="fax"), "REQUEST.INVALID"),
        "getAgenciesList": (dataclasses.replace(sdk.request("getAgenciesList"), body=b"[1]"), "REQUEST.INVALID"),
    }
    assert set(refused) == {op.value for op in vdxp.Operation}
    for op, (r, code) in refused.items():
        _fail(*_replay(gw, r), code, op=op)
        wrong_secret = _resigned(sdk, sdk.request(op), secret="not-the-secret-0123456789")
        _fail(*_replay(gw, wrong_secret), "AUTH.DENIED", op=op)
    # A VDXP operation we do not serve answers in its own shape too (getSynchronizeUnit lists units).
    sync = dict(sdk.request("getAgenciesList").headers)
    _fail(*_post(gw, "/vdxp/getSynchronizeUnit", sync, b"{}"), "REQUEST.INVALID", op="getSynchronizeUnit")
    # and a refusal at the HTTP layer (before the operation runs) as well
    _fail(*_post(gw, "/vdxp/getEdoc", sdk.request("getEdoc").headers, b"{" * 70_000), "SIZE.LIMIT", 413, op="getEdoc")
    assert gw.count("documents") == 0


# ================================================================================================ adapter


def test_adapter_delivers_to_a_second_gateway_and_polls_it_there(tmp_path, database_url, request, pki):
    """Province (gw1) → national (gw2) by hand: the worker's part (issue 4) is played by the test."""
    other_url = (
        f"sqlite:///{tmp_path / 'national.db'}"
        if database_url.startswith("sqlite")
        else request.getfixturevalue("pg_cluster").new_database()
    )
    province_agencies = [
        {"organ_id": H41, "name": "UBND tỉnh Nghệ An"},
        {"organ_id": G22, "name": "VPCP (qua trục quốc gia)", "channel": "vdxp"},
    ]
    national_agencies = [
        {"organ_id": G22, "name": "Văn phòng Chính phủ"},
        {"organ_id": "000.00.01.G22", "name": "Vụ Hành chính, VPCP"},
        {"organ_id": H41, "name": "UBND tỉnh Nghệ An"},
        {"organ_id": H14, "name": "UBND tỉnh Sơn La"},
    ]
    with (
        running_gateway(
            tmp_path / "province", database_url, pki, province_agencies, {SYSTEM_ID: ([H41], SECRET)}
        ) as gw1,
        running_gateway(
            tmp_path / "national",
            other_url,
            pki,
            national_agencies,
            {"nghean-axis": ([H41], None), "vpcp": ([G22], None)},
        ) as gw2,
    ):
        data, _ = _edoc(H41, (G22,), "701")
        doc_id = gw1.client(SYSTEM_ID).send_edoc(data, sender=H41, kind=PackageKind.EDOC)
        [(delivery_id, raw, recipient)] = gw1.query(
            "SELECT d.delivery_id, doc.raw, d.recipient FROM deliveries d JOIN documents doc ON doc.doc_id = d.doc_id "
            "JOIN outbox o ON o.delivery_id = d.delivery_id WHERE d.doc_id = :doc",
            doc=doc_id,
        )
        assert (bytes(raw), recipient) == (data, G22)  # stored for the vdxp channel, in the outbox
        package = OutgoingPackage(
            delivery_id=delivery_id,
            doc_id=doc_id,
            kind=PackageKind.EDOC,
            sender=H41,
            recipient=G22,
            document_id=f"{H41},2026/11/28,701/VP-HCTC",
            payload=Payload.of(raw),
            attempt=1,
        )
        peer = Peer(G22, "vdxp", gw2.vdxp, {"system_id": "nghean-axis", "secret": gw2.secrets["nghean-axis"]})
        adapter = VdxpAdapter()
        try:
            result = adapter.deliver(peer, package)
            assert result.peer_reference and HEX_ID.match(result.peer_reference)
            assert adapter.deliver(peer, package).peer_reference == result.peer_reference  # retry: no duplicate

            wrong = dataclasses.replace(peer, credentials={"system_id": "nghean-axis", "secret": "x" * 24})
            with pytest.raises(DeliveryRefused) as refused:
                adapter.deliver(wrong, package)
            assert not refused.value.retryable and refused.value.detail["error_code"] == "AUTH.DENIED"
            not_hers = dataclasses.replace(package, sender=G22, payload=Payload.of(_edoc(G22, (H41,), "702")[0]))
            with pytest.raises(DeliveryRefused) as refused:
                adapter.deliver(peer, not_hers)  # nghean-axis does not act for G22 at the national gateway
            assert refused.value.detail["error_code"] == "ACCESS.DENIED"
            with pytest.raises(DeliveryUnreachable) as down:
                adapter.deliver(dataclasses.replace(peer, endpoint=f"http://127.0.0.1:{free_port()}/vdxp"), package)
            assert down.value.retryable
            with pytest.raises(DeliveryProtocolError) as wrong_url:
                adapter.deliver(dataclasses.replace(peer, endpoint=gw2.url + "/soap"), package)  # not a VDXP answer
            assert wrong_url.value.retryable
            with pytest.raises(DeliveryError) as unconfigured:
                adapter.deliver(dataclasses.replace(peer, credentials={}), package)
            assert unconfigured.value.retryable  # an operator can still configure it
        finally:
            adapter.close()

        # The worker builds the adapter from the configuration file's [vdxp] table.
        configured = dataclasses.replace(
            gw1.settings,
            extra={"vdxp": {"endpoint": gw2.vdxp, "system_id": "nghean-axis", "secret": gw2.secrets["nghean-axis"]}},
        )
        adapter = VdxpAdapter.from_settings(configured)
        try:
            anonymous = Peer(G22, "vdxp", None, {})
            assert adapter.deliver(anonymous, package).peer_reference == result.peer_reference
        finally:
            adapter.close()

        national = VdxpAdapter(endpoint=gw2.vdxp, system_id="vpcp", secret=gw2.secrets["vpcp"])
        try:
            [incoming] = list(national.poll(PackageKind.EDOC))
            assert incoming.data == data and incoming.kind is PackageKind.EDOC
            national.acknowledge(incoming.peer_reference, ok=True)
            assert list(national.poll(PackageKind.EDOC)) == []
            assert list(national.poll(PackageKind.STATUS)) == []
        finally:
            national.close()

        # The province imports the national list: new agencies come in on the vdxp channel, G22 (already vdxp)
        # is renamed, H41 (hosted by the province) is left alone.
        with (
            VdxpClient(gw2.vdxp, "nghean-axis", gw2.secrets["nghean-axis"]) as client,
            Registry.from_settings(gw1.settings) as registry,
        ):
            report = sync_agencies(client, registry)
            assert (report.created, report.updated, report.kept_local, report.skipped) == (2, 1, 1, ())
            agencies = {a.organ_id: a for a in registry.list_agencies()}
            assert agencies[H41].channel == "mailbox" and agencies[H41].name == "UBND tỉnh Nghệ An"
            assert agencies[G22].channel == "vdxp" and agencies[G22].name == "Văn phòng Chính phủ"
            assert agencies["000.00.01.G22"].channel == "vdxp" and agencies["000.00.01.G22"].parent == G22
            assert agencies[H14].channel == "vdxp"
            assert sync_agencies(client, registry).created == 0  # idempotent


# ================================================================================================ edge options


def _wsgi(app, r: CapturedRequest) -> tuple[int, dict]:
    """Call the edge in-process with the captured request's exact headers and body (PEP 3333 environ)."""
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/vdxp",
        "PATH_INFO": r.path,
        "CONTENT_LENGTH": str(len(r.body)),
        "wsgi.input": io.BytesIO(r.body),
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in r.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_LENGTH",):
            environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value.encode().decode("latin-1")
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return int(seen[0].split()[0]), json.loads(body)


def test_edge_options_are_named_and_off_by_default(tmp_path, pki, sdk):
    settings = Settings(
        data_dir=tmp_path,
        secret_key="test-secret-key-0123456789",
        gateway_key=pki.gateway_key,
        gateway_cert=pki.gateway_cert,
        trust_store=pki.trust,
        crl_files=tuple(pki.crls),
    )
    upgrade(settings)
    with GatewayService.from_settings(settings) as service:
        service.registry.import_records(AGENCIES)
        service.registry.add_system(sdk.system_id, [H41], secret=sdk.secret, **SDK_ON_LOOPBACK)
        vpcp = service.registry.add_system("vpcp", [G22])
        assert service.system_secret(sdk.system_id) == sdk.secret  # kept as given: the SDK clients keep working
        service.submit("vpcp", sdk.document)
        assert service.system_secret("vpcp") == vpcp
        with pytest.raises(RequestError):
            service.registry.add_system("weak", [H41], secret="short")
        assert service.registry.rotate_secret("vpcp", secret="migrated-secret-0123") == "migrated-secret-0123"
        assert service.system_secret("vpcp") == "migrated-secret-0123"
        service.registry.set_system_active("vpcp", False)
        for unusable in ("vpcp", "nobody"):
            with pytest.raises(AuthError, match="authentication failed"):
                service.system_secret(unusable)

        # strict: the captured status package declared as messagetype=edoc is refused, and nothing is stored
        strict = VdxpEdge(service, settings, strict_messagetype=True)
        _fail(*_wsgi(strict, sdk.request("sendEdoc")), "EDXML.STRUCTURE", op="sendEdoc")
        # the default edge takes both (the captured status as the package it is); the timestamp is the
        # system's business (legacy-sdk here: tests/test_vdxp_replay.py covers both modes)
        lenient = VdxpEdge(service, settings)
        _ok(*_wsgi(lenient, sdk.request("sendEdoc")))
        _ok(*_wsgi(lenient, sdk.request("getAgenciesList")))
