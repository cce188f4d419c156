"""Two gateways chained (issue 4 "Show"): a province gateway P under a national gateway N, through N's VDXP edge.

P reaches the national agency G22 on the ``vdxp`` channel with the ``[vdxp]`` table of its TOML configuration
(N's ``/vdxp`` URL and the system ``province-axis`` that N registered for the Tây Ninh tree); its worker (run
in-process, ``once=True``) pushes to N with the VDXP adapter and polls N for what waits there for its agencies.
Both gateways are real gunicorn processes with their own data directory; the local systems are real zeep clients.
N runs on SQLite and on PostgreSQL (``database_url``), P on SQLite.

Both directions, byte for byte: an edoc of 000.00.01.H53 reaches G22 at N, G22's statuses 01 and 03 come back to
the sender at P; an edoc of G22 reaches 000.00.01.H53 at P, and its status 01 goes back up to G22. Each poll
drains (acknowledges) the province-axis mailbox at N, and polling again takes in nothing new.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from gatewayproc import gateway_env, served

from adapters.vdxp import VdxpClient
from gateway.client import GatewayClient
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package, status_for
from gateway.edxml import EdocPackage, Organization, PackageKind, StatusCode, read_bytes, render
from gateway.services.registry import Registry
from gateway.worker import run_worker
from gateway.xmlcheck.signing import SigningKey, sign_package

G22, H53, A, A2 = "000.00.00.G22", "000.00.00.H53", "000.00.01.H53", "000.01.01.H53"
AXIS, AXIS_SECRET = "province-axis", "province-axis-secret-0123456789"

NATIONAL_AGENCIES = [
    {"organ_id": G22, "name": "Văn phòng Chính phủ", "signature_policy": "verify-if-present"},
    {"organ_id": H53, "name": "UBND tỉnh Tây Ninh"},
    {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
    {"organ_id": A2, "name": "Ban Tiếp Công dân"},
]
NATIONAL_SYSTEMS: dict[str, tuple[list[str], str | None]] = {AXIS: ([H53], AXIS_SECRET), "vpcp": ([G22], None)}
PROVINCE_AGENCIES = [
    {"organ_id": H53, "name": "UBND tỉnh Tây Ninh"},
    {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
    {"organ_id": A2, "name": "Ban Tiếp Công dân"},
    # as `agencies sync-vdxp` would register it: reached through the national axis
    {"organ_id": G22, "name": "Văn phòng Chính phủ", "channel": "vdxp"},
]
PROVINCE_SYSTEMS: dict[str, tuple[list[str], str | None]] = {"tayninh": ([A], None)}


@dataclass
class Gateway:
    url: str
    settings: Settings
    secrets: dict[str, str]
    clients: list[GatewayClient] = dataclasses.field(default_factory=list)

    @property
    def vdxp(self) -> str:
        return self.url + "/vdxp"

    def client(self, system: str) -> GatewayClient:
        client = GatewayClient(self.url + "/soap", system, self.secrets[system])
        self.clients.append(client)
        return client

    def query(self, sql: str, **params: object) -> list[tuple]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def stored(self) -> tuple[int, int, int]:
        return tuple(  # type: ignore[return-value]
            self.query(f"SELECT count(*) FROM {table}")[0][0] for table in ("documents", "deliveries", "status_history")
        )


@contextlib.contextmanager
def running_gateway(
    data_dir: Path,
    database_url: str,
    pki,
    agencies: list[dict],
    systems: dict[str, tuple[list[str], str | None]],
    config: str | None = None,
) -> Iterator[Gateway]:
    """A migrated database with ``agencies`` and ``systems``, served by gunicorn; ``config`` is the TOML file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = gateway_env(data_dir, database_url, pki, max_package_bytes=256 * 1024)
    if config is not None:
        (data_dir / "gateway.toml").write_text(config, encoding="utf-8")
        env["EDOC_GATEWAY_CONFIG"] = str(data_dir / "gateway.toml")
    settings = load_settings(env=env)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_records(agencies)
        creds = {sid: registry.add_system(sid, organs, secret=secret) for sid, (organs, secret) in systems.items()}
    log = data_dir / "gunicorn.log"
    gw = Gateway(f"http://{settings.bind}", settings, creds)
    try:
        with served(settings, env, log):
            yield gw
    finally:
        for client in gw.clients:
            client.close()


@pytest.fixture
def chain(tmp_path, database_url, pki) -> Iterator[tuple[Gateway, Gateway]]:
    """(province P on SQLite, national N on ``database_url``); P's TOML names N as its upstream VDXP axis."""
    with running_gateway(tmp_path / "national", database_url, pki, NATIONAL_AGENCIES, NATIONAL_SYSTEMS) as n:
        config = f'[vdxp]\nendpoint = "{n.vdxp}"\nsystem_id = "{AXIS}"\nsecret = "{AXIS_SECRET}"\npoll_seconds = 1\n'
        with running_gateway(
            tmp_path / "province",
            f"sqlite:///{tmp_path / 'province.db'}",
            pki,
            PROVINCE_AGENCIES,
            PROVINCE_SYSTEMS,
            config,
        ) as p:
            yield p, n


def _signed(pki, data: bytes, organ_id: str) -> bytes:
    cred = pki.agencies[organ_id]
    return sign_package(data, SigningKey.from_files(cred.key, cred.cert, pki.chain))


def _edoc(pki, sender: str, to: tuple[str, ...], number: str) -> tuple[bytes, EdocPackage]:
    base = demo_package()
    h = dataclasses.replace(
        base.message_header,
        from_=Organization(organ_id=sender, organ_name=sender),
        to=tuple(Organization(organ_id=o, organ_name=o) for o in to),
        document_id=f"{sender},2026/11/28,{number}/VP-HCTC",
        code=dataclasses.replace(base.message_header.code, code_number=number),
    )
    pkg = dataclasses.replace(base, message_header=h)
    return _signed(pki, render(pkg), sender), pkg


def _axis_mailbox(n: Gateway, kind: PackageKind) -> list:
    """What waits at N for the province-axis system (what P's poller would find)."""
    with VdxpClient(n.vdxp, AXIS, AXIS_SECRET) as client:
        return client.received_list(kind)


def _delivery_states(gw: Gateway, document_id: str) -> dict[str, str]:
    rows = gw.query(
        "SELECT d.recipient, d.state FROM deliveries d JOIN documents doc ON doc.doc_id = d.doc_id "
        "WHERE doc.document_id = :document_id AND doc.kind = 'edoc'",
        document_id=document_id,
    )
    return dict(rows)


def test_province_and_national_gateways_exchange_documents_and_statuses(chain, pki):
    p, n = chain
    tayninh, vpcp = p.client("tayninh"), n.client("vpcp")

    # ---- up: 000.00.01.H53 (at P) → G22 (at N)
    data, pkg = _edoc(pki, A, (G22,), "801")
    tayninh.send_edoc(data)
    stats = run_worker(p.settings, once=True)
    assert (stats.delivered, stats.dead, stats.polled) == (1, 0, 0)
    assert _delivery_states(p, pkg.document_id) == {G22: "delivered"}

    [item] = vpcp.pending(G22)
    assert vpcp.get_edoc(item.deliveryId) == data  # byte-identical through both gateways
    assert vpcp.acknowledge(item.deliveryId, "done") is True
    statuses = {code: render(status_for(pkg, G22, code)) for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED)}
    for raw in statuses.values():
        vpcp.send_status(raw)
    waiting = _axis_mailbox(n, PackageKind.STATUS)
    assert sorted((i.sender, i.recipient) for i in waiting) == [(G22, A), (G22, A)]

    stats = run_worker(p.settings, once=True)
    assert (stats.polled, stats.ingested, stats.ingest_refused) == (2, 2, 0)
    assert _axis_mailbox(n, PackageKind.STATUS) == []  # acknowledged: drained at N
    assert {state for (state,) in n.query("SELECT state FROM deliveries WHERE recipient = :a", a=A)} == {"delivered"}

    view = tayninh.status_history(document_id=pkg.document_id)
    [row] = view.recipient
    assert (row.organId, row.state) == (G22, "delivered")
    assert [s.statusCode for s in row.status] == ["01", "03"]
    arrived = tayninh.pending(A, kind="status")
    assert sorted(tayninh.get_edoc(i.deliveryId) for i in arrived) == sorted(statuses.values())  # byte-identical
    audit = p.query("SELECT system_id, detail FROM audit_log WHERE action = 'intake.accepted' AND system_id LIKE '@%'")
    assert len(audit) == 2 and all(system == "@upstream" and "province-axis" in str(d) for system, d in audit)

    # polling again takes in nothing new, and nothing is pushed twice
    before = p.stored()
    stats = run_worker(p.settings, once=True)
    assert (stats.polled, stats.ingested, stats.delivered) == (0, 0, 0)
    assert p.stored() == before

    # ---- down: G22 (at N) → 000.00.01.H53 (at P), and its status back up
    data2, pkg2 = _edoc(pki, G22, (A,), "802")
    vpcp.send_edoc(data2)
    assert [(i.sender, i.recipient) for i in _axis_mailbox(n, PackageKind.EDOC)] == [(G22, A)]
    stats = run_worker(p.settings, once=True)
    assert (stats.polled, stats.ingested) == (1, 1)
    assert _axis_mailbox(n, PackageKind.EDOC) == []
    assert _delivery_states(n, pkg2.document_id) == {A: "delivered"}  # P acknowledged done at N

    [incoming] = tayninh.pending(A)
    assert incoming.documentId == pkg2.document_id
    assert tayninh.get_edoc(incoming.deliveryId) == data2  # byte-identical
    assert tayninh.acknowledge(incoming.deliveryId, "done") is True
    answer = _signed(pki, render(status_for(pkg2, A, StatusCode.ARRIVED)), A)  # A's policy is "require"
    tayninh.send_status(answer)
    stats = run_worker(p.settings, once=True)
    assert (stats.delivered, stats.dead, stats.polled) == (1, 0, 0)  # pushed upstream on the vdxp channel

    [status_item] = vpcp.pending(G22, kind="status")
    assert vpcp.get_edoc(status_item.deliveryId) == answer
    rows = {r.organId: r for r in vpcp.status_history(document_id=pkg2.document_id).recipient}
    assert rows[A].state == "delivered"
    assert [s.statusCode for s in rows[A].status] == ["01"]
    assert read_bytes(answer).status_code is StatusCode.ARRIVED

    # the whole exchange, once more: nothing new on either side
    before_p, before_n = p.stored(), n.stored()
    stats = run_worker(p.settings, once=True)
    assert (stats.polled, stats.ingested, stats.delivered) == (0, 0, 0)
    assert (p.stored(), n.stored()) == (before_p, before_n)
