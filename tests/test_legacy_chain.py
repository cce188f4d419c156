"""Two of our gateways chained through the legacy e-doc.vn profile (issue 13 "Show" 2): gateway L plays the old
provincial legacy axis (its legacy edge, gateway/web/legacy.py at ``/legacy/edoc``), gateway P is our province
gateway, which reaches L's agencies on the ``edocvn`` channel and polls L for its own (gateway/worker/polling.py
over adapters.edocvn). Both are served by gunicorn on 127.0.0.1; P's worker is a real process (kill -9 is real).
L runs on SQLite and on PostgreSQL (``database_url``), P on SQLite.

The cast (the spec's example organisations, legacy-edoc-vn.md §6.3–§6.8):

* A = 000.00.12.H53, a district with a legacy system on L (``qlvb-a``, logging in with the §6.3 example token);
* C = 000.00.13.H53, a mailbox agency on P with a modern SOAP system (``qlvb-c``); on L, C is a mailbox agency
  too, and P logs in to L as C with the token of L's legacy system ``p-as-c`` (``--legacy-organ C``): P's
  ``[credentials."C"] legacy_token``. Both agencies have "emit 01 on acknowledge" on L, as Bkav's
  ConfirmReceived records 01 (§6.6).

Shown: C → A (modern SOAP on P → SendDocument to L → A's legacy client) byte-identical, A's 01 (ConfirmReceived) and
03 (UpdateTraces) back to the modern system; A → C (legacy client on L → P's poll → the modern system) byte-identical,
C's 01 (P's ConfirmReceived) and 03 (the modern system's, pushed by UpdateTraces) back to A's GetTraces; and kill -9
of P's worker in the middle of a batch of 20 documents C → A: after a restart each is at L exactly once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from gatewayproc import gateway_env, served
from soap_receiver import start_worker, wait_for
from test_adapter_edocvn import with_pdf
from test_services import edoc, status

from adapters.edocvn import EdocvnClient
from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.edxml import EdocPackage, StatusCode, read_bytes, render
from gateway.services.registry import Registry

A, TOKEN_A = "000.00.12.H53", "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="  # §6.3 / §6.8 examples
C, TOKEN_C = "000.00.13.H53", "RXhhbXBsZVRva2VuRm9yUmVjdjE="  # §6.4–§6.7 examples
MAX_PACKAGE = 8 * 1024 * 1024
#: P's worker: quick polls and retries, short leases (a killed worker's claims come back within seconds).
WORKER = {
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "WORKER_LEASE_SECONDS": "5",
    "RETRY_BASE_SECONDS": "0.5",
    "RETRY_MAX_SECONDS": "2",
    "DELIVERY_THREADS": "1",
}


@dataclass
class Gateway:
    url: str
    settings: Settings
    env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)

    def query(self, sql: str, **params: object) -> list[sa.Row]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()


@contextlib.contextmanager
def gateway(
    data_dir: Path,
    database_url: str,
    pki,
    agencies: list[dict],
    systems: dict[str, dict],
    config: str | None = None,
    **settings: str,
) -> Iterator[Gateway]:
    """A migrated database with ``agencies`` and ``systems`` (``add_system`` keywords), served by gunicorn."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = gateway_env(
        data_dir, database_url, pki, max_package_bytes=MAX_PACKAGE, RATE_PER_SYSTEM="0", **WORKER, **settings
    )
    if config is not None:
        (data_dir / "gateway.toml").write_text(config, encoding="utf-8")
        env["EDOC_GATEWAY_CONFIG"] = str(data_dir / "gateway.toml")
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(agencies)
        secrets = {sid: registry.add_system(sid, **kw) for sid, kw in systems.items()}
    gw = Gateway(f"http://{settings.bind}", settings, env, secrets)
    with served(settings, env, data_dir / "gunicorn.log"):
        yield gw


@dataclass
class Chain:
    l: Gateway  # noqa: E741 - the spec's name for the legacy axis
    p: Gateway
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def legacy_url(self) -> str:
        return self.l.url + "/legacy/edoc"

    def start_worker(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")} | self.p.env
        proc = start_worker(env, self.tmp / f"p-worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.tmp.glob("p-worker-*.log")))

    def district(self) -> EdocvnClient:
        """A's legacy system on L."""
        return EdocvnClient(self.legacy_url, A, TOKEN_A, read_timeout=30)

    def modern(self) -> GatewayClient:
        """C's modern SOAP system on P."""
        return GatewayClient(self.p.url + "/soap", "qlvb-c", self.p.secrets["qlvb-c"])

    def at_l(self, sender: str) -> list[sa.Row]:
        """The edocs L stored from ``sender``, with their delivery to the other agency."""
        return self.l.query(
            "SELECT d.document_id, count(*) AS n FROM documents d WHERE d.kind = 'edoc' AND d.sender = :s "
            "GROUP BY d.document_id",
            s=sender,
        )


@pytest.fixture
def chain(tmp_path, database_url, pki) -> Iterator[Chain]:
    legacy_agencies = [
        {"organ_id": o, "name": n, "signature_policy": "off", "emit_arrived_on_ack": True}
        for o, n in ((A, "Phòng Nội vụ huyện (hệ thống cũ)"), (C, "Sở Thông tin và Truyền thông"))
    ]
    legacy_systems = {
        "qlvb-a": {"agencies": [], "legacy_organ": A, "secret": TOKEN_A},
        "p-as-c": {"agencies": [], "legacy_organ": C, "secret": TOKEN_C},
    }
    # L answers GetDocument as Bkav does (files as Base64 text labelled binary, §7.3), which legacy clients and our
    # adapter (its default get_payload) decode.
    with gateway(tmp_path / "L", database_url, pki, legacy_agencies, legacy_systems, LEGACY_BASE64_TEXT="*") as l_gw:
        config = (
            f'[edocvn]\nendpoint = "{l_gw.url}/legacy/edoc"\npoll_seconds = 0.3\npoll_limit = 50\n\n'
            f'[credentials."{C}"]\nlegacy_token = "{TOKEN_C}"\n'
        )
        province_agencies = [
            {"organ_id": C, "name": "Sở Thông tin và Truyền thông", "signature_policy": "off"},
            {"organ_id": A, "name": "Phòng Nội vụ huyện", "channel": "edocvn", "signature_policy": "off"},
        ]
        p_url = f"sqlite:///{tmp_path / 'province.db'}"
        with gateway(tmp_path / "P", p_url, pki, province_agencies, {"qlvb-c": {"agencies": [C]}}, config) as p_gw:
            chain = Chain(l_gw, p_gw, tmp_path)
            try:
                yield chain
            finally:
                for proc in chain.workers:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                for proc in chain.workers:
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            assert TOKEN_C not in chain.log()  # never the token in a log line


def _files(pkg: EdocPackage) -> list[tuple[str, bytes]]:
    return [(a.attachment_name, a.data) for a in pkg.attachments]


def _replay(client: EdocvnClient) -> list[tuple[str, StatusCode]]:
    """A's statuses at L, replay mode (consumes nothing)."""
    return sorted((s.sender, s.status_code) for s in client.traces(since=datetime(2000, 1, 1)).statuses)


def test_documents_and_statuses_flow_both_ways_byte_identical(chain: Chain):
    pdf_c, pdf_a = random.Random(11).randbytes(400_000), random.Random(12).randbytes(300_000)
    chain.start_worker()
    with chain.district() as district, contextlib.closing(chain.modern()) as modern:
        # ---- C (modern SOAP on P) → A (legacy on L)
        sent = render(with_pdf(edoc(C, (A,)), pdf_c))
        modern.send_edoc(sent)
        wait_for(lambda: district.pending() != [], 60, f"C's document pending for A at L\n{chain.log()}")
        [number] = district.pending()
        got = district.get_document(number)
        assert _files(got) == [("125-SXD-VP.pdf", pdf_c)]  # byte-identical through both gateways
        assert (got.sender, got.recipients) == (C, (A,))
        district.confirm_received(number)  # L emits 01 for C
        district.update_traces(read_bytes(status(A, sent, StatusCode.ACCEPTED)))  # type: ignore[arg-type]
        document_id = read_bytes(sent).document_id

        def reported() -> list[str]:
            rows = modern.status_history(document_id=document_id).recipient
            return sorted(s.statusCode for r in rows if r.organId == A for s in r.status)

        wait_for(lambda: reported() == ["01", "03"], 60, f"A's 01 and 03 at P\n{chain.log()}")
        assert len(modern.pending(C, kind="status")) == 2

        # ---- A (legacy on L) → C (modern SOAP on P)
        from_a = with_pdf(edoc(A, (C,)), pdf_a)
        district.send_document(from_a)
        wait_for(lambda: modern.pending(C) != [], 60, f"A's document in C's mailbox at P\n{chain.log()}")
        [item] = modern.pending(C)
        raw = modern.get_edoc(item.deliveryId)
        got_c = read_bytes(raw)
        assert isinstance(got_c, EdocPackage)
        assert _files(got_c) == [("125-SXD-VP.pdf", pdf_a)]  # byte-identical
        assert (got_c.sender, got_c.message_header.subject) == (A, from_a.message_header.subject)
        assert modern.acknowledge(item.deliveryId, "done") is True
        modern.send_status(status(C, raw, StatusCode.ACCEPTED))
        # C's 01 (P's ConfirmReceived at L) and 03 (pushed by UpdateTraces) reach A's GetTraces on L
        wait_for(lambda: _replay(district) == [(C, StatusCode.ARRIVED), (C, StatusCode.ACCEPTED)], 60,
                 f"C's statuses at L\n{chain.log()}")  # fmt: skip
        assert district.pending() == []
    assert [(r.document_id, r.n) for r in chain.at_l(C)] == [(document_id, 1)]
    assert [r.n for r in chain.at_l(A)] == [1]
    dead = chain.p.query("SELECT count(*) FROM deliveries WHERE state = 'dead'")[0][0]
    assert dead == 0


BATCH = 20


def test_kill_9_of_the_province_worker_mid_batch_every_document_once_at_l(chain: Chain):
    with contextlib.closing(chain.modern()) as modern:
        sent = {}
        for n in range(BATCH):
            data = render(with_pdf(edoc(C, (A,), subject=f"Văn bản số {n}"), random.Random(n).randbytes(500_000)))
            modern.send_edoc(data)
            sent[read_bytes(data).document_id] = data
    first = chain.start_worker()
    wait_for(lambda: len(chain.at_l(C)) >= 3, 60, f"part of the batch at L\n{chain.log()}", interval=0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    at_kill = len(chain.at_l(C))
    print(f"P's worker killed with {at_kill} of {BATCH} documents at L")
    assert at_kill < BATCH, "the kill came after the whole batch: nothing shown"
    chain.start_worker()

    def delivered() -> int:
        return chain.p.query("SELECT count(*) FROM deliveries WHERE recipient = :a AND state = 'delivered'", a=A)[0][0]

    wait_for(lambda: delivered() == BATCH, 90, f"the rest of the batch\n{chain.log()}")
    rows = chain.at_l(C)
    assert sorted(r.document_id for r in rows) == sorted(sent)  # every one, none lost
    assert all(r.n == 1 for r in rows)  # none twice
    with chain.district() as district:
        pending = district.pending()
        assert len(pending) == BATCH and len(set(pending)) == BATCH
        for number in pending[:3]:  # and what A gets is what C sent
            got = district.get_document(number)
            original = read_bytes(sent[got.document_id]) if got.document_id in sent else None
            assert original is not None and _files(got) == _files(original)  # type: ignore[arg-type]
    assert chain.p.query("SELECT count(*) FROM deliveries WHERE state = 'dead'")[0][0] == 0
