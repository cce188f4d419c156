"""The console's Documents pages (issue 12 item 1): search and filters, paging, the CSV export, the document page
with its signature check and per-recipient timeline, and the audited raw download — against a real gunicorn
gateway over the seeded history (tests/consolerig.py), on SQLite and PostgreSQL.

Expectations come from the tracking service itself (:class:`gateway.services.timeline.Timelines`, the admin API's
``GET /documents``), called here in the test process over the same database — never from the page under test.
A real signed package is also sent through SOAP (the test PKI signs it as the department ``DEPT``), so the
signature section and the byte-exact download are checked on a package the history's placeholders cannot give.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from consolerig import DEPT, PASSWORD, ROOT, ConsoleGateway, console_gateway, text_of

from gateway.client import GatewayClient
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.services.console_documents import ConsoleDocuments
from gateway.services.registry import Registry
from gateway.services.timeline import Timelines
from gateway.services.tracking_api import DocumentQuery
from gateway.tracking.calendar import local_date
from gateway.tracking.settings import rules_from
from gateway.xmlcheck.signing import SigningKey, sign_package

_LINK = re.compile(r'href="/console/documents/([0-9a-f]{32})\?back=')
_NEXT = re.compile(r'<a href="([^"]*)" rel="next">')


@dataclasses.dataclass
class Signed:
    doc_id: str
    body: bytes


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    tmp = tmp_path_factory.mktemp("console-docs")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
    with console_gateway(tmp, url, pki) as gw:
        done = gw.cli("operators", "add", "olga", "--role", "operator", "--scope", DEPT, "--password-stdin",
                      stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield gw


@pytest.fixture(scope="module")
def signed(gw: ConsoleGateway, pki: Any) -> Signed:
    """A package signed by DEPT's certificate, sent to ROOT over SOAP by a system acting for DEPT."""
    registry = Registry.from_settings(gw.settings)
    try:
        secret = registry.add_system("SYS-DEPT", [DEPT])
    finally:
        registry.close()
    base = demo_package()
    h = base.message_header
    h = dataclasses.replace(
        h,
        from_=Organization(organ_id=DEPT, organ_name="Văn phòng UBND tỉnh"),
        to=(Organization(organ_id=ROOT, organ_name="UBND tỉnh"),),
        document_id=f"{DEPT},2026/12/01,4321/VP-KT",
        code=dataclasses.replace(h.code, code_number="4321"),
    )
    cred = pki.agencies[DEPT]
    body = sign_package(
        render(dataclasses.replace(base, message_header=h)), SigningKey.from_files(cred.key, cred.cert, pki.chain)
    )
    client = GatewayClient(f"{gw.base}/soap", "SYS-DEPT", secret)
    try:
        return Signed(client.send_edoc(body).docId, body)
    finally:
        client.close()


def _service(gw: ConsoleGateway, query: DocumentQuery, scope: str | None = None) -> list[str]:
    """Every doc_id the tracking service lists for ``query``, newest first, walking its cursor."""
    store = gw.store()
    try:
        timelines = Timelines(store, rules_from(gw.settings))
        found: list[str] = []
        q = dataclasses.replace(query, limit=500)
        while True:
            page = timelines.list_documents(q, scope=scope)
            found += [i.doc.doc_id for i in page.items]
            if page.next_cursor is None:
                return found
            q = dataclasses.replace(q, cursor=page.next_cursor)
    finally:
        store.engine.dispose()


def _walk(c: Any, params: list[tuple[str, str]]) -> list[str]:
    """Every doc_id the console lists for ``params``, following its "next page" links."""
    found: list[str] = []
    path = "/console/documents?" + urlencode(params)
    for _ in range(200):
        r = c.get(path)
        assert r.status_code == 200, text_of(r.text)[:500]
        found += _LINK.findall(r.text)
        more = _NEXT.search(r.text)
        if more is None:
            return found
        path = "/console/documents" + more.group(1).replace("&amp;", "&")
    raise AssertionError("the pages never end")


def _audit(gw: ConsoleGateway, action: str) -> list[Any]:
    store = gw.store()
    try:
        return store.audit.entries(action=action, limit=1000)
    finally:
        store.engine.dispose()


def _period(gw: ConsoleGateway, days_back: int, days_long: int) -> tuple[str, str]:
    assert gw.plan.spec.now is not None
    first = local_date(gw.plan.spec.now) - timedelta(days=days_back)
    last = first + timedelta(days=days_long)
    return first.isoformat(), last.isoformat()


def _query(gw: ConsoleGateway, params: list[tuple[str, str]]) -> DocumentQuery:
    """The DocumentQuery the admin API builds for the same parameters (the shared reading, under Flask)."""
    from flask import Flask, request

    from gateway.web.document_filters import document_query

    with Flask(__name__).test_request_context("/?" + urlencode(params)):
        return document_query(request.args)


FILTERS = [
    [],
    [("flag", "late_receipt")],
    [("flag", "not_taken:open")],
    [("flag", "late_receipt"), ("flag", "overdue")],
    [("state", "dead")],
    [("kind", "edoc"), ("state", "queued")],
    [("sender", DEPT)],
    [("recipient", ROOT), ("state", "delivered")],
    [("text", "23/ubnd")],  # ASCII: decided in SQL, case-insensitive
    [("text", "VĂN BẢN 23")],  # accented: folded and matched by the service, document by document
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p) or "all")
def test_the_list_selects_exactly_what_the_service_selects_and_pages_through_it_once(gw, params):
    c = gw.client("vera")
    listed = _walk(c, [*params, ("limit", "25")])
    expected = _service(gw, _query(gw, params))
    assert expected, "the seeded history should give every filter of this test something to find"
    assert listed == expected
    assert len(listed) == len(set(listed))
    if not params:
        store = gw.store()
        try:
            assert len(listed) == store.counts()["documents"] > 25
        finally:
            store.engine.dispose()


def test_a_period_is_vietnam_calendar_days(gw):
    first, last = _period(gw, 10, 3)
    params = [("from", first), ("to", last)]
    listed = _walk(gw.client("vera"), params)
    expected = _service(gw, _query(gw, params))
    assert listed == expected and 0 < len(listed) < len(gw.plan.documents)
    store = gw.store()
    try:
        for doc_id in listed:
            doc = store.documents.document(doc_id)
            assert doc is not None and first <= local_date(doc.received_at).isoformat() <= last
    finally:
        store.engine.dispose()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("from", "2026-13-01")], "from must be a date"),
        ([("from", "2026-03-02"), ("to", "2026-03-01")], "before it starts"),
        ([("flag", "late")], "unknown flag"),
        ([("flag", "late_receipt:closed")], "unknown flag variant"),
        ([("state", "lost")], "state must be one of"),
        ([("limit", "0")], "limit must be between"),
        ([("cursor", "not-a-cursor")], "cursor"),
    ],
)
def test_a_bad_filter_shows_the_form_again_with_the_reason(gw, params, message):
    c = gw.client("vera")
    r = c.get("/console/documents?" + urlencode(params))
    assert r.status_code == 400
    assert message in text_of(r.text)
    assert 'role="alert"' in r.text and 'name="from"' in r.text
    exported = c.get("/console/documents.csv?" + urlencode(params))
    assert exported.status_code == (200 if params[0][0] == "cursor" else 400)  # an export always starts at the top


def test_the_csv_export_holds_the_rows_of_the_filter_and_is_audited(gw):
    params = [("flag", "late_receipt")]
    c = gw.client("vera")
    before = len(_audit(gw, "console.documents.export"))
    r = c.get("/console/documents.csv?" + urlencode(params))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="van-ban-')
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read Vietnamese
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Mã trên cổng", "Thời điểm tiếp nhận (giờ Việt Nam)", "Loại gói tin"]
    expected = _service(gw, _query(gw, params))
    assert [row[0] for row in rows[1:]] == expected and expected
    assert all("Chậm báo đã nhận" in row[13] for row in rows[1:])
    audit = _audit(gw, "console.documents.export")
    assert len(audit) == before + 1
    assert audit[0].system_id == "operator:vera" and audit[0].detail["rows"] == len(expected)
    assert audit[0].detail["filters"] == {"flag": ["late_receipt"]}


def test_the_export_is_bounded_and_refuses_rather_than_cuts(gw):
    store = gw.store()
    try:
        docs = ConsoleDocuments(Timelines(store, rules_from(gw.settings)))
        everything = docs.export(DocumentQuery())
        assert everything.complete and len(everything.items) == everything.total == store.counts()["documents"]
        assert not docs.export(DocumentQuery(), max_rows=len(everything.items) - 1).complete
        flagged = docs.export(DocumentQuery(flags=("late_receipt",)))
        assert flagged.complete and flagged.total is None and flagged.read == len(everything.items)
        assert docs.export(DocumentQuery(flags=("late_receipt",)), page_size=5).items == flagged.items
        assert not docs.export(DocumentQuery(flags=("late_receipt",)), max_read=10, page_size=5).complete
    finally:
        store.engine.dispose()


def test_a_late_document_is_found_by_its_flag_and_its_timeline_shows_the_rule(gw):
    c = gw.client("vera")
    listed = _walk(c, [("flag", "late_receipt")])
    assert listed
    page = c.get(f"/console/documents/{listed[0]}")
    assert page.status_code == 200
    text = text_of(page.text)
    late_row = re.compile(r'<th scope="row">Chậm báo đã nhận</th>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*'
                          r'<td><span class="tag bad">muộn')  # fmt: skip
    store = gw.store()
    try:
        story = Timelines(store, rules_from(gw.settings)).document_story(listed[0]).to_dict()
    finally:
        store.engine.dispose()
    # a rule is judged only once it applies (late receipt: once the recipient had the document), so a recipient
    # whose delivery is not available yet has no late_receipt entry at all
    late = [r for r in story["recipients"] if r["facts"]["rules"].get("late_receipt", {}).get("breached")]
    assert late and len(late_row.findall(page.text)) == len(late)
    for r in late:
        assert r["recipient"] in text
    assert story["document"]["document_id"] in text
    for r in story["recipients"]:
        for e in r["events"]:
            if e["kind"] == "status" and e.get("description"):
                assert e["description"] in text


def test_the_raw_package_is_byte_exact_audited_and_for_operators_only(gw, signed):
    oscar, vera = gw.client("oscar"), gw.client("vera")
    page = oscar.get(f"/console/documents/{signed.doc_id}")
    assert f"/console/documents/{signed.doc_id}/raw" in page.text
    assert f"/console/documents/{signed.doc_id}/raw" not in vera.get(f"/console/documents/{signed.doc_id}").text
    r = oscar.get(f"/console/documents/{signed.doc_id}/raw")
    assert r.status_code == 200 and r.content == signed.body
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.headers["Content-Disposition"] == f'attachment; filename="{signed.doc_id}.edxml"'
    assert r.headers["Cache-Control"] == "no-store"
    audit = _audit(gw, "console.documents.raw")
    assert audit[0].system_id == "operator:oscar" and audit[0].outcome == "ok"
    assert audit[0].detail["doc_id"] == signed.doc_id and audit[0].detail["size"] == len(signed.body)
    assert audit[0].doc_id == signed.doc_id  # the indexed column too: the audit log is searchable by document
    assert signed.body.decode("utf-8")[:40] not in str(audit[0].detail)
    assert vera.get(f"/console/documents/{signed.doc_id}/raw").status_code == 403
    history = gw.plan.documents[0].doc_id
    store = gw.store()
    try:
        stored = store.documents.raw(history)
    finally:
        store.engine.dispose()
    assert gw.client("ada").get(f"/console/documents/{history}/raw").content == stored


def test_the_signature_check_of_a_signed_package(gw, signed, pki):
    text = text_of(gw.client("vera").get(f"/console/documents/{signed.doc_id}").text)
    store = gw.store()
    try:
        doc = store.documents.document(signed.doc_id)
        [cert] = [c for c in store.certificates.list([DEPT]) if c.fingerprint == doc.signer_fingerprint]
    finally:
        store.engine.dispose()
    assert doc.signature_state == "valid"
    assert "Chữ ký số hợp lệ" in text
    assert doc.signer_subject in text and doc.signer_fingerprint in text
    assert cert.issuer in text and cert.serial in text
    from gateway.web.console.i18n import when_exact

    assert f"{when_exact(cert.not_before)} – {when_exact(cert.not_after)}" in text
    assert "4321/VP-KT" in text or "4321" in text
    assert doc.sha256 in text


def test_a_scoped_operator_never_sees_another_subtree(gw, signed):
    store = gw.store()
    try:
        visible = Timelines(store, rules_from(gw.settings)).tracking.visible(DEPT)
        outside = [
            d.doc_id
            for d in gw.plan.documents
            if d.sender not in visible and not any(x.recipient in visible for x in d.deliveries)
        ]
    finally:
        store.engine.dispose()
    assert outside
    sam, olga = gw.client("sam"), gw.client("olga")
    listed = _walk(sam, [("limit", "200")])
    assert listed == _service(gw, DocumentQuery(), scope=DEPT)
    assert signed.doc_id in listed and not set(outside) & set(listed)
    rows = list(csv.reader(io.StringIO(sam.get("/console/documents.csv").content.decode("utf-8-sig"))))
    assert {row[0] for row in rows[1:]} == set(listed)
    for doc_id in outside[:3]:
        assert sam.get(f"/console/documents/{doc_id}").status_code == 404
        assert olga.get(f"/console/documents/{doc_id}/raw").status_code == 404
        assert gw.client("vera").get(f"/console/documents/{doc_id}").status_code == 200
    refused = [a for a in _audit(gw, "console.documents.raw") if a.outcome == "NOT_FOUND"]
    assert refused and refused[0].system_id == "operator:olga" and refused[0].detail["doc_id"] in outside
    assert olga.get(f"/console/documents/{signed.doc_id}/raw").content == signed.body
    assert sam.get("/console/documents/" + "0" * 32).status_code == 404


def test_the_list_and_page_read_in_english_too(gw, signed):
    c = gw.client("vera")
    c.get("/console/documents?lang=en")
    text = text_of(c.get("/console/documents?flag=late_receipt").text)
    assert "Late receipt" in text and "documents read for this page" in text
    text = text_of(c.get(f"/console/documents/{signed.doc_id}").text)
    assert "Valid signature" in text and "Timeline per recipient" in text
