"""The legacy e-doc.vn SOAP edge (issue 13 item 1) under a real gunicorn, on SQLite and PostgreSQL: the spec's own
examples (tests/edocvn_vectors.py, legacy-edoc-vn.md §6) sent as a legacy client sends them, every §2.3/§9 quirk
the issue lists, a full round trip between two legacy systems, the refusals (each storing nothing), the WSDL and the
size limit with a 20 MB SwA SendDocument.

The cast: A = 000.00.12.H53 (Sở Xây dựng) and B = 000.00.13.H53 (Sở TT&TT), each a mailbox agency with its own
legacy system logging in with the spec's example token (§3 "made up" tokens, used as given); B's registry entry has
"emit 01 on acknowledge" on, so ConfirmReceived gives A an 01 as Bkav's axis does (§6.6). Signature policy ``off``:
legacy documents are unsigned.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from edocvn_vectors import VECTORS, envelope
from gatewayproc import gateway_env, served
from lxml import etree

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.protocols import edocvn
from gateway.protocols.edocvn import MultipartBody, Operation, OutPart
from gateway.services.registry import Registry

A, B = "000.00.12.H53", "000.00.13.H53"
TOKEN_A = "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="  # §6.3 / §6.8 examples (the sender's)
TOKEN_B = "RXhhbXBsZVRva2VuRm9yUmVjdjE="  # §6.1, §6.4–§6.7 examples (the recipient's)
PROXY = "/services/EdocProxy"
MAX_PACKAGE = 30 * 1024 * 1024
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = "urn:edoc-gateway:edoc-vn-legacy:1"
TABLES = ("documents", "deliveries", "legacy_ids", "status_history")


@dataclass
class Gateway:
    url: str
    settings: Settings
    session: requests.Session

    def post(self, body: bytes | MultipartBody, action: str | None, path: str = "/legacy/edoc", **headers: str):
        if isinstance(body, MultipartBody):
            headers.setdefault("Content-Type", body.content_type)
            data: bytes = body.to_bytes()
        else:
            headers.setdefault("Content-Type", "text/xml; charset=utf-8")
            data = body
        if action is not None:
            headers["SOAPAction"] = action
        return self.session.post(self.url + path, data=data, headers=headers, timeout=120)

    def counts(self) -> dict[str, int]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[Gateway]:
    data_dir = tmp_path_factory.mktemp(f"legacy-{request.param}")
    url = (
        f"sqlite:///{data_dir / 'gateway.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_cluster").new_database()
    )
    env = gateway_env(data_dir, url, pki, max_package_bytes=MAX_PACKAGE, LEGACY_PATHS=PROXY, RATE_PER_SYSTEM="0")
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(
            [
                {"organ_id": A, "name": "Sở Xây dựng", "signature_policy": "off"},
                {"organ_id": B, "name": "Sở Thông tin và Truyền thông", "signature_policy": "off",
                 "emit_arrived_on_ack": True},
            ]  # fmt: skip
        )
        registry.add_system("qlvb-a", [], legacy_organ=A, secret=TOKEN_A)
        registry.add_system("qlvb-b", [], legacy_organ=B, secret=TOKEN_B)
    with served(settings, env, data_dir / "gunicorn.log"), requests.Session() as session:
        yield Gateway(f"http://{settings.bind}", settings, session)


# ================================================================================================ helpers


def vector(key: str) -> bytes:
    return envelope(VECTORS[key].text)


def send_envelope(number: int, *, href: str = 'href="cid:att-1@qlvb.example"', token: str = TOKEN_A) -> bytes:
    """The §6.3 example for document ``number`` (CodeNumber, DocumentId, names), with ``href`` as given."""
    text = VECTORS["§6.3 SendDocument request"].text.replace("125", str(number))
    text = text.replace('href="cid:att-1@qlvb.example"', href).replace(TOKEN_A, token)
    return text.encode("utf-8")


def swa(env: bytes, *parts: OutPart, root_id: str = "env.sd@qlvb.example") -> MultipartBody:
    return MultipartBody(env, parts, root_id=root_id)


def pdf(size: int = 3000) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size) + b"\n%%EOF\n"


def answer(resp: requests.Response, operation: Operation) -> edocvn.Answer:
    """The answer as a client reads it (root part of a multipart answer, or the plain body)."""
    assert resp.status_code in (200, 413, 503), resp.text[:500]
    ctype = resp.headers["Content-Type"]
    if edocvn.is_multipart(ctype):
        with edocvn.read_related(io.BytesIO(resp.content), ctype) as related:
            return edocvn.read_answer(related.root.read(), operation)
    return edocvn.read_answer(resp.content, operation)


def codes(ans: edocvn.Answer) -> list[str]:
    assert ans.report is not None
    return [e.code for e in ans.report.errors]


def request(operation: Operation, organ: str, token: str, **kw) -> bytes:
    return edocvn.simple_request(operation, organ, token, **kw)


def send(gw: Gateway, number: int, data: bytes, action: str = "SendDocument", **kw) -> int:
    ans = answer(gw.post(swa(send_envelope(number, **kw), OutPart("att-1@qlvb.example", "application/pdf", data)),
                         action), Operation.SEND_DOCUMENT)  # fmt: skip
    assert ans.ok, ans.report
    assert ans.document_id is not None and ans.document_id.isdigit()
    return int(ans.document_id)


def get_document(gw: Gateway, number: int, organ: str = B, token: str = TOKEN_B):
    """(answer, {content-id: payload}) of GetDocument."""
    resp = gw.post(request(Operation.GET_DOCUMENT, organ, token, document_id=str(number)), "GetDocument")
    assert edocvn.is_multipart(resp.headers["Content-Type"])
    with edocvn.read_related(io.BytesIO(resp.content), resp.headers["Content-Type"]) as related:
        ans = edocvn.read_answer(related.root.read(), Operation.GET_DOCUMENT)
        return ans, {cid: p.read() for cid, p in related.attachments.items()}


def pending(gw: Gateway, organ: str = B, token: str = TOKEN_B) -> list[int]:
    resp = gw.post(request(Operation.GET_PENDING_DOCUMENT_IDS, organ, token), "GetPendingDocumentIds")
    ans = answer(resp, Operation.GET_PENDING_DOCUMENT_IDS)
    assert ans.report is None, ans.report
    return [int(i) for i in ans.document_ids]


def traces(gw: Gateway, since: str | None = None, organ: str = A, token: str = TOKEN_A) -> list[tuple[str, str]]:
    body = request(Operation.GET_TRACES, organ, token)
    if since:
        body = body.replace(b"</GetTraces>", f"<TimeStamp>{since}</TimeStamp></GetTraces>".encode())
    ans = answer(gw.post(body, "GetTraces"), Operation.GET_TRACES)
    assert ans.report is None, ans.report
    out = []
    for st in ans.statuses:
        pkg = edocvn.read_status(st)
        out.append((pkg.status_code.value, pkg.response_for.document_id))
    return out


# ================================================================================================ the WSDL


def test_the_wsdl_is_served_with_the_address_asked(gw: Gateway):
    for path in ("/legacy/edoc", PROXY):
        resp = gw.session.get(f"{gw.url}{path}?wsdl", timeout=30)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/xml")
        root = etree.fromstring(resp.content)
        address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address is not None and address.get("location") == gw.url + path
    assert gw.session.get(f"{gw.url}/legacy/edoc", timeout=30).status_code == 405


# ================================================================================================ round trip


def test_a_document_and_its_statuses_between_two_legacy_systems(gw: Gateway):
    """§6.3 → §6.4 → §6.5 → §6.6 → §6.7 → §6.8: A sends through the proxy path, B lists, gets (byte-identical),
    confirms (twice), reports 03; A's GetTraces consumes the 01 and the 03 once, replay gives them again."""
    data = pdf(50_000)
    resp = gw.post(swa(send_envelope(125), OutPart("att-1@qlvb.example", "application/pdf", data)), '"SendDocument"',
                   path=PROXY)  # fmt: skip
    ans = answer(resp, Operation.SEND_DOCUMENT)
    assert ans.ok and ans.document_id and ans.document_id.isdigit(), ans.report
    number = int(ans.document_id)
    assert edocvn.is_multipart(resp.headers["Content-Type"])  # a multipart request gets a multipart answer (§2.4)
    assert number in pending(gw)
    assert number not in pending(gw, A, TOKEN_A)  # A's own mailbox is not B's
    assert pending(gw) == pending(gw)  # listing allocates once, changes nothing

    got, parts = get_document(gw, number)
    assert got.report is None
    assert list(parts.values()) == [data]  # byte-identical
    header = etree.tostring(got.header).decode()
    assert "000.00.12.H53,2024/05/06,125/SXD-VP" in header and TOKEN_A not in header  # never the sender's token
    assert number in pending(gw)  # GetDocument does not take it (§6.5 quirks)

    # A is not a recipient: the same answer as an id that does not exist (no existence oracle).
    for organ, token, n in ((A, TOKEN_A, number), (B, TOKEN_B, 987_654_321), (B, TOKEN_B, "12x")):
        resp = gw.post(request(Operation.GET_DOCUMENT, organ, token, document_id=str(n)), "GetDocument")
        refused = answer(resp, Operation.GET_DOCUMENT)
        assert codes(refused) == ["M.GetDocumentCheckAllow", "NOT_FOUND"]

    for _ in range(2):  # a repeated confirmation succeeds and changes nothing
        resp = gw.post(request(Operation.CONFIRM_RECEIVED, B, TOKEN_B, document_id=str(number)), "ConfirmReceived")
        assert answer(resp, Operation.CONFIRM_RECEIVED).ok
    assert number not in pending(gw)

    status = vector("§6.7 UpdateTraces request")  # B reports 03 about A's 125/SXD-VP
    assert answer(gw.post(status, "UpdateTraces"), Operation.UPDATE_TRACES).ok
    doc = "000.00.12.H53,2024/05/06,125/SXD-VP"
    consumed = traces(gw)
    # Newest Timestamp first (§6.8): the gateway's 01 is stamped at the confirmation (now), B's 03 in 2024.
    assert consumed == [("01", doc), ("03", doc)]
    assert traces(gw) == []  # each status once
    assert ("03", doc) in traces(gw, since="2024/05/01 00:00:00")  # replay: again, nothing changed
    assert ("03", doc) not in traces(gw, since="2024/05/07 00:00:00")
    assert traces(gw) == []
    assert traces(gw, organ=B, token=TOKEN_B) == []  # B sent no document: nothing for it
