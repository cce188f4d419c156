"""A real worker process polling a legacy e-doc.vn axis and pushing to it (issue 13: the ``[edocvn]`` poller of
gateway/worker/polling.py over adapters.edocvn), against the stand-in Bkav axis of tests/legacy_axis.py served on
127.0.0.1, on SQLite and on PostgreSQL.

The cast uses the spec's example organisations (legacy-edoc-vn.md §6.3–§6.8): A = 000.00.12.H53 (Sở Xây dựng) is a
legacy system on the axis, registered here on the ``edocvn`` channel; C = 000.00.13.H53 (Sở TT&TT) is hosted here
(mailbox, system ``sys-c``) and logs in to the axis with its ``legacy_token``, as the worker polls for it. C2 is
another agency hosted here, G one reached through the national axis (``vdxp``): the legacy axis may speak for
neither.

* documents and statuses both ways, attachments byte-identical: A's document reaches C's mailbox (GetPendingDocumentIds
  → GetDocument → intake → ConfirmReceived, so the axis records 01 for A), C's 03 goes to A by UpdateTraces; C's
  document reaches A's pending list (SendDocument), A's ConfirmReceived (01) and UpdateTraces (03) come back to C by
  GetTraces;
* a package the legacy axis may not send (it speaks for C2 or for G) is refused by intake, reported (audit row with
  the source, the channel and the axis id; a warning), and stays pending at the axis — the profile has no refusal;
* the acknowledgement (ConfirmReceived) lost after our commit: the document is polled again, taken in as a
  duplicate (not a conflict) and confirmed — stored once;
* kill -9 of the worker in the middle of a polled batch of 20, then a restart: every document stored exactly once,
  none left at the axis.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from legacy_axis import LegacyAxis, serve_axis
from soap_receiver import start_worker, wait_for, worker_env
from test_adapter_edocvn import with_pdf
from test_services import edoc, status

from adapters.edocvn import EdocvnAdapter, EdocvnClient, Login
from gateway.config import Settings
from gateway.db import AuditEntry
from gateway.edxml import PackageKind, StatusCode
from gateway.edxml.model import EdocPackage
from gateway.edxml.reader import read_bytes
from gateway.edxml.writer import render
from gateway.errors import AccessError, UnavailableError
from gateway.services.api import AckOutcome, Receipt
from gateway.services.gateway import GatewayService
from gateway.services.upstream import UpstreamPoller

A, TA = "000.00.12.H53", "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="  # §6.3/§6.8 example sender and token
C, TC = "000.00.13.H53", "RXhhbXBsZVRva2VuRm9yUmVjdjE="  # §6.4–§6.6 example receiver and token
C2, G = "000.01.13.H53", "000.00.00.G22"
SECRET_KEY = "test-secret-key-0123456789abcdef"


@dataclass
class Rig:
    """Our gateway's database (intake and mailbox in this process), the stand-in axis, worker processes."""

    tmp: Path
    svc: GatewayService
    url: str
    axis: LegacyAxis
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = start_worker(self.env, self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log")))

    def client(self, organ: str, token: str) -> EdocvnClient:
        return EdocvnClient(self.url, organ, token, read_timeout=10)

    def query(self, sql: str, **params: object) -> list[sa.Row]:
        with self.svc.store.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())

    def edocs_from(self, sender: str) -> list[sa.Row]:
        return self.query("SELECT doc_id, document_id FROM documents WHERE kind = 'edoc' AND sender = :s", s=sender)

    def pending_at_axis(self, organ: str) -> list[str]:
        with self.axis.lock:
            return list(self.axis.pending.get(organ, []))

    def get_document_calls(self, axis_id: str) -> int:
        with self.axis.lock:
            seen = list(self.axis.seen)
        return sum(1 for action, _, body in seen if action == "GetDocument" and f">{axis_id}<".encode() in body)


def _toml(url: str) -> str:
    return (
        f'[edocvn]\nendpoint = "{url}"\npoll_seconds = 0.3\npoll_limit = 50\n\n'
        f'[credentials."{C}"]\nlegacy_token = "{TC}"\n'
    )


@pytest.fixture
def rig(tmp_path, database_url, pki) -> Iterator[Rig]:
    with serve_axis({A: TA, C: TC}) as (url, axis):
        axis.keep_bodies = True
        settings = Settings(
            data_dir=tmp_path,
            database_url=database_url,
            secret_key=SECRET_KEY,
            gateway_key=pki.gateway_key,
            gateway_cert=pki.gateway_cert,
            trust_store=pki.trust,
            crl_files=tuple(pki.crls),
        )
        svc = GatewayService.from_settings(settings)
        svc.store.create_schema()
        svc.registry.import_records(
            [
                {"organ_id": C, "name": "Sở Thông tin và Truyền thông"},
                {"organ_id": C2, "name": "Ban Tiếp Công dân"},
                {"organ_id": A, "name": "Sở Xây dựng", "channel": "edocvn"},  # the [edocvn] endpoint
                {"organ_id": G, "name": "Văn phòng Chính phủ", "channel": "vdxp"},
            ]
        )
        svc.registry.add_system("sys-c", [C])
        config = tmp_path / "gateway.toml"
        config.write_text(_toml(url), encoding="utf-8")
        env = worker_env(
            database_url,
            tmp_path,
            config=config,
            secret_key=SECRET_KEY,
            gateway_key=pki.gateway_key,
            gateway_cert=pki.gateway_cert,
            trust_store=pki.trust,
            crl_files=",".join(str(c) for c in pki.crls),
            worker_poll_seconds=0.2,
        )
        rig = Rig(tmp_path, svc, url, axis, env)
        try:
            yield rig
        finally:
            rig.stop_workers()
            svc.close()
        assert TC not in rig.log() and TA not in rig.log()  # never a token in a log line


def _files(data: bytes) -> list[tuple[str, bytes]]:
    pkg = read_bytes(data)
    assert isinstance(pkg, EdocPackage)
    return [(a.attachment_name, a.data) for a in pkg.attachments]


def _statuses(svc: GatewayService, doc_id: str, recipient: str) -> list[StatusCode]:
    view = svc.document_view("sys-c", doc_id=doc_id)
    return sorted((s.status_code for r in view.recipients if r.recipient == recipient for s in r.statuses), key=str)


def test_documents_and_statuses_both_ways_byte_identical(rig: Rig):
    svc, axis = rig.svc, rig.axis
    pdf_a, pdf_c = random.Random(1).randbytes(300_000), random.Random(2).randbytes(200_000)
    worker = rig.start_worker()
    with rig.client(A, TA) as a:
        # 1. A (legacy) → C (ours): polled, taken in, confirmed at the axis
        sent_by_a = with_pdf(edoc(A, (C,)), pdf_a)
        axis_id = a.send_document(sent_by_a)
        wait_for(lambda: svc.pending("sys-c", C, PackageKind.EDOC), 30, f"A's document in C's mailbox\n{rig.log()}")
        [item] = svc.pending("sys-c", C, PackageKind.EDOC)
        assert (item.sender, item.recipient) == (A, C)
        stored = svc.fetch("sys-c", item.delivery_id)
        assert _files(stored) == [("125-SXD-VP.pdf", pdf_a)]
        assert read_bytes(stored).message_header.subject == sent_by_a.message_header.subject
        wait_for(lambda: rig.pending_at_axis(C) == [], 30, "ConfirmReceived")
        svc.acknowledge("sys-c", item.delivery_id, AckOutcome.DONE)
        # C answers 03: pushed to A as UpdateTraces, visible to A's GetTraces with the axis's own 01
        svc.submit("sys-c", status(C, stored, StatusCode.ACCEPTED))

        def traces_for_a() -> list[tuple[str, StatusCode]]:
            return sorted((s.sender, s.status_code) for s in a.traces(since=datetime(2000, 1, 1)).statuses)

        wait_for(lambda: len(traces_for_a()) == 2, 30, f"C's 03 at the axis\n{rig.log()}")
        assert traces_for_a() == [(C, StatusCode.ARRIVED), (C, StatusCode.ACCEPTED)]
        assert axis.documents[axis_id].delivered_to == {C}

        # 2. C (ours) → A (legacy): SendDocument, then A's 01 (ConfirmReceived) and 03 (UpdateTraces) come back
        data = render(with_pdf(edoc(C, (A,)), pdf_c))
        receipt = svc.submit("sys-c", data)
        wait_for(lambda: rig.pending_at_axis(A), 30, f"C's document pending for A at the axis\n{rig.log()}")
        [axis_id2] = rig.pending_at_axis(A)
        assert axis.file_digests(axis_id2) == [hashlib.sha256(pdf_c).hexdigest()]  # stored as sent
        got = a.get_document(axis_id2)
        assert [(f.attachment_name, f.data) for f in got.attachments] == [("125-SXD-VP.pdf", pdf_c)]
        a.confirm_received(axis_id2)
        a.update_traces(read_bytes(status(A, data, StatusCode.ACCEPTED)))
        wait_for(lambda: len(_statuses(svc, receipt.doc_id, A)) == 2, 30, f"A's statuses here\n{rig.log()}")
    assert _statuses(svc, receipt.doc_id, A) == [StatusCode.ARRIVED, StatusCode.ACCEPTED]
    assert {i.sender for i in svc.pending("sys-c", C, PackageKind.STATUS)} == {A}
    assert len(svc.pending("sys-c", C, PackageKind.STATUS)) == 2
    assert [d.state for d in svc.store.deliveries.for_document(receipt.doc_id)] == ["delivered"]
    assert len(axis.documents) == 2  # each pushed once
    assert worker.poll() is None
    assert "taken in as edoc" in rig.log() and "taken in as status" in rig.log()


def test_a_package_the_axis_may_not_send_is_refused_reported_and_left_pending(rig: Rig):
    svc = rig.svc
    with rig.client(A, TA) as a:
        as_local = a.send_document(with_pdf(edoc(C2, (C,))))  # speaks for an agency hosted here
        as_national = a.send_document(with_pdf(edoc(G, (C,))))  # for one behind the national axis
        fine = a.send_document(with_pdf(edoc(A, (C,))))
    rig.start_worker()

    def refused() -> dict[str, AuditEntry]:  # by axis id (the adapter's reference ends with it)
        rows = [e for e in svc.store.audit.entries() if e.action == "intake.refused"]
        return {str(e.detail.get("peer_reference")).rsplit("|", 1)[-1]: e for e in rows}

    wait_for(lambda: len(refused()) == 2 and len(rig.edocs_from(A)) == 1, 30, f"the refusals\n{rig.log()}")
    wait_for(lambda: rig.pending_at_axis(C) == [as_local, as_national], 30, "the accepted one confirmed")
    rows = refused()
    assert set(rows) == {as_local, as_national} and fine not in rows
    for axis_id, why in ((as_local, "hosted by this gateway"), (as_national, "on channel vdxp")):
        entry = rows[axis_id]
        assert entry.detail["channel"] == "edocvn" and entry.detail["source"] == f"edocvn:{rig.url}"
        assert entry.detail["for_recipient"] == C and entry.outcome == AccessError.code
        assert why in entry.detail["message"]
        assert f"legacy document {axis_id} for {C} refused by our intake, left pending at the axis" in rig.log()
    stored_before = svc.store.counts()["documents"]
    requests = len(rig.axis.seen)
    wait_for(lambda: len(rig.axis.seen) > requests + 6, 30, "more polling rounds")
    # not fetched again by this worker, nothing more stored, still pending at the axis
    assert (rig.get_document_calls(as_local), rig.get_document_calls(as_national)) == (1, 1)
    assert svc.store.counts()["documents"] == stored_before
    assert rig.pending_at_axis(C) == [as_local, as_national]


def test_a_lost_confirmation_is_polled_again_as_a_duplicate_and_stored_once(rig: Rig):
    svc, axis = rig.svc, rig.axis
    axis.fault, axis.fault_only = "500", "ConfirmReceived"  # the acknowledgement fails after our commit
    with rig.client(A, TA) as a:
        axis_id = a.send_document(with_pdf(edoc(A, (C,))))
    rig.start_worker()

    def duplicates() -> int:
        return sum(1 for e in svc.store.audit.entries() if e.action == "intake.duplicate")

    wait_for(lambda: duplicates() >= 2, 30, f"polled again after the failed ConfirmReceived\n{rig.log()}")
    assert rig.pending_at_axis(C) == [axis_id]
    axis.fault = None
    wait_for(lambda: rig.pending_at_axis(C) == [], 30, "ConfirmReceived once the axis answers")
    assert len(rig.edocs_from(A)) == 1
    assert not [e for e in svc.store.audit.entries() if e.action == "intake.refused"]
    assert len(svc.pending("sys-c", C, PackageKind.EDOC)) == 1


BATCH = 20


def test_kill_9_mid_polled_batch_loses_and_duplicates_nothing(rig: Rig):
    svc, axis = rig.svc, rig.axis
    files: dict[str, bytes] = {}
    with rig.client(A, TA) as a:
        for n in range(BATCH):
            payload = random.Random(100 + n).randbytes(50_000)
            axis_id = a.send_document(with_pdf(edoc(A, (C,), subject=f"Văn bản số {n}"), payload))
            files[axis_id] = payload
    axis.fault, axis.slow_seconds = "slow", 0.15  # every call slowed: the batch takes seconds
    first = rig.start_worker()
    wait_for(lambda: len(rig.edocs_from(A)) >= 5, 60, f"part of the batch\n{rig.log()}")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    at_kill, left_at_kill = len(rig.edocs_from(A)), len(rig.pending_at_axis(C))
    assert at_kill < BATCH and left_at_kill > 0, (at_kill, left_at_kill)  # the kill hit the middle of the batch
    axis.fault = None
    rig.start_worker()
    wait_for(lambda: rig.pending_at_axis(C) == [] and len(rig.edocs_from(A)) == BATCH, 60, f"the rest\n{rig.log()}")

    rows = rig.edocs_from(A)
    assert sorted(r.document_id for r in rows) == sorted(files)  # Bkav's database path: DocumentId = axis id
    items = svc.pending("sys-c", C, PackageKind.EDOC)
    assert len(items) == BATCH and len({i.doc_id for i in items}) == BATCH  # one delivery each
    for item in items:
        assert _files(svc.fetch("sys-c", item.delivery_id)) == [("125-SXD-VP.pdf", files[item.document_id])]
    assert not [e for e in svc.store.audit.entries() if e.action == "intake.refused"]


def test_no_get_traces_while_a_consumed_status_is_not_committed(rig: Rig):
    """In-process (the worker's poller over the edocvn adapter): statuses consumed by GetTraces that our intake
    could not take in yet (database down: the round ends; a defect of ours: the round goes on) are offered again,
    and no further GetTraces is sent until they are committed — so at most one answer is ever at risk (the
    residual at-most-once risk of consume mode)."""
    sent = edoc(C, (A,))
    rig.svc.submit("sys-c", sent)  # known here (no worker runs: its push stays queued)
    with rig.client(C, TC) as c, rig.client(A, TA) as a:
        c.send_document(read_bytes(sent))  # type: ignore[arg-type]
        a.update_traces(read_bytes(status(A, sent, StatusCode.ACCEPTED)))  # type: ignore[arg-type]
    adapter = EdocvnAdapter(logins={C: Login(C, C, TC)}, endpoint=rig.url, read_timeout=10)
    trouble: list[Exception] = [UnavailableError("database down"), RuntimeError("a defect of ours")]

    def ingest(data: bytes, ref: str, recipient: str | None) -> Receipt:
        if trouble:
            raise trouble.pop(0)
        return rig.svc.ingest_upstream(data, source="test", channel="edocvn", reference=ref, recipient=recipient)

    def get_traces() -> int:
        return sum(1 for action, _, _ in rig.axis.seen if action == "GetTraces")

    poller = UpstreamPoller(adapter, ingest, name="edocvn")
    try:
        first = poller.poll_once()
        assert (first.polled, first.deferred, get_traces()) == (1, 1, 1)  # consumed at the axis, held here
        again = poller.poll_once()
        assert (again.polled, again.deferred, get_traces()) == (1, 1, 1)  # offered again; GetTraces waits
        third = poller.poll_once()
        assert (third.polled, third.ingested, get_traces()) == (1, 1, 2)  # committed, then GetTraces again
    finally:
        adapter.close()
    [doc] = [d for d in rig.edocs_from(C)]
    assert _statuses(rig.svc, doc.doc_id, A) == [StatusCode.ACCEPTED]
