"""adapters.edocvn against a stand-in Bkav axis served on 127.0.0.1 (tests/legacy_axis.py): every call of the client,
every error mapping, the adapter's deliver/poll/acknowledge, the payload switch both ways, and a 20 MB attachment
sent without being joined in memory.

The cast uses the spec's own example organisations and tokens (legacy-edoc-vn.md §6.3–§6.8): S = 000.00.12.H53 (Sở
Xây dựng, token ``Qm9ndXNUb2tlbkV4YW1wbGUwMDE=``) sends to R = 000.00.13.H53 (Sở TT&TT,
``RXhhbXBsZVRva2VuRm9yUmVjdjE=``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import tracemalloc
from collections.abc import Iterator
from datetime import datetime

import pytest
from edocvn_vectors import VECTORS
from legacy_axis import LegacyAxis, serve_axis
from lxml import etree
from peer_faults import raw_peer, reset_after_request
from test_services import edoc, status

from adapters.edocvn import EdocvnAdapter, EdocvnClient, EdocvnError, Login, logins_from
from adapters.peer_http import Failure
from gateway.edxml import PackageKind, StatusCode
from gateway.edxml.model import Attachment, EdocPackage, ManifestReference
from gateway.edxml.reader import read_bytes
from gateway.edxml.writer import render
from gateway.payload import Payload
from gateway.ports import (
    DeliveryConfigError,
    DeliveryPeerError,
    DeliveryProtocolError,
    DeliveryRefused,
    DeliveryTimeout,
    DeliveryUnreachable,
    OutgoingPackage,
    Peer,
)

S, TS = "000.00.12.H53", "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="
R, TR = "000.00.13.H53", "RXhhbXBsZVRva2VuRm9yUmVjdjE="
R2, TR2 = "000.00.14.H53", "QW5vdGhlclRva2VuRm9yUmVjdjI="
PDF = b"%PDF-1.4\n% demo attachment\n" + random.Random(7).randbytes(3000)


@pytest.fixture
def axis() -> Iterator[tuple[str, LegacyAxis]]:
    with serve_axis({S: TS, R: TR, R2: TR2}) as served:
        yield served


def with_pdf(data: bytes, payload: bytes = PDF) -> EdocPackage:
    pkg = read_bytes(data)
    assert isinstance(pkg, EdocPackage)
    att = Attachment(content_id="att-1@qlvb.example", attachment_name="125-SXD-VP.pdf", description="Công văn 125",
                     content_type="application/pdf", data=payload)  # fmt: skip
    ref = ManifestReference(content_id=att.content_id, content_type=att.content_type, description=att.description,
                            attachment_name=att.attachment_name)  # fmt: skip
    return dataclasses.replace(pkg, attachments=(att,), references=(ref,))


def client(url: str, organ: str, token: str, **kw) -> EdocvnClient:
    kw.setdefault("read_timeout", 5)
    return EdocvnClient(url, organ, token, **kw)


def c14n(data: bytes) -> bytes:
    """Canonical form, blanks and comments dropped, and an empty SOAP Header (ours; the examples have none, and
    Bkav reads no Header for these operations) removed."""
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
    root = etree.fromstring(data, parser)
    for header in root.findall("{http://schemas.xmlsoap.org/soap/envelope/}Header"):
        if len(header) == 0:
            root.remove(header)
    return etree.tostring(root, method="c14n")


# ================================================================================================ client: calls


def test_send_pending_get_confirm_and_traces_round_trip(axis):
    url, ax = axis
    pkg = with_pdf(edoc(S, (R, R2)))
    with client(url, S, TS) as sender, client(url, R, TR) as recipient:
        sender.check_permission()
        axis_id = sender.send_document(pkg)
        assert axis_id == "48213"
        # Bkav's intake stores the part as received: raw bytes (§7.1)
        assert ax.file_digests(axis_id) == [hashlib.sha256(PDF).hexdigest()]
        assert recipient.pending() == [axis_id]
        got = recipient.get_document(axis_id)  # Base64 text parts labelled binary (§7.3), decoded
        assert [a.data for a in got.attachments] == [PDF]
        assert got.attachments[0].attachment_name == "125-SXD-VP.pdf"
        assert got.message_header.document_id == axis_id  # Bkav's database path (§6.5)
        assert (got.sender, got.recipients, got.message_header.subject) == (S, (R, R2), pkg.message_header.subject)
        assert recipient.pending() == [axis_id]  # GetDocument does not take it (§6.5 quirk)
        recipient.confirm_received(axis_id)
        assert recipient.pending() == []
        traces = sender.traces()  # consume mode
        [arrived] = traces.statuses
        assert (arrived.sender, arrived.status_code, arrived.description) == (
            R, StatusCode.ARRIVED, "Da nhan van ban ve he thong")  # fmt: skip
        assert arrived.response_for.code == str(pkg.message_header.code)
        assert sender.traces().statuses == ()  # consumed
        replay = sender.traces(since=datetime(2000, 1, 1))
        assert [s.status_code for s in replay.statuses] == [StatusCode.ARRIVED]
        assert {o.organ_id for o in sender.organizations()} == {S, R, R2}


def test_update_traces_reaches_the_sender_and_a_repeat_is_already_there(axis):
    url, _ax = axis
    sent = edoc(S, (R,))
    with client(url, S, TS) as sender, client(url, R, TR) as recipient:
        sender.send_document(with_pdf(sent))
        accepted = read_bytes(status(R, sent, StatusCode.ACCEPTED))
        recipient.update_traces(accepted)
        [back] = sender.traces().statuses
        assert (back.sender, back.status_code, back.response_for.document_id) == (
            R, StatusCode.ACCEPTED, read_bytes(sent).document_id)  # fmt: skip
        with pytest.raises(EdocvnError) as again:
            recipient.update_traces(accepted)
        assert again.value.already_there and again.value.report_code == "M.UpdateTraces"
        # 05 may repeat (§6.7 step 2)
        working = read_bytes(status(R, sent, StatusCode.IN_PROGRESS))
        recipient.update_traces(working)
        recipient.update_traces(working)


def test_requests_have_the_shapes_of_the_spec_examples(axis):
    """Our requests equal the spec's examples (§6.4–§6.8), element for element, and go out as Bkav needs them."""
    url, ax = axis
    with client(url, R, TR) as recipient, client(url, S, TS) as sender:
        recipient.pending()
        with pytest.raises(EdocvnError):
            recipient.get_document("48213")
        with pytest.raises(EdocvnError):
            recipient.confirm_received("48213")
        sender.traces()
        sender.traces(since=datetime(2024, 5, 1))
    expected = [
        "§6.4 GetPendingDocumentIds request",
        "§6.5 GetDocument request",
        "§6.6 ConfirmReceived request",
        "§6.8 GetTraces request",
        "§6.8 GetTraces request with TimeStamp (from the example's comment)",
    ]
    for (action, ctype, body), key in zip(ax.seen, expected, strict=True):
        assert action == VECTORS[key].operation  # unquoted, as the real client sends it (§2.1)
        assert ctype.startswith('multipart/related; type="text/xml"')
        assert c14n(body) == c14n(VECTORS[key].text.encode()), key


def test_quoted_soap_action_and_plain_answers_work_too():
    with serve_axis({S: TS, R: TR}, swa=False) as (url, ax):
        with client(url, S, TS, quoted_action=True) as sender:
            axis_id = sender.send_document(with_pdf(edoc(S, (R,))))
        assert ax.seen[-1][0] == '"SendDocument"'
        with client(url, R, TR) as recipient:
            assert recipient.pending() == [axis_id]


# ================================================================================================ client: refusals


def _refusal(call) -> EdocvnError:
    with pytest.raises(EdocvnError) as caught:
        call()
    return caught.value


def test_refusals_carry_bkav_code_and_description_and_are_classified(axis):
    url, ax = axis
    with client(url, S, TS) as sender, client(url, R, "wrong-token") as intruder, client(url, R, TR) as recipient:
        wrong = _refusal(intruder.pending)  # Report{false, ∅} (§3)
        assert (wrong.failure, wrong.report_code, wrong.retryable) == (Failure.CONFIG, None, True)
        wrong = _refusal(lambda: EdocvnClient(url, S, "nope").send_document(with_pdf(edoc(S, (R,)))))
        assert (wrong.failure, wrong.report_code) == (Failure.CONFIG, "Permission")

        pkg = with_pdf(edoc(S, (R,)))
        sender.send_document(pkg)
        exist = _refusal(lambda: sender.send_document(pkg))
        assert (exist.report_code, exist.failure, exist.already_there) == ("M.Exist", Failure.REFUSED, True)
        assert exist.report_description == "Document is exist on ESB !!!!"

        bad_type = dataclasses.replace(pkg.message_header, document_type=dataclasses.replace(
            pkg.message_header.document_type, type="3"), document_id=pkg.document_id + "x")  # fmt: skip
        typed = _refusal(lambda: sender.send_document(dataclasses.replace(pkg, message_header=bad_type)))
        assert (typed.report_code, typed.failure, typed.retryable) == (
            "M.MessageHeader.DocumentType.Type", Failure.REFUSED, False)  # fmt: skip
        # Bkav's text has a trailing space (§10): wire data, kept as sent
        assert typed.report_description == "Document Type value is only math '1' or '2' "

        missing = _refusal(lambda: recipient.get_document("99999"))
        assert (missing.report_code, missing.failure) == ("M.GetDocumentCheckAllow", Failure.REFUSED)
        assert _refusal(lambda: recipient.confirm_received("99999")).report_code == "M.ConfirmReceived"
        unknown_doc = read_bytes(status(R, edoc(S, (R,)), StatusCode.ACCEPTED))
        assert _refusal(lambda: recipient.update_traces(unknown_doc)).report_code == "M.UpdateStatusDoc"

        ax.fault, ax.fault_count = "empty", 1
        empty = _refusal(recipient.pending)  # Bkav's silent refusal (§4.3)
        assert (empty.report_code, empty.failure) == ("EMPTY_BODY", Failure.REFUSED)
        assert "token" not in str(wrong).lower() or TS not in str(wrong)


@pytest.mark.parametrize(
    ("fault", "failure", "sent"),
    [("500", Failure.PEER, True), ("html", Failure.PROTOCOL, True), ("drop", Failure.TIMEOUT, True),
     ("slow", Failure.TIMEOUT, True)],
)  # fmt: skip
def test_transport_faults_map_to_the_shared_taxonomy(axis, fault, failure, sent):
    url, ax = axis
    ax.fault, ax.fault_count, ax.slow_seconds = fault, 1, 2.0
    with EdocvnClient(url, R, TR, read_timeout=0.5, connect_retries=0) as c:
        err = _refusal(c.pending)
    assert (err.failure, err.sent) == (failure, sent)
    assert TR not in str(err)


def test_unreachable_and_reset_peers():
    with raw_peer(reset_after_request) as url:
        assert _refusal(lambda: EdocvnClient(url, R, TR, connect_retries=0).pending()).failure is Failure.TIMEOUT
    err = _refusal(lambda: EdocvnClient("http://127.0.0.1:9/", R, TR, connect_retries=0).pending())
    assert (err.failure, err.sent) == (Failure.UNREACHABLE, False)


# ================================================================================================ adapter


def _adapter(url: str, **kw) -> EdocvnAdapter:
    logins = {o: Login(o, o, t) for o, t in ((S, TS), (R, TR), (R2, TR2))}
    return EdocvnAdapter(logins=logins, endpoint=url, read_timeout=2, **kw)


def _outgoing(data: bytes, recipient: str, attempt: int = 1) -> OutgoingPackage:
    pkg = read_bytes(data)
    return OutgoingPackage(delivery_id=f"d-{recipient}-{attempt}", doc_id="doc-1", kind=pkg.kind, sender=pkg.sender,
                           recipient=recipient, document_id=pkg.document_id, payload=Payload.of(data),
                           attempt=attempt)  # fmt: skip


def test_adapter_delivers_an_edoc_once_for_all_recipients_and_a_status(axis):
    url, ax = axis
    data = render(with_pdf(edoc(S, (R, R2))))
    adapter = _adapter(url)
    first = adapter.deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    assert first.peer_reference == "48213"
    second = adapter.deliver(Peer(R2, "edocvn", None, {}), _outgoing(data, R2))  # the [edocvn] endpoint
    assert second.peer_reference is None and "M.Exist" in (second.peer_answer or "")
    assert ax.documents["48213"].pkg.recipients == (R, R2)
    with client(url, R2, TR2) as c:
        assert c.pending() == ["48213"]  # the one SendDocument reached R2 too
    accepted = status(R, data, StatusCode.ACCEPTED)
    assert adapter.deliver(Peer(S, "edocvn", url, {}), _outgoing(accepted, S)).peer_answer == "OK"
    assert [t.status.status_code for t in ax.traces] == [StatusCode.ACCEPTED]
    adapter.close()


def test_adapter_errors_retry_or_dead_letter(axis):
    url, ax = axis
    data = render(with_pdf(edoc(S, (R,))))
    adapter = _adapter(url)
    with pytest.raises(DeliveryConfigError, match="legacy_token"):
        EdocvnAdapter(endpoint=url).deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    with pytest.raises(DeliveryConfigError):
        EdocvnAdapter(logins={S: Login(S, S, TS)}).deliver(Peer(R, "edocvn", None, {}), _outgoing(data, R))
    ax.fault, ax.fault_count = "500", 1
    with pytest.raises(DeliveryPeerError) as peer_error:
        adapter.deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    assert peer_error.value.retryable
    ax.fault, ax.fault_count = "html", 1
    with pytest.raises(DeliveryProtocolError):
        adapter.deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    ax.fault, ax.fault_count, ax.slow_seconds = "slow", 1, 4
    with pytest.raises(DeliveryTimeout) as timeout:
        adapter.deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    assert timeout.value.sent
    with pytest.raises(DeliveryUnreachable):
        adapter.deliver(Peer(R, "edocvn", "http://127.0.0.1:9/", {}), _outgoing(data, R))
    short = render(with_pdf(edoc(S, ("000.00.13",))))  # §5: a To under 11 characters → M.SaveDocError
    with pytest.raises(DeliveryRefused) as refused:
        adapter.deliver(Peer("000.00.13", "edocvn", url, {}), _outgoing(short, "000.00.13"))
    assert not refused.value.retryable and refused.value.detail["report_code"] == "M.SaveDocError"
    wrong = EdocvnAdapter(logins={S: Login(S, S, "wrong")}, endpoint=url)
    with pytest.raises(DeliveryConfigError) as config:
        wrong.deliver(Peer(R, "edocvn", url, {}), _outgoing(data, R))
    assert config.value.retryable and "wrong" not in str(config.value)


def test_payload_switch_both_ways():
    with serve_axis({S: TS, R: TR}, get_payload="raw") as (url, ax):
        data = render(with_pdf(edoc(S, (R,))))
        adapter = EdocvnAdapter(logins={S: Login(S, S, TS), R: Login(R, R, TR, get_payload="raw")}, endpoint=url)
        adapter.deliver(Peer(R, "edocvn", url, {"legacy_send_payload": "base64-text"}), _outgoing(data, R))
        stored = ax.documents["48213"].files[0][1].read_bytes()
        assert stored == base64.b64encode(PDF)  # what a peer that wants Base64 text parts gets
        [item] = adapter.poll(PackageKind.EDOC)
        got = read_bytes(item.data)
        assert got.attachments[0].data == base64.b64encode(PDF)  # the axis gave back exactly what it stored, raw


def test_poll_documents_acknowledge_confirms_and_a_refusal_stays_pending(axis):
    url, ax = axis
    with client(url, S, TS) as sender:
        first = sender.send_document(with_pdf(edoc(S, (R,))))
        second = sender.send_document(with_pdf(edoc(S, (R, R2))))
    adapter = _adapter(url, poll_agencies=(R,))
    items = list(adapter.poll(PackageKind.EDOC))
    assert [(i.peer_reference, i.recipient, i.kind) for i in items] == [
        (f"{R}|doc|{first}", R, PackageKind.EDOC), (f"{R}|doc|{second}", R, PackageKind.EDOC)]  # fmt: skip
    pkg = read_bytes(items[0].data)  # canonical QCVN 102 package, attachments inside
    assert isinstance(pkg, EdocPackage) and pkg.attachments[0].data == PDF
    adapter.acknowledge(items[0].peer_reference, True)
    adapter.acknowledge(items[1].peer_reference, False, "EDXML.SCHEMA: nope")
    assert ax.pending[R] == [second]  # refused: left pending there
    assert list(adapter.poll(PackageKind.EDOC)) == []  # …and not fetched again by this process
    assert [t.status.description for t in ax.traces] == ["Da nhan van ban ve he thong"]


def test_poll_statuses_consumes_and_holds_them_until_acknowledged(axis):
    url, ax = axis
    sent = edoc(S, (R,))
    with client(url, S, TS) as sender, client(url, R, TR) as recipient:
        sender.send_document(with_pdf(sent))
        recipient.update_traces(read_bytes(status(R, sent, StatusCode.ACCEPTED)))
    adapter = _adapter(url, poll_agencies=(S,))
    [item] = adapter.poll(PackageKind.STATUS)
    assert item.recipient == S and read_bytes(item.data).status_code is StatusCode.ACCEPTED
    assert not any(t.enabled for t in ax.traces)  # consumed at the axis
    [again] = adapter.poll(PackageKind.STATUS)  # not acknowledged (our database was down): offered again
    assert again.peer_reference == item.peer_reference
    adapter.acknowledge(item.peer_reference, True)
    assert list(adapter.poll(PackageKind.STATUS)) == []


def test_logins_from_the_credentials_tables():
    logins = logins_from({S: {"legacy_token": TS}, R: {"legacy_organ_id": "000.00.13.H53", "legacy_token": TR,
                          "legacy_get_payload": "raw"}, "x": {"hmac_key": "k"}})  # fmt: skip
    assert set(logins) == {S, R} and logins[R].get_payload == "raw"
    assert TS not in repr(logins[S])


# ================================================================================================ 20 MB


def test_a_20_mb_attachment_is_streamed_not_joined(axis):
    url, ax = axis
    ax.keep_bodies = False
    big = random.Random(20).randbytes(20 * 1024 * 1024)
    pkg = with_pdf(edoc(S, (R,)), big)
    with client(url, S, TS, read_timeout=60) as sender:
        tracemalloc.start()
        try:
            axis_id = sender.send_document(pkg)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert ax.file_digests(axis_id) == [hashlib.sha256(big).hexdigest()]
    # the body (20 MB + headers) never exists as one bytes object, on our side or the stand-in's
    assert peak < 4 * 1024 * 1024, peak
