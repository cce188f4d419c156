"""GatewayService end to end on a real database (SQLite and PostgreSQL, ``database_url``), real signatures.

The cast: A (000.00.01.H53, a provincial office) sends to B (000.00.00.G22) and C (000.01.01.H53, a level-3
unit under A). H (000.00.00.H53) is A's parent; L (000.00.02.H53) is a legacy sender with signature policy
``off``. Each agency has its own system; ``sys-h`` acts for H and so, through the OrganId hierarchy, for A and C.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.config import Settings
from gateway.db import Store, create_engine, upgrade
from gateway.demo.pki import DemoPki
from gateway.edxml import (
    Bussiness,
    BussinessDocType,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    MessageHeader,
    Organization,
    PackageKind,
    PromulgationInfo,
    ReplacementInfo,
    ResponseFor,
    SignatureBlock,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
    add_files,
    read_bytes,
    render,
)
from gateway.edxml.dates import VN_TZ, format_date
from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlSchemaError,
    EdxmlStructureError,
    NotFoundError,
    ReplayError,
    RequestError,
    RouteError,
    SignatureError,
)
from gateway.services.access import acts_for
from gateway.services.api import AckOutcome, DeliveryState, GatewayApi
from gateway.services.auth import password_digest
from gateway.services.gateway import GatewayService
from gateway.services.intake_records import idempotency_key
from gateway.services.receipt import verify_receipt
from gateway.validation import validate_package
from gateway.xmlcheck.safe import parse_bytes
from gateway.xmlcheck.signing import SigningKey, place_signature_placeholder, sign_package
from gateway.xmlcheck.trust import TrustStore

A, B, C = "000.00.01.H53", "000.00.00.G22", "000.01.01.H53"
H, L = "000.00.00.H53", "000.00.02.H53"
SECRET_KEY = "test-secret-key-0123456789abcdef"
#: Tables whose row counts must not move when a package is refused.
STORED = ("documents", "deliveries", "status_history", "outbox")


# ================================================================================================ packages

_numbers = iter(range(1, 1_000_000))


def edoc(
    sender: str = A,
    recipients: tuple[str, ...] = (B, C),
    *,
    number: int | None = None,
    kind: BussinessDocType = BussinessDocType.NEW,
    related: str | None = None,
    subject: str = "V/v thử nghiệm liên thông",
    attachment: int = 0,
) -> bytes:
    """A rendered, XSD-valid edoc package (unsigned)."""
    today = date.today()
    n = number if number is not None else next(_numbers)
    bussiness = Bussiness(bussiness_doc_type=kind, bussiness_doc_reason=kind.label_vi, paper=False)
    if kind in (BussinessDocType.REVOKE, BussinessDocType.UPDATE):
        bussiness = Bussiness(
            bussiness_doc_type=kind,
            document_id=related,
            bussiness_doc_reason=kind.label_vi,
            bussiness_document_info=BussinessDocumentInfo(document_info=True)
            if kind is BussinessDocType.UPDATE
            else None,
        )
    elif kind is BussinessDocType.REPLACE:
        bussiness = Bussiness(
            bussiness_doc_type=kind,
            bussiness_doc_reason=kind.label_vi,
            replacement_info_list=(ReplacementInfo(document_id=related or "", organ_ids=recipients),),
        )
    header = MessageHeader(
        from_=Organization(organ_id=sender, organ_name=f"Đơn vị {sender}"),
        to=tuple(Organization(organ_id=r, organ_name=f"Đơn vị {r}") for r in recipients),
        document_id=f"{sender},{format_date(today)},{n}/VP-HCTC",
        code=Code(code_number=str(n), code_notation="VP-HCTC"),
        promulgation_info=PromulgationInfo(place="Tây Ninh", promulgation_date=today),
        document_type=DocumentType(type="1", type_name="Công văn"),
        subject=subject,
    )
    trace = TraceHeaderList(
        trace_headers=(
            TraceHeader(organ_id=sender, timestamp=datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0)),
        ),
        bussiness=bussiness,
    )
    pkg = EdocPackage(message_header=header, trace_header_list=trace)
    if attachment:
        pkg = add_files(pkg, [("phu-luc.bin", random.Random(n).randbytes(attachment))])
    return render(pkg)


def document_id_of(data: bytes) -> str:
    return read_bytes(data).document_id


def status(
    reporter: str,
    about: bytes,
    code: StatusCode,
    *,
    response_organ: str | None = None,
    second: int = 0,
    description: str | None = None,
) -> bytes:
    """A status package about the edoc ``about``; ResponseFor/OrganId defaults to the document's sender."""
    pkg = read_bytes(about)
    assert isinstance(pkg, EdocPackage)
    h = pkg.message_header
    return render(
        StatusPackage(
            from_=Organization(organ_id=reporter, organ_name=f"Đơn vị {reporter}"),
            response_for=ResponseFor(
                organ_id=response_organ if response_organ is not None else pkg.sender,
                code=str(h.code),
                promulgation_date=h.promulgation_info.promulgation_date,
                document_id=pkg.document_id,
            ),
            status_code=code,
            timestamp=datetime(2026, 1, 5, 8, 0, second),
            description=description or code.label_vi,
        )
    )


# ================================================================================================ fixtures


class Clock:
    """Starts at the real time (the demo certificates are valid around it) and ticks 1 ms per reading."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(milliseconds=1)
            return self.now


@dataclass
class World:
    svc: GatewayService
    store: Store
    clock: Clock
    keys: dict[str, SigningKey]
    secrets: dict[str, str]
    trust: TrustStore
    pki: DemoPki

    def signed(self, data: bytes, who: str) -> bytes:
        return sign_package(data, self.keys[who])

    def counts(self) -> dict[str, int]:
        return self.store.counts()


@pytest.fixture(scope="module")
def keys(pki: DemoPki) -> dict[str, SigningKey]:
    out = {oid: SigningKey.from_files(c.key, c.cert, pki.chain) for oid, c in pki.agencies.items()}
    for name in ("expired", "revoked", "rogue", "ecdsa"):
        cred = getattr(pki, name)
        out[name] = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    return out


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_files(pki.trust, pki.crls)


@pytest.fixture
def world(database_url: str, tmp_path, pki: DemoPki, keys: dict[str, SigningKey], trust: TrustStore) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=SECRET_KEY, wss_window_seconds=300)
    engine = create_engine(settings)
    clock = Clock()
    svc = GatewayService(
        engine, SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain), trust, settings, clock=clock
    )
    svc.store.create_schema()
    svc.registry.import_records(
        [
            {"organ_id": H, "name": "UBND tỉnh Tây Ninh", "signature_policy": "require"},
            {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
            {"organ_id": C, "name": "Ban Tiếp Công dân", "signature_policy": "verify-if-present"},
            {"organ_id": B, "name": "Văn phòng Chính phủ", "signature_policy": "require"},
            {"organ_id": L, "name": "Sở cũ (legacy)", "signature_policy": "off"},
        ]
    )
    secrets = {
        "sys-a": svc.registry.add_system("sys-a", [A]),
        "sys-b": svc.registry.add_system("sys-b", [B]),
        "sys-c": svc.registry.add_system("sys-c", [C]),
        "sys-h": svc.registry.add_system("sys-h", [H]),
        "sys-l": svc.registry.add_system("sys-l", [L]),
    }
    yield World(svc=svc, store=svc.store, clock=clock, keys=keys, secrets=secrets, trust=trust, pki=pki)
    svc.close()


def _fingerprint(pki_cert_path) -> str:
    cert = x509.load_pem_x509_certificate(pki_cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def assert_refused_and_nothing_stored(w: World, call, exc_type: type[Exception], code: str | None = None):
    before = w.counts()
    with pytest.raises(exc_type) as info:
        call()
    after = w.counts()
    assert {t: after[t] for t in STORED} == {t: before[t] for t in STORED}
    assert after["audit_log"] == before["audit_log"] + 1
    entry = w.store.audit.entries(limit=1)[0]
    assert entry.action == "intake.refused"
    assert entry.outcome == (code or info.value.code)  # type: ignore[attr-defined]
    assert "raw" not in (entry.detail or {}) and all(
        not isinstance(v, bytes | bytearray) for v in (entry.detail or {}).values()
    )
    return info.value


# ================================================================================================ the main flow


def test_service_implements_the_contract(world: World):
    api: GatewayApi = world.svc  # the Protocol is structural; this is the static check's runtime twin
    for name in ("authenticate_basic", "authenticate_digest", "submit", "pending", "fetch", "acknowledge"):
        assert callable(getattr(api, name))


def test_a_sends_to_b_and_c_b_processes_and_reports_back(world: World):
    w = world
    data = w.signed(edoc(attachment=7000), A)
    receipt = w.svc.submit("sys-a", data, expected=PackageKind.EDOC)
    assert receipt.kind is PackageKind.EDOC and not receipt.duplicate
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert receipt.received_at.tzinfo is not None
    signed = verify_receipt(receipt.signed_receipt, w.trust)
    assert (signed.doc_id, signed.sha256, signed.received_at) == (receipt.doc_id, receipt.sha256, receipt.received_at)
    assert signed.document_id == document_id_of(data)

    stored = w.store.documents.document(receipt.doc_id)
    assert stored is not None and stored.signature_state == "valid"
    assert stored.signer_fingerprint == _fingerprint(w.pki.agencies[A].cert)

    pending_b = w.svc.pending("sys-b", B, PackageKind.EDOC)
    assert [p.doc_id for p in pending_b] == [receipt.doc_id]
    item = pending_b[0]
    assert (item.sender, item.recipient, item.size, item.state) == (A, B, len(data), DeliveryState.QUEUED)
    assert w.svc.fetch("sys-b", item.delivery_id) == data  # byte-identical
    assert w.svc.pending("sys-b", B, PackageKind.EDOC)[0].state is DeliveryState.FETCHED  # at-least-once
    w.svc.acknowledge("sys-b", item.delivery_id, AckOutcome.DONE)
    assert w.svc.pending("sys-b", B, PackageKind.EDOC) == []

    for i, code in enumerate((StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.DONE)):
        r = w.svc.submit("sys-b", w.signed(status(B, data, code, second=i), B), expected=PackageKind.STATUS)
        assert r.kind is PackageKind.STATUS and r.document_id == document_id_of(data)

    view = w.svc.document_view("sys-a", document_id=document_id_of(data))
    assert view.doc_id == receipt.doc_id and view.sender == A
    by = {r.recipient: r for r in view.recipients}
    assert set(by) == {B, C}
    assert by[B].state is DeliveryState.DELIVERED and by[B].fetched_at and by[B].acknowledged_at
    assert [s.status_code for s in by[B].statuses] == [StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.DONE]
    assert all(s.reporter == B and not s.out_of_order and not s.emitted_by_gateway for s in by[B].statuses)
    assert by[B].statuses[0].timestamp == datetime(2026, 1, 5, 8, 0, 0)
    assert by[C].state is DeliveryState.QUEUED and by[C].statuses == ()

    # The statuses wait in A's mailbox, byte-exact, in order.
    inbox = w.svc.pending("sys-a", A, PackageKind.STATUS)
    assert [p.sender for p in inbox] == [B, B, B]
    first = w.svc.fetch("sys-a", inbox[0].delivery_id)
    assert read_bytes(first).status_code is StatusCode.ARRIVED
    # C still has the document waiting; its system (and A's, the parent) can see it.
    assert [p.doc_id for p in w.svc.pending("sys-c", C, PackageKind.EDOC)] == [receipt.doc_id]
    assert [p.doc_id for p in w.svc.pending("sys-a", C, PackageKind.EDOC)] == [receipt.doc_id]
    assert w.svc.pending("sys-c", C, PackageKind.STATUS) == []


def test_document_view_shows_each_recipient_only_its_own_row(world: World):
    w = world
    data = w.signed(edoc(), A)
    receipt = w.svc.submit("sys-a", data)
    doc_id = document_id_of(data)
    assert {r.recipient for r in w.svc.document_view("sys-a", doc_id=receipt.doc_id).recipients} == {B, C}
    assert {r.recipient for r in w.svc.document_view("sys-h", document_id=doc_id).recipients} == {B, C}
    assert [r.recipient for r in w.svc.document_view("sys-b", document_id=doc_id).recipients] == [B]
    assert [r.recipient for r in w.svc.document_view("sys-c", doc_id=receipt.doc_id).recipients] == [C]
    with pytest.raises(NotFoundError):
        w.svc.document_view("sys-l", document_id=doc_id)
    with pytest.raises(NotFoundError):
        w.svc.document_view("sys-l", doc_id=receipt.doc_id)
    with pytest.raises(RequestError):
        w.svc.document_view("sys-a")


# ================================================================================================ idempotency


def test_same_package_again_answers_the_original_receipt_and_stores_nothing(world: World):
    w = world
    data = w.signed(edoc(), A)
    first = w.svc.submit("sys-a", data)
    before = w.counts()
    again = w.svc.submit("sys-a", data)
    after = w.counts()
    assert again.duplicate and not first.duplicate
    assert (again.doc_id, again.received_at, again.sha256) == (first.doc_id, first.received_at, first.sha256)
    assert verify_receipt(again.signed_receipt, w.trust).received_at == first.received_at
    assert {t: after[t] for t in STORED} == {t: before[t] for t in STORED}
    assert w.store.audit.entries(limit=1)[0].action == "intake.duplicate"


def test_other_package_under_the_same_key_is_a_duplicate_error(world: World):
    w = world
    number = next(_numbers)
    first = w.svc.submit("sys-a", w.signed(edoc(number=number, subject="Bản gốc"), A))
    other = w.signed(edoc(number=number, subject="Bản khác, cùng số"), A)
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", other), DuplicateError, "EDXML.DUPLICATE")
    assert err.detail["doc_id"] == first.doc_id


def test_status_key_includes_the_receiver_so_two_recalls_in_one_second_both_pass(world: World):
    w = world
    data = w.signed(edoc(), A)
    w.svc.submit("sys-a", data)
    r1 = w.svc.submit("sys-a", w.signed(status(A, data, StatusCode.RECALL_REQUESTED, response_organ=B), A))
    r2 = w.svc.submit("sys-a", w.signed(status(A, data, StatusCode.RECALL_REQUESTED, response_organ=C), A))
    assert r1.doc_id != r2.doc_id and not r2.duplicate


@pytest.mark.parametrize("same_bytes", [True, False], ids=["identical", "conflicting"])
def test_concurrent_submissions_under_one_key_create_one_document(world: World, same_bytes: bool):
    """Two workers past the idempotency read at the same time: the UNIQUE key decides, nothing doubles."""
    w = world
    number = next(_numbers)
    packages = [w.signed(edoc(number=number, subject=f"Bản {i if not same_bytes else 0}"), A) for i in range(2)]
    barrier = threading.Barrier(2, timeout=30)
    real_lookup = w.store.documents.intake_lookup

    def lookup_then_wait(*args, **kwargs):
        found = real_lookup(*args, **kwargs)
        barrier.wait()  # both threads have read "no such document" before either inserts
        return found

    w.store.documents.intake_lookup = lookup_then_wait  # type: ignore[method-assign]
    results: list[object] = [None, None]

    def run(i: int) -> None:
        try:
            results[i] = w.svc.submit("sys-a", packages[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    w.store.documents.intake_lookup = real_lookup  # type: ignore[method-assign]
    assert w.counts()["documents"] == 1 and w.counts()["deliveries"] == 2
    if same_bytes:
        assert all(not isinstance(r, Exception) for r in results), results
        assert results[0].doc_id == results[1].doc_id  # type: ignore[union-attr]
        assert sorted(r.duplicate for r in results) == [False, True]  # type: ignore[union-attr]
    else:
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], DuplicateError), results


# ================================================================================================ access and routing


def test_a_system_acts_only_for_its_agencies_and_their_children(world: World):
    w = world
    data = w.signed(edoc(), A)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-b", data), AccessError, "ACCESS.DENIED")
    # C is a level-3 unit under A: its system cannot send as its parent.
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-c", data), AccessError)
    # H is A's parent: its system may.
    assert not w.svc.submit("sys-h", data).duplicate
    with pytest.raises(AuthError):
        w.svc.submit("no-such-system", data)


def test_acts_for_follows_the_organ_id_hierarchy():
    assert acts_for([H], A) and acts_for([H], C) and acts_for([A], C)
    assert not acts_for([C], A) and not acts_for([A], H) and not acts_for([A], B)
    assert acts_for(["vxp.saas.02"], "vxp.saas.02") and not acts_for(["vxp.saas"], "vxp.saas.02")


def test_unknown_or_inactive_recipients_are_refused(world: World):
    w = world
    data = w.signed(edoc(recipients=(B, "000.00.09.H53")), A)
    err = assert_refused_and_nothing_stored(
        w, lambda: w.svc.submit("sys-a", data), RouteError, "ROUTE.UNKNOWN_RECIPIENT"
    )
    assert err.detail["recipients"] == ["000.00.09.H53"]
    w.svc.registry.set_agency_policy(C, active=False)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", w.signed(edoc(), A)), RouteError)


def test_an_inactive_sender_or_system_is_refused(world: World):
    w = world
    w.svc.registry.set_agency_policy(A, active=False)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", w.signed(edoc(), A)), AccessError)
    w.svc.registry.set_agency_policy(A, active=True)
    w.svc.registry.set_system_active("sys-a", False)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", w.signed(edoc(), A)), AuthError)


def test_schema_errors_and_wrong_kind_are_refused_and_audited(world: World):
    w = world
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", b"<edXML/>"), EdxmlStructureError)
    bad = edoc().replace(b"<edXML:Subject>", b"<edXML:Bogus>x</edXML:Bogus><edXML:Subject>")
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", bad), EdxmlSchemaError)
    data = w.signed(edoc(), A)
    assert_refused_and_nothing_stored(
        w, lambda: w.svc.submit("sys-a", data, expected=PackageKind.STATUS), EdxmlStructureError
    )


# ================================================================================================ signature policy


@pytest.mark.parametrize(
    ("signer", "reason"),
    [
        (None, "missing"),
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("rogue", "untrusted"),
        (B, "not-bound"),  # a valid certificate of ANOTHER agency
    ],
)
def test_require_policy_refusals(world: World, signer: str | None, reason: str):
    w = world
    data = edoc() if signer is None else w.signed(edoc(), signer)
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", data), SignatureError, "EDXML.SIGNATURE")
    assert err.detail["reason"] == reason
    assert w.store.audit.entries(limit=1)[0].detail["reason"] == reason


def test_require_policy_with_bound_fingerprints(world: World):
    w = world
    w.svc.registry.set_agency_policy(A, cert_fingerprints=[_fingerprint(w.pki.ecdsa.cert)])
    # A's own RSA certificate names A, but only the bound (ECDSA) certificate counts now.
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", w.signed(edoc(), A)), SignatureError)
    assert err.detail["reason"] == "not-bound"
    receipt = w.svc.submit("sys-a", w.signed(edoc(), "ecdsa"))
    assert w.store.documents.document(receipt.doc_id).signer_fingerprint == _fingerprint(w.pki.ecdsa.cert)  # type: ignore[union-attr]


def test_verify_if_present_accepts_unsigned_and_placeholder_but_checks_real_signatures(world: World):
    w = world
    plain = w.svc.submit("sys-c", edoc(sender=C, recipients=(B,)))
    assert w.store.documents.document(plain.doc_id).signature_state == "unsigned"  # type: ignore[union-attr]
    pkg = read_bytes(edoc(sender=C, recipients=(B,)))
    placeholder = render(
        EdocPackage(
            message_header=pkg.message_header,  # type: ignore[union-attr]
            trace_header_list=pkg.trace_header_list,  # type: ignore[union-attr]
            signature=SignatureBlock(
                xml='<Signature xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/>', is_xmldsig=False
            ),
        )
    )
    legacy = w.svc.submit("sys-c", placeholder)
    assert w.store.documents.document(legacy.doc_id).signature_state == "legacy-placeholder"  # type: ignore[union-attr]
    signed = w.signed(edoc(sender=C, recipients=(B,)), C)
    assert w.store.documents.document(w.svc.submit("sys-c", signed).doc_id).signature_state == "valid"  # type: ignore[union-attr]
    tampered = w.signed(edoc(sender=C, recipients=(B,), subject="Gốc"), C).replace("Gốc".encode(), "Sửa".encode())
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-c", tampered), SignatureError)
    assert err.detail["reason"] == "bad-digest"
    wrong_signer = w.signed(edoc(sender=C, recipients=(B,)), A)
    assert (
        assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-c", wrong_signer), SignatureError).detail[
            "reason"
        ]
        == "not-bound"
    )


def test_policy_off_accepts_anything_signature_shaped(world: World):
    w = world
    tampered = w.signed(edoc(sender=L, recipients=(B,), subject="Gốc"), A).replace("Gốc".encode(), "Sửa".encode())
    receipt = w.svc.submit("sys-l", tampered)
    assert w.store.documents.document(receipt.doc_id).signature_state == "present"  # type: ignore[union-attr]


class _LegacySigner(XMLSigner):
    """signxml refuses to create SHA-1 signatures; legacy peers still send them."""

    def check_deprecated_methods(self) -> None:
        pass


def test_sha1_needs_the_named_allowance(world: World):
    w = world
    root = parse_bytes(edoc()).getroot()
    place_signature_placeholder(root)
    key = w.keys[A]
    signed_root = _LegacySigner(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    ).sign(root, key=key.private_key, cert=[key.certificate, *key.chain])
    data = etree.tostring(signed_root, xml_declaration=True, encoding="UTF-8")
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", data), SignatureError)
    assert err.detail["reason"] == "weak-algorithm"
    w.svc.registry.set_agency_policy(A, allow_sha1=True)
    assert not w.svc.submit("sys-a", data).duplicate


# ================================================================================================ status routing


def test_out_of_order_statuses_are_kept_and_flagged(world: World):
    w = world
    data = w.signed(edoc(), A)
    w.svc.submit("sys-a", data)
    codes = [StatusCode.ACCEPTED, StatusCode.REJECTED, StatusCode.ARRIVED, StatusCode.ASSIGNED, StatusCode.ACCEPTED]
    for i, code in enumerate(codes):
        w.svc.submit("sys-b", w.signed(status(B, data, code, second=i), B))
    (row,) = [r for r in w.svc.document_view("sys-a", document_id=document_id_of(data)).recipients if r.recipient == B]
    assert [(s.status_code, s.out_of_order) for s in row.statuses] == [
        (StatusCode.ACCEPTED, False),
        (StatusCode.REJECTED, True),  # a late 02 after 03
        (StatusCode.ARRIVED, True),
        (StatusCode.ASSIGNED, False),
        (StatusCode.ACCEPTED, True),
    ]
    assert len(w.svc.pending("sys-a", A, PackageKind.STATUS)) == len(codes)  # all routed, none dropped


def test_status_from_a_non_recipient_or_about_an_unknown_document_is_refused(world: World):
    w = world
    data = w.signed(edoc(recipients=(B,)), A)
    w.svc.submit("sys-a", data)
    stranger = status(L, data, StatusCode.ACCEPTED)  # L's policy is off, so only routing can refuse it
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-l", stranger), AccessError)
    unknown = status(B, w.signed(edoc(), A), StatusCode.ARRIVED)  # never submitted
    err = assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-b", w.signed(unknown, B)), NotFoundError)
    assert err.code == "NOT_FOUND"


def test_recall_13_goes_to_the_receiver_who_answers_15(world: World):
    w = world
    data = w.signed(edoc(), A)
    original = w.svc.submit("sys-a", data)
    recall = w.svc.submit(
        "sys-a", w.signed(status(A, data, StatusCode.RECALL_REQUESTED, response_organ=B, description="Sai số"), A)
    )
    (item,) = w.svc.pending("sys-b", B, PackageKind.STATUS)
    assert item.doc_id == recall.doc_id and item.sender == A
    assert w.svc.pending("sys-c", C, PackageKind.STATUS) == []
    assert read_bytes(w.svc.fetch("sys-b", item.delivery_id)).status_code is StatusCode.RECALL_REQUESTED
    w.svc.submit("sys-b", w.signed(status(B, data, StatusCode.CHANGE_ACCEPTED, second=1), B))
    (answer,) = w.svc.pending("sys-a", A, PackageKind.STATUS)
    assert answer.sender == B
    view = w.svc.document_view("sys-a", doc_id=original.doc_id)
    (row,) = [r for r in view.recipients if r.recipient == B]
    assert [(s.status_code, s.reporter) for s in row.statuses] == [
        (StatusCode.RECALL_REQUESTED, A),
        (StatusCode.CHANGE_ACCEPTED, B),
    ]
    assert not any(s.out_of_order for s in row.statuses)
    # A recall naming somebody who never received the document cannot be routed.
    wrong = w.signed(status(A, data, StatusCode.RECALL_REQUESTED, response_organ=L, second=2), A)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", wrong), RouteError)


@pytest.mark.parametrize("kind", [BussinessDocType.UPDATE, BussinessDocType.REVOKE, BussinessDocType.REPLACE])
def test_update_revoke_replace_are_linked_to_the_original(world: World, kind: BussinessDocType):
    w = world
    data = w.signed(edoc(), A)
    original = w.svc.submit("sys-a", data)
    follow_up = w.signed(edoc(kind=kind, related=document_id_of(data)), A)
    receipt = w.svc.submit("sys-a", follow_up)
    stored = w.store.documents.document(receipt.doc_id)
    assert stored is not None
    assert stored.related_doc_id == original.doc_id and stored.bussiness_doc_type == kind.value
    # Not treated as a new document: a separate delivery, linked, to each recipient.
    assert {p.doc_id for p in w.svc.pending("sys-b", B, PackageKind.EDOC)} == {original.doc_id, receipt.doc_id}
    orphan = w.signed(edoc(kind=kind, related=f"{A},2020/01/01,1/VP"), A)
    assert_refused_and_nothing_stored(w, lambda: w.svc.submit("sys-a", orphan), NotFoundError)


def test_update_and_original_may_share_a_document_id(world: World):
    w = world
    number = next(_numbers)
    data = w.signed(edoc(number=number), A)
    original = w.svc.submit("sys-a", data)
    update = w.svc.submit(
        "sys-a", w.signed(edoc(number=number, kind=BussinessDocType.UPDATE, related=document_id_of(data)), A)
    )
    assert update.doc_id != original.doc_id and not update.duplicate
    assert w.store.documents.document(update.doc_id).related_doc_id == original.doc_id  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [BussinessDocType.UPDATE, BussinessDocType.REVOKE, BussinessDocType.REPLACE])
def test_a_status_about_a_shared_document_id_concerns_the_original(world: World, kind: BussinessDocType):
    """Follow-ups sharing the original's DocumentId (the VNPT samples do this) are newer: the status must still be
    recorded on the original, as the follow-up's own link is, not on whichever row is newest."""
    w = world
    number = next(_numbers)
    data = w.signed(edoc(number=number), A)
    original = w.svc.submit("sys-a", data)
    follow_up = w.svc.submit("sys-a", w.signed(edoc(number=number, kind=kind, related=document_id_of(data)), A))
    w.svc.submit("sys-b", w.signed(status(B, data, StatusCode.ACCEPTED), B), expected=PackageKind.STATUS)
    recall = w.svc.submit("sys-a", w.signed(status(A, data, StatusCode.RECALL_REQUESTED, response_organ=C), A))
    assert [h.status_code for h in w.store.statuses.history(original.doc_id) if h.recipient == B] == ["03"]
    assert [h.status_code for h in w.store.statuses.history(original.doc_id) if h.recipient == C] == ["13"]
    assert w.store.statuses.history(follow_up.doc_id) == []
    assert w.store.documents.document(recall.doc_id).related_doc_id == original.doc_id  # type: ignore[union-attr]


def test_push_channel_deliveries_get_an_outbox_row(world: World):
    w = world
    w.svc.registry.set_agency_policy(C, channel="soap", endpoint="https://c.example/edoc?wsdl")
    before = w.counts()["outbox"]
    w.svc.submit("sys-a", w.signed(edoc(), A))
    assert w.counts()["outbox"] == before + 1


# ================================================================================================ mailbox


def test_acknowledge_states_and_idempotence(world: World):
    w = world
    w.svc.submit("sys-a", w.signed(edoc(), A))
    (b_item,) = w.svc.pending("sys-b", B, PackageKind.EDOC)
    (c_item,) = w.svc.pending("sys-c", C, PackageKind.EDOC)
    w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.DONE)
    w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.DONE)  # idempotent
    with pytest.raises(RequestError):
        w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.FAIL, "too late")
    w.svc.acknowledge("sys-c", c_item.delivery_id, AckOutcome.FAIL, "không mở được tệp đính kèm")
    w.svc.acknowledge("sys-c", c_item.delivery_id, AckOutcome.FAIL, "again")
    view = w.svc.document_view("sys-a", doc_id=b_item.doc_id)
    by = {r.recipient: r for r in view.recipients}
    assert by[B].state is DeliveryState.DELIVERED
    assert by[C].state is DeliveryState.FAILED and by[C].ack_reason == "không mở được tệp đính kèm"
    assert w.svc.pending("sys-c", C, PackageKind.EDOC) == []


def test_mailboxes_are_private(world: World):
    w = world
    w.svc.submit("sys-a", w.signed(edoc(), A))
    (b_item,) = w.svc.pending("sys-b", B, PackageKind.EDOC)
    with pytest.raises(AccessError):
        w.svc.pending("sys-c", B, PackageKind.EDOC)
    with pytest.raises(AccessError):
        w.svc.pending("sys-c", A, PackageKind.STATUS)  # a child cannot read its parent's mailbox
    for call in (
        lambda: w.svc.fetch("sys-c", b_item.delivery_id),
        lambda: w.svc.acknowledge("sys-c", b_item.delivery_id, AckOutcome.DONE),
        lambda: w.svc.fetch("sys-b", "0" * 32),
    ):
        with pytest.raises(NotFoundError):  # the same answer for "not yours" and "does not exist"
            call()
    assert w.svc.pending("sys-b", B, PackageKind.EDOC)[0].state is DeliveryState.QUEUED  # untouched


def test_emit_arrived_on_acknowledge(world: World):
    w = world
    w.svc.registry.set_agency_policy(B, emit_arrived_on_ack=True)
    w.svc.registry.set_agency_policy(C, emit_arrived_on_ack=True)
    data = w.signed(edoc(), A)
    receipt = w.svc.submit("sys-a", data)
    (b_item,) = w.svc.pending("sys-b", B, PackageKind.EDOC)
    w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.DONE)
    w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.DONE)  # no second 01
    (emitted,) = w.svc.pending("sys-a", A, PackageKind.STATUS)
    assert emitted.sender == B
    raw = w.svc.fetch("sys-a", emitted.delivery_id)
    pkg = validate_package(raw).package  # a real, schema-valid status package
    assert isinstance(pkg, StatusPackage)
    assert (pkg.status_code, pkg.sender, pkg.response_for.organ_id) == (StatusCode.ARRIVED, B, A)
    assert pkg.document_id == document_id_of(data) and pkg.response_for.code
    assert w.store.documents.document(emitted.doc_id).emitted_by_gateway  # type: ignore[union-attr]
    # C reported by itself before acknowledging: the gateway does not speak for it.
    w.svc.submit("sys-c", status(C, data, StatusCode.ACCEPTED))
    (c_item,) = w.svc.pending("sys-c", C, PackageKind.EDOC)
    w.svc.acknowledge("sys-c", c_item.delivery_id, AckOutcome.DONE)
    view = {r.recipient: r for r in w.svc.document_view("sys-a", doc_id=receipt.doc_id).recipients}
    assert [(s.status_code, s.emitted_by_gateway) for s in view[B].statuses] == [(StatusCode.ARRIVED, True)]
    assert [(s.status_code, s.emitted_by_gateway) for s in view[C].statuses] == [(StatusCode.ACCEPTED, False)]


def test_failed_acknowledge_emits_nothing(world: World):
    w = world
    w.svc.registry.set_agency_policy(B, emit_arrived_on_ack=True)
    w.svc.submit("sys-a", w.signed(edoc(recipients=(B,)), A))
    (b_item,) = w.svc.pending("sys-b", B, PackageKind.EDOC)
    w.svc.acknowledge("sys-b", b_item.delivery_id, AckOutcome.FAIL, "virus")
    assert w.svc.pending("sys-a", A, PackageKind.STATUS) == []


def test_readiness_wants_the_migrated_schema(world: World):
    # The world was built with create_schema (no alembic revision): reachable, but not what migrations made.
    assert world.svc.readiness() == {"database": True, "schema": False}


def test_agencies_listing(world: World):
    w = world
    all_ = {a.organ_id: a for a in w.svc.agencies()}
    assert set(all_) == {A, B, C, H, L}
    assert all_[C].parent == A and all_[C].level == 3 and all_[A].parent == H and all_[H].level == 1
    assert [a.organ_id for a in w.svc.agencies(parent=H)] == [A, L]


# ================================================================================================ authentication


def _digest_args(secret: str, created: datetime, nonce: bytes | None = None) -> tuple[str, str, str]:
    nonce = nonce or os.urandom(16)
    created_text = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return password_digest(nonce, created_text, secret), base64.b64encode(nonce).decode(), created_text


def test_ws_security_digest_and_replay(world: World):
    w = world
    args = _digest_args(w.secrets["sys-b"], w.clock.now)
    assert w.svc.authenticate_digest("sys-b", *args) == "sys-b"
    with pytest.raises(ReplayError):
        w.svc.authenticate_digest("sys-b", *args)
    assert w.svc.authenticate_digest("sys-b", *_digest_args(w.secrets["sys-b"], w.clock.now)) == "sys-b"
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        with pytest.raises(ReplayError):
            w.svc.authenticate_digest("sys-b", *_digest_args(w.secrets["sys-b"], w.clock.now + skew))
    with pytest.raises(AuthError) as wrong:
        w.svc.authenticate_digest("sys-b", *_digest_args("not-the-secret", w.clock.now))
    with pytest.raises(AuthError) as unknown:
        w.svc.authenticate_digest("nobody", *_digest_args("x", w.clock.now))
    assert str(wrong.value) == str(unknown.value)  # no user enumeration
    assert not isinstance(wrong.value, ReplayError)
    with pytest.raises(AuthError):
        w.svc.authenticate_digest("sys-b", args[0], "***not base64***", args[2])
    with pytest.raises(AuthError):
        w.svc.authenticate_digest("sys-b", *_digest_args(w.secrets["sys-b"], w.clock.now)[:2], "2026-01-01 10:00:00")
    # A failed attempt does not burn the nonce of a later valid one.
    nonce = os.urandom(16)
    with pytest.raises(AuthError):
        w.svc.authenticate_digest("sys-b", *_digest_args("wrong", w.clock.now, nonce))
    assert w.svc.authenticate_digest("sys-b", *_digest_args(w.secrets["sys-b"], w.clock.now, nonce)) == "sys-b"
    assert any(e.outcome == "AUTH.REPLAY" for e in w.store.audit.entries(action="auth.denied"))


def test_http_basic(world: World):
    w = world
    assert w.svc.authenticate_basic("sys-a", w.secrets["sys-a"]) == "sys-a"
    assert w.svc.authenticate_basic("sys-a", w.secrets["sys-a"]) == "sys-a"  # cached path
    with pytest.raises(AuthError) as wrong:
        w.svc.authenticate_basic("sys-a", w.secrets["sys-b"])
    with pytest.raises(AuthError) as unknown:
        w.svc.authenticate_basic("nobody", "x")
    assert str(wrong.value) == str(unknown.value)
    w.svc.registry.set_system_active("sys-a", False)
    with pytest.raises(AuthError):
        w.svc.authenticate_basic("sys-a", w.secrets["sys-a"])
    new = w.svc.registry.rotate_secret("sys-b")
    with pytest.raises(AuthError):
        w.svc.authenticate_basic("sys-b", w.secrets["sys-b"])
    assert w.svc.authenticate_basic("sys-b", new) == "sys-b"


# ================================================================================================ receipts, wiring


def test_receipt_verification_refuses_tampering_and_strangers(world: World):
    w = world
    receipt = w.svc.submit("sys-a", w.signed(edoc(), A))
    gateway_cert = x509.load_pem_x509_certificate(w.pki.gateway_cert.read_bytes())
    assert verify_receipt(receipt.signed_receipt, gateway_cert).doc_id == receipt.doc_id
    forged = receipt.signed_receipt.replace(receipt.sha256.encode(), b"0" * 64)
    with pytest.raises(SignatureError):
        verify_receipt(forged, w.trust)
    stranger = x509.load_pem_x509_certificate(w.pki.agencies[A].cert.read_bytes())
    with pytest.raises(SignatureError):
        verify_receipt(receipt.signed_receipt, stranger)
    rogue_trust = TrustStore(anchors=(x509.load_pem_x509_certificate(w.pki.rogue_ca_cert.read_bytes()),))
    with pytest.raises(SignatureError):
        verify_receipt(receipt.signed_receipt, rogue_trust)


def test_from_settings_loads_everything_once(database_url: str, tmp_path, pki: DemoPki, keys):
    gateway_cert = tmp_path / "gateway-with-chain.pem"
    gateway_cert.write_bytes(pki.gateway_cert.read_bytes() + pki.chain.read_bytes())
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET_KEY,
        gateway_key=pki.gateway_key,
        gateway_cert=gateway_cert,
        trust_store=pki.trust,
        crl_files=pki.crls,
    )
    upgrade(settings)
    svc = GatewayService.from_settings(settings)
    try:
        svc.registry.import_records([{"organ_id": A, "name": "A"}, {"organ_id": B, "name": "B"}])
        svc.registry.add_system("sys-a", [A])
        receipt = svc.submit("sys-a", sign_package(edoc(recipients=(B,)), keys[A]))
        info = verify_receipt(receipt.signed_receipt, TrustStore.from_files(pki.trust))
        assert info.doc_id == receipt.doc_id
        assert svc.readiness() == {"database": True, "schema": True}
    finally:
        svc.close()


def test_idempotency_key_fields():
    data = edoc(number=77)
    same_key_other_subject = edoc(number=77, subject="khác")
    assert idempotency_key(read_bytes(data)) == idempotency_key(read_bytes(same_key_other_subject))
    update = edoc(number=77, kind=BussinessDocType.UPDATE, related="x")
    assert idempotency_key(read_bytes(update)) != idempotency_key(read_bytes(data))
