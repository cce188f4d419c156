"""Taking in packages polled from the upstream VDXP axis (issue 4): :meth:`GatewayService.ingest_upstream`,
:class:`gateway.services.upstream.UpstreamPoller` and the worker's ``[vdxp]`` polling settings, in-process.

The cast (a provincial gateway): A (000.00.01.H53) and C (000.01.01.H53) are hosted here (mailbox); B
(000.00.00.G22) and G (000.00.00.G09) are reached through the upstream axis (channel ``vdxp``).
The two-gateway run over HTTP is tests/test_chain.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from test_services import edoc, status

from gateway.config import Settings
from gateway.edxml import PackageKind, StatusCode
from gateway.errors import AccessError, ConfigError, EdxmlParseError, RouteError, UnavailableError
from gateway.ports import IncomingPackage
from gateway.services.gateway import GatewayService
from gateway.services.routing import UPSTREAM_SYSTEM
from gateway.services.upstream import UpstreamPoller
from gateway.worker import run_worker
from gateway.worker.polling import poll_config, poll_configs

A, C, B, G = "000.00.01.H53", "000.01.01.H53", "000.00.00.G22", "000.00.00.G09"
H99 = "000.00.00.H99"  # known to nobody here
SOURCE = "vdxp:province-axis@http://axis.example/vdxp"
STORED = ("documents", "deliveries", "status_history", "outbox")


@pytest.fixture
def svc(tmp_path, database_url, pki) -> Iterator[GatewayService]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key="test-secret-key-0123456789abcdef",
        gateway_key=pki.gateway_key,
        gateway_cert=pki.gateway_cert,
        trust_store=pki.trust,
        crl_files=tuple(pki.crls),
    )
    service = GatewayService.from_settings(settings)
    service.store.create_schema()
    service.registry.import_records(
        [
            {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh"},
            {"organ_id": C, "name": "Ban Tiếp Công dân"},
            {"organ_id": B, "name": "Văn phòng Chính phủ", "channel": "vdxp"},
            {"organ_id": G, "name": "Bộ Ngoại giao", "channel": "vdxp"},
        ]
    )
    service.registry.add_system("sys-a", [A])
    yield service
    service.close()


def _stored(svc: GatewayService) -> dict[str, int]:
    counts = svc.store.counts()
    return {t: counts[t] for t in STORED}


def _deliveries(svc: GatewayService, doc_id: str) -> dict[str, str]:
    return {d.recipient: d.state for d in svc.store.deliveries.for_document(doc_id)}


def test_an_upstream_edoc_is_delivered_to_the_recipients_hosted_here_only(svc):
    data = edoc(B, (A, G, H99, C))
    receipt = svc.ingest_upstream(data, source=SOURCE, reference="axis-1", recipient=A)
    assert not receipt.duplicate
    # G is the upstream's to deliver (no echo back up), H99 unknown here: neither gets a delivery
    assert _deliveries(svc, receipt.doc_id) == {A: "queued", C: "queued"}
    assert svc.store.documents.document(receipt.doc_id).submitted_by == UPSTREAM_SYSTEM
    assert [i.document_id for i in svc.pending("sys-a", A, PackageKind.EDOC)] == [receipt.document_id]
    before = _stored(svc)
    again = svc.ingest_upstream(data, source=SOURCE, reference="axis-2", recipient=C)  # C's item: same package
    assert again.duplicate and again.doc_id == receipt.doc_id
    assert _stored(svc) == before


def test_the_upstream_may_not_speak_for_local_agencies_nor_hand_over_what_is_not_ours(svc):
    before = _stored(svc)
    with pytest.raises(AccessError, match="hosted by this gateway"):
        svc.ingest_upstream(edoc(A, (C,)), source=SOURCE, reference="x1")
    with pytest.raises(RouteError, match="none of the recipients"):
        svc.ingest_upstream(edoc(B, (G, H99)), source=SOURCE, reference="x2")
    with pytest.raises(RouteError, match="not a recipient hosted here"):
        svc.ingest_upstream(edoc(B, (A, G)), source=SOURCE, reference="x3", recipient=G)
    with pytest.raises(AccessError):
        svc.submit("sys-a", edoc(B, (A,)))  # and no local system acts for an upstream agency
    assert _stored(svc) == before
    refused = [
        e
        for e in svc.store.audit.entries()
        if e.action == "intake.refused" and e.system_id == UPSTREAM_SYSTEM and e.detail.get("source") == SOURCE
    ]
    assert {e.detail["peer_reference"] for e in refused} == {"x1", "x2", "x3"}


def test_upstream_statuses_reach_the_local_sender_and_local_answers_go_up(svc):
    sent = edoc(A, (B, C))
    doc = svc.submit("sys-a", sent)
    assert {r for r, _ in _deliveries(svc, doc.doc_id).items()} == {B, C}
    arrived = status(B, sent, StatusCode.ARRIVED)
    receipt = svc.ingest_upstream(arrived, source=SOURCE, reference="s1", recipient=A)
    assert receipt.kind is PackageKind.STATUS
    assert _deliveries(svc, receipt.doc_id) == {A: "queued"}  # A's status mailbox (mailbox channel)
    view = svc.document_view("sys-a", doc_id=doc.doc_id)
    assert [s.status_code for r in view.recipients if r.recipient == B for s in r.statuses] == [StatusCode.ARRIVED]
    with pytest.raises(RouteError, match="goes to"):
        svc.ingest_upstream(status(B, sent, StatusCode.ACCEPTED), source=SOURCE, reference="s2", recipient=C)

    # an upstream document answered here: the status goes to the upstream sender, through the outbox
    incoming = edoc(B, (A,))
    svc.ingest_upstream(incoming, source=SOURCE, reference="e1", recipient=A)
    answer = svc.submit("sys-a", status(A, incoming, StatusCode.ACCEPTED))
    [delivery] = svc.store.deliveries.for_document(answer.doc_id)
    assert (delivery.recipient, delivery.state) == (B, "queued")
    assert svc.store.counts()["outbox"] >= 2  # the edoc for B and this status, both for the vdxp adapter


@dataclass
class FakeUpstream:
    """A PollingAdapter holding items per kind; records acknowledgements and can fail on purpose."""

    items: dict[PackageKind, list[IncomingPackage]]
    acks: list[tuple[str, bool, str | None]] = field(default_factory=list)

    def poll(self, kind: PackageKind, limit: int = 100) -> Iterator[IncomingPackage]:
        yield from list(self.items.get(kind, []))[:limit]

    def acknowledge(self, peer_reference: str, ok: bool, reason: str | None = None) -> None:
        self.acks.append((peer_reference, ok, reason))
        for items in self.items.values():
            items[:] = [i for i in items if i.peer_reference != peer_reference]


def test_the_poller_acknowledges_done_refuses_for_good_and_leaves_what_may_pass(svc):
    good = edoc(B, (A,))
    upstream = FakeUpstream(
        {
            PackageKind.EDOC: [
                IncomingPackage("e1", PackageKind.EDOC, good, A),
                IncomingPackage("e2", PackageKind.EDOC, b"<not xml", A),
                IncomingPackage("e3", PackageKind.EDOC, edoc(A, (C,)), C),
            ],
            PackageKind.STATUS: [IncomingPackage("s1", PackageKind.STATUS, status(B, good, StatusCode.ARRIVED), A)],
        }
    )

    def ingest(data: bytes, ref: str, recipient: str | None):
        return svc.ingest_upstream(data, source=SOURCE, reference=ref, recipient=recipient)

    result = UpstreamPoller(upstream, ingest).poll_once()
    # s1: B reporting a status on its own document (only recipients report one): refused
    assert (result.polled, result.ingested, result.refused, result.deferred) == (4, 1, 3, 0)
    codes = {ref: (ok, (reason or "").split(":")[0]) for ref, ok, reason in upstream.acks}
    assert codes["e1"] == (True, "")
    assert codes["e2"] == (False, EdxmlParseError.code)
    assert codes["e3"] == (False, AccessError.code)
    assert codes["s1"][0] is False

    # the ack of an already stored package was lost: polled again, it is a duplicate and acknowledged again
    upstream.items[PackageKind.EDOC] = [IncomingPackage("e1", PackageKind.EDOC, good, A)]
    again = UpstreamPoller(upstream, ingest).poll_once()
    assert (again.polled, again.ingested, again.duplicates) == (1, 0, 1)
    assert upstream.acks[-1] == ("e1", True, None)

    # our database is down: nothing is acknowledged, the round ends, the item stays for the next one
    upstream.items[PackageKind.EDOC] = [IncomingPackage("e9", PackageKind.EDOC, edoc(B, (A,)), A)]

    def down(data: bytes, ref: str, recipient: str | None):
        raise UnavailableError("database down")

    acks = len(upstream.acks)
    result = UpstreamPoller(upstream, down).poll_once()
    assert (result.polled, result.deferred) == (1, 1)
    assert len(upstream.acks) == acks and upstream.items[PackageKind.EDOC]


def test_polling_settings(tmp_path):
    def settings(**table: object) -> Settings:
        return Settings(data_dir=tmp_path, extra={"vdxp": table})

    def upstream_config(s: Settings):
        return poll_config(s, "vdxp")

    full = {"endpoint": "http://axis/vdxp", "system_id": "s", "secret": "x" * 20}
    assert upstream_config(Settings(data_dir=tmp_path)) is None
    assert upstream_config(settings(endpoint="http://axis/vdxp")) is None  # no credentials: push-only, no polling
    assert upstream_config(settings(**full, poll=False)) is None
    config = upstream_config(settings(**full, poll_seconds=5, poll_limit=7))
    assert config is not None and (config.interval, config.limit, config.channel) == (5.0, 7, "vdxp")
    assert config.source == "vdxp:s@http://axis/vdxp"
    for bad in ({"poll": "yes"}, {"poll_seconds": 0}, {"poll_limit": "many"}):
        with pytest.raises(ConfigError):
            upstream_config(settings(**full, **bad))

    # a legacy axis: its table names the endpoint (the logins are the legacy_token credentials); own settings
    legacy = {"endpoint": "http://legacy/services/EdocProxy", "poll_seconds": 2, "poll_limit": 3}
    both = Settings(data_dir=tmp_path, extra={"vdxp": full, "edocvn": legacy})
    assert [(c.channel, c.source, c.interval, c.limit) for c in poll_configs(both)] == [
        ("vdxp", "vdxp:s@http://axis/vdxp", 30.0, 100),
        ("edocvn", "edocvn:http://legacy/services/EdocProxy", 2.0, 3),
    ]
    assert poll_configs(Settings(data_dir=tmp_path, extra={"edocvn": {**legacy, "poll": False}})) == ()
    with pytest.raises(ConfigError, match=r"\[edocvn\] poll_seconds"):
        poll_configs(Settings(data_dir=tmp_path, extra={"edocvn": {**legacy, "poll_seconds": -1}}))

    # configured to poll, but without the keys intake needs: the worker does not start
    fake = FakeUpstream({})
    no_keys = dataclasses.replace(settings(**full), worker_lease_seconds=300)
    with pytest.raises(ConfigError, match="missing settings"):
        run_worker(no_keys, once=True, adapters={"vdxp": fake})  # type: ignore[dict-item]


def test_unknown_recipients_go_upstream_only_when_an_upstream_is_configured(svc):
    data = edoc(A, (C, H99))
    before = _stored(svc)
    with pytest.raises(RouteError):  # no [vdxp] upstream in these settings: refused, nothing stored
        svc.submit("sys-a", data)
    assert _stored(svc) == before
    assert H99 not in {a.organ_id for a in svc.registry.list_agencies()}

    with_upstream = dataclasses.replace(
        svc.settings, extra={"vdxp": {"endpoint": "http://127.0.0.1:9/vdxp", "system_id": "p", "secret": "s" * 16}}
    )
    forwarding = GatewayService(svc.store.engine, svc.signing_key, svc.trust, with_upstream)
    receipt = forwarding.submit("sys-a", data)
    assert _deliveries(svc, receipt.doc_id) == {C: "queued", H99: "queued"}
    assert svc.registry.agency(H99).channel == "vdxp"  # registered as an upstream agency, as sync-vdxp would
    outbox = svc.store.counts()["outbox"] - before["outbox"]
    assert outbox == 1  # only H99 is pushed (upstream); C waits in its mailbox
