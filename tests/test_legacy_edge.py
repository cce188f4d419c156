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

import base64
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

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

A, B, C = "000.00.12.H53", "000.00.13.H53", "000.00.14.H53"
TOKEN_A = "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="  # §6.3 / §6.8 examples (the sender's)
TOKEN_B = "RXhhbXBsZVRva2VuRm9yUmVjdjE="  # §6.1, §6.4–§6.7 examples (the recipient's)
TOKEN_C = "Q1Rva2VuRm9yQmFzZTY0VGV4dDE="  # made up in the same shape
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
    env = gateway_env(
        data_dir, url, pki, max_package_bytes=MAX_PACKAGE, LEGACY_PATHS=PROXY, RATE_PER_SYSTEM="0", LEGACY_BASE64_TEXT=C
    )
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(
            [
                {"organ_id": A, "name": "Sở Xây dựng", "signature_policy": "off"},
                {
                    "organ_id": B,
                    "name": "Sở Thông tin và Truyền thông",
                    "signature_policy": "off",
                    "emit_arrived_on_ack": True,
                },
                {"organ_id": C, "name": "Sở Tư pháp", "signature_policy": "off"},
            ]
        )
        registry.add_system("qlvb-a", [], legacy_organ=A, secret=TOKEN_A)
        registry.add_system("qlvb-b", [], legacy_organ=B, secret=TOKEN_B)
        registry.add_system("qlvb-c", [], legacy_organ=C, secret=TOKEN_C)
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


# ================================================================================================ §2.3 / §9 quirks


def test_the_spec_requests_in_every_spelling_a_client_uses(gw: Gateway):
    """§6.1/§6.2/§6.4 examples: SOAPAction unquoted, quoted and absent (dispatch on the wrapper); the envelope
    under any prefix; the wrappers unqualified (Bkav), in the e-doc.vn namespace or the WSDL's (JAX-WS)."""
    check = vector("§6.1 CheckPermission request")
    for action in ("CheckPermission", '"CheckPermission"', None):
        assert answer(gw.post(check, action), Operation.CHECK_PERMISSION).ok
    # §6.1's own MIME framing (one-part multipart/related with start=) through the proxy path.
    framed = swa(check, root_id="root-cp")
    assert answer(gw.post(framed, "CheckPermission", path=PROXY), Operation.CHECK_PERMISSION).ok
    orgs = answer(gw.post(vector("§6.2 GetOrganizations request"), None), Operation.GET_ORGANIZATIONS)
    assert {(o.organ_id, o.organ_name) for o in orgs.organizations} >= {(A, "Sở Xây dựng")}
    plain = vector("§6.4 GetPendingDocumentIds request").decode()
    spellings = [
        plain.replace("SOAP-ENV", "s"),
        plain.replace("<GetPendingDocumentIdsRequest>", f'<GetPendingDocumentIdsRequest xmlns="{edocvn.EDOC}">'),
        plain.replace(
            "<GetPendingDocumentIdsRequest>", f'<w:GetPendingDocumentIdsRequest xmlns:w="{WSDL_NS}">'
        ).replace("</GetPendingDocumentIdsRequest>", "</w:GetPendingDocumentIdsRequest>"),
        plain.replace("<OrganId>", f'<e:OrganId xmlns:e="{edocvn.EDOC}">').replace("</OrganId>", "</e:OrganId>"),
        plain.replace(
            "<SOAP-ENV:Body>",
            '<SOAP-ENV:Header><x:Trace xmlns:x="urn:x" SOAP-ENV:mustUnderstand="1"/></SOAP-ENV:Header><SOAP-ENV:Body>',
        ),
    ]
    for text in spellings:
        for action in ("GetPendingDocumentIds", None):
            ans = answer(gw.post(text.encode(), action), Operation.GET_PENDING_DOCUMENT_IDS)
            assert ans.report is None and not ans.empty, text


def test_attachments_in_every_framing_and_href_spelling(gw: Gateway):
    """§7.1/§7.4/§2.4: unprefixed and ``xlink:href``; raw, CTE-base64 and Base64 text labelled binary (stored as
    received, as the axis stores it); MTOM framing; an empty Manifest and none at all."""
    xlink = 'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:att-1@qlvb.example"'
    data = pdf(20_000)
    b64 = base64.b64encode(data)
    cases = [
        (send_envelope(201), OutPart("att-1@qlvb.example", "application/pdf", data), data),
        (send_envelope(202, href=xlink), OutPart("att-1@qlvb.example", "application/pdf", data), data),
        (send_envelope(203), OutPart("att-1@qlvb.example", "application/pdf", b64, "base64"), data),
        (send_envelope(204), OutPart("att-1@qlvb.example", "application/pdf", data, base64_text=True), b64),
    ]
    for env, part, stored in cases:
        body = swa(env, part)
        if b"204" in env:  # MTOM framing of the same request (§2.4: parts in the same map)
            body.root = OutPart(body.root.content_id, 'application/xop+xml; type="text/xml"', env)
        headers = {"Content-Type": body.content_type.replace('type="text/xml"', 'type="application/xop+xml"')} \
            if b"204" in env else {}  # fmt: skip
        ans = answer(gw.post(body, "SendDocument", **headers), Operation.SEND_DOCUMENT)
        assert ans.ok, ans.report
        _got, parts = get_document(gw, int(ans.document_id or 0))
        assert list(parts.values()) == [stored]
    for number, manifest in ((205, "<edXML:Manifest/>"), (206, "")):
        env = send_envelope(number).decode()
        start, end = env.index("<edXML:Manifest>"), env.index("</edXML:Manifest>") + len("</edXML:Manifest>")
        ans = answer(gw.post(swa((env[:start] + manifest + env[end:]).encode()), None), Operation.SEND_DOCUMENT)
        assert ans.ok, ans.report
        got, parts = get_document(gw, int(ans.document_id or 0))
        assert parts == {} and got.manifest is not None and len(got.manifest) == 0  # always a Manifest (§7.4)


def test_getdocument_parts_as_bkav_base64_text_for_the_systems_named(gw: Gateway):
    """§7.3: ``legacy_base64_text`` switches the GetDocument parts to Base64 text labelled binary; prefixed
    ``DocumentId`` (§2.3 D, liberal) and a plain text/xml request both work."""
    data = pdf(5000)
    number = send(gw, 301, data)
    body = request(Operation.GET_DOCUMENT, B, TOKEN_B, document_id=str(number)).decode()
    body = body.replace("<DocumentId>", f'<e:DocumentId xmlns:e="{edocvn.EDOC}">').replace(
        "</DocumentId>", "</e:DocumentId>"
    )
    resp = gw.post(body.encode(), "GetDocument")
    with edocvn.read_related(io.BytesIO(resp.content), resp.headers["Content-Type"]) as related:
        (part,) = related.attachments.values()
        assert part.read() == data and part.transfer_encoding == "binary"
    # C's system is named in legacy_base64_text: the same document sent to C comes out as Bkav's Base64 text.
    env = send_envelope(302).replace(
        f"<edXML:OrganId>{B}</edXML:OrganId>".encode(), f"<edXML:OrganId>{C}</edXML:OrganId>".encode()
    )
    ans = answer(
        gw.post(swa(env, OutPart("att-1@qlvb.example", "application/pdf", data)), "SendDocument"),
        Operation.SEND_DOCUMENT,
    )
    assert ans.ok, ans.report
    got, parts = get_document(gw, int(ans.document_id or 0), C, TOKEN_C)
    assert list(parts.values()) == [base64.b64encode(data)]
    assert edocvn.edoc_from_answer(got.header, got.manifest, {}).sender == A


# ================================================================================================ refusals


def test_every_refusal_is_a_report_and_stores_nothing(gw: Gateway):
    """SOAP 1.2, a wrong token, a token used for an agency it does not cover, an unreferenced part, an unknown
    SOAPAction: each a Report (Bkav's code first where it has one, then ours), HTTP 200, and no row written."""
    data = pdf(2000)
    part = OutPart("att-1@qlvb.example", "application/pdf", data)
    soap12 = send_envelope(401).replace(edocvn.SOAP11.encode(), SOAP12.encode())
    forged = re.sub(  # B logs in (KeyInfo), From is A: B's scope is strict
        rb"<edXML:KeyInfo>\s*<edXML:OrganId>[^<]*", f"<edXML:KeyInfo><edXML:OrganId>{B}".encode(),
        send_envelope(402, token=TOKEN_B),
    )  # fmt: skip
    cases = [
        (swa(soap12, part), "SendDocument", ["REQUEST.INVALID"]),
        (swa(send_envelope(403, token="V3JvbmdUb2tlbldyb25nVG9rZW4x"), part), "SendDocument",
         ["Permission", "AUTH.DENIED"]),
        (swa(forged, part), "SendDocument", ["Permission", "ACCESS.DENIED"]),
        (swa(send_envelope(404), part, OutPart("stray@x", "application/pdf", data)), "SendDocument",
         ["R.AttachmentName"]),
        (request(Operation.GET_TRACES, A, TOKEN_B), "GetTraces", ["AUTH.DENIED"]),
        (vector("§6.1 CheckPermission request").replace(TOKEN_B.encode(), b"x" * 28), "CheckPermission",
         ["AUTH.DENIED"]),
        (vector("§6.7 UpdateTraces request").replace(b"<OrganId>000.00.13.H53</OrganId>\n        <OrganName>",
         f"<OrganId>{A}</OrganId>\n        <OrganName>".encode()), "UpdateTraces", ["Permission", "ACCESS.DENIED"]),
    ]  # fmt: skip
    before = gw.counts()
    for body, action, expected in cases:
        resp = gw.post(body, action)
        assert resp.status_code == 200
        ans = answer(resp, Operation(action))
        assert ans.report is not None and not ans.report.is_success
        assert codes(ans) == expected, (action, ans.report)
    resp = gw.post(soap12, None, **{"Content-Type": "application/soap+xml; charset=utf-8"})
    report = answer(resp, Operation.SEND_DOCUMENT).report if resp.status_code == 200 else None
    assert resp.status_code == 200 and report is not None and "SOAP 1.2" in report.errors[0].description
    resp = gw.post(vector("§6.1 CheckPermission request"), "checkpermission")  # exact, case-sensitive (§2.1)
    assert b"REQUEST.INVALID" in resp.content and b"unknown SOAPAction" in resp.content
    assert gw.counts() == before


def test_a_20_mb_swa_document_is_accepted_and_one_over_the_limit_refused_unread(gw: Gateway):
    """The size limit (``max_package_bytes``) is checked on Content-Length before a byte is read: 413 with a
    Report, nothing stored; 20 MB of attachments stream through and come back byte-identical."""
    big = os.urandom(20 * 1024 * 1024)
    number = send(gw, 501, big)
    _got, parts = get_document(gw, number)
    assert list(parts.values()) == [big]
    before = gw.counts()
    over = swa(send_envelope(502), OutPart("att-1@qlvb.example", "application/pdf", os.urandom(MAX_PACKAGE)))
    resp = gw.post(over, "SendDocument")
    assert resp.status_code == 413
    assert codes(answer(resp, Operation.SEND_DOCUMENT)) == ["SIZE.LIMIT"]
    assert gw.counts() == before


def test_two_workers_allocating_at_once_give_a_document_one_number(gw: Gateway):
    """legacy_ids: concurrent allocation for the same documents (two web workers listing one mailbox) ends with one
    number per document, the same one for every caller — ON CONFLICT DO NOTHING + read back (gateway.db.legacy)."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.db import Store, create_engine

    numbers = [send(gw, 600 + n, pdf(100)) for n in range(3)]
    engine = sa.create_engine(gw.settings.effective_database_url)
    with engine.begin() as conn:  # forget them: the next listing must allocate again
        doc_ids = [r[0] for r in conn.execute(sa.text(f"SELECT doc_id FROM legacy_ids WHERE id IN {tuple(numbers)}"))]
        conn.execute(sa.text(f"DELETE FROM legacy_ids WHERE id IN {tuple(numbers)}"))
    engine.dispose()
    store = Store(create_engine(gw.settings))
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: store.legacy.numbers_for(doc_ids), range(16)))
    finally:
        store.engine.dispose()
    assert all(r == results[0] for r in results) and sorted(results[0]) == sorted(doc_ids)
    assert not set(results[0].values()) & set(numbers)  # new numbers, never reused
    listed = pending(gw)
    assert all(n in listed for n in results[0].values())
    assert gw.counts()["legacy_ids"] == len(set(gw_ids(gw)))


def gw_ids(gw: Gateway) -> list[str]:
    engine = sa.create_engine(gw.settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT doc_id FROM legacy_ids"))]
    finally:
        engine.dispose()
