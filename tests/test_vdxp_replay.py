"""Replay protection of ``/vdxp``, per system (issue 10 finding 7), on SQLite and PostgreSQL.

Found: a request signed with a 2016 timestamp listed a mailbox, and a captured signed request stayed valid
forever. Now each system is ``strict`` (the default: a fresh signed timestamp, each signature accepted once,
the cache in the database) or ``legacy-sdk`` (the stock VNPT SDK's fixed timestamp, accepted only from the
system's allowed networks or with its TLS client certificate forwarded by a trusted proxy).

Under real gunicorns: every SDK request (own and real capture) refused as stale for a strict system and
accepted once the system is legacy-sdk and bound to loopback; the 2016 request; an address outside the
allow-list; a fresh request accepted once and its replay refused at ANOTHER gunicorn on the same database.
In process, through the real edge (the only way to come from an address other than 127.0.0.1): trusted-proxy
headers and certificate binding, and the purge of the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _vdxp_vectors import CapturedRequest, SdkRequests, SdkSession
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from gatewayproc import gateway_env, served
from test_vdxp_api import AGENCIES, G22, H41, SDK_ON_LOOPBACK, Gateway, _edoc, _fail, _ok, _replay, running_gateway

from adapters.vdxp import VdxpClient
from gateway.config import Settings, load_settings
from gateway.db import Store
from gateway.db.migrations import upgrade
from gateway.edxml import PackageKind
from gateway.edxml.dates import VN_TZ
from gateway.errors import RequestError
from gateway.protocols import vdxp
from gateway.protocols.vdxp import Operation
from gateway.services.gateway import GatewayService
from gateway.services.registry import Registry
from gateway.web.vdxp import VdxpEdge

#: The SDK's system is STRICT here unless a test binds it: what an upgraded gateway does with a system nobody
#: has configured yet.
STRICT_SYSTEMS = {"vpcp": ([G22], None)}
AUDIT = "SELECT outcome FROM audit_log WHERE action = 'auth.denied' ORDER BY id"
#: Refusals are audited in aggregate (a flood cannot fill the database): the first of each kind is an audit row,
#: every one is counted here.
REFUSED = "SELECT COALESCE(SUM(count), 0) FROM refusal_counts WHERE code = :c"


def _signed(system_id: str, secret: str, op: Operation, params: dict[str, str], body: bytes, when: datetime):
    """A request as our client signs it (only this call's parameters), at ``when``."""
    entries = vdxp.request_entries(op, system_id, vdxp.format_timestamp(when), params)
    headers = vdxp.signed_headers(secret, entries)
    return CapturedRequest(op.value, f"/{op.value}", headers, body)


def _received_list(system_id: str, secret: str, when: datetime) -> CapturedRequest:
    params = {vdxp.SERVICETYPE: vdxp.SERVICE_TYPE_EDOC, vdxp.MESSAGETYPE: "edoc"}
    return _signed(system_id, secret, Operation.GET_RECEIVED_EDOC_LIST, params, b"", when)


@pytest.fixture
def strict_sdk_gateway(tmp_path, database_url, pki, sdk: SdkRequests) -> Iterator[Gateway]:
    """The SDK's system registered with its secret and nothing else: strict, the default."""
    systems = {sdk.system_id: ([H41], sdk.secret), **STRICT_SYSTEMS}
    with running_gateway(tmp_path / "gw", database_url, pki, AGENCIES, systems) as gw:
        yield gw


def test_the_sdks_requests_are_stale_for_a_strict_system_and_accepted_once_it_is_bound(strict_sdk_gateway, sdk):
    gw = strict_sdk_gateway
    gw.client("vpcp").send_edoc(sdk.document, sender=G22, kind=PackageKind.EDOC)
    documents = gw.count("documents")
    for r in sdk.requests:
        answer = _fail(*_replay(gw, r), "AUTH.STALE", op=r.operation)  # the SDK's shape: DocId/data empty
        assert "legacy-sdk" in answer["ErrorDesc"]  # the refusal names the fix
    assert gw.count("documents") == documents  # the captured sendEdoc stored nothing
    assert [o for (o,) in gw.query(AUDIT)] == ["AUTH.STALE"]
    assert gw.query(REFUSED, c="AUTH.STALE")[0][0] == len(sdk.requests)
    # a stale request is refused before the cache is written: only vpcp's own (strict, fresh) send is there
    assert gw.count("vdxp_signatures") == 1

    # The 2016 request of the finding: the SDK's getReceivedEdocList, signed (with the secret) in 2016.
    old = SdkSession(sdk.system_id, sdk.secret, datetime(2016, 8, 1, 9, 0, tzinfo=VN_TZ))
    _fail(*_replay(gw, old.get_received_edoc_list("edoc")), "AUTH.STALE", op="getReceivedEdocList")

    # Bound to loopback in legacy-sdk mode: every captured request is accepted, as often as the SDK repeats it.
    with Registry.from_settings(gw.settings) as registry:
        registry.set_system_vdxp(sdk.system_id, **SDK_ON_LOOPBACK)
    for r in sdk.requests:
        status, answer = _replay(gw, r)
        if r.operation in ("getEdoc", "updateStatus"):
            _fail(status, answer, "NOT_FOUND", op=r.operation)  # authenticated; another axis's docId
        else:
            _ok(status, answer)
    _ok(*_replay(gw, sdk.request("getReceivedEdocList")))  # the same bytes again: the SDK polls like this
    stored = gw.count("documents")
    assert stored == documents + 1  # the captured status

    # Bound elsewhere: the same requests, from here, are refused — a captured request is useless off its network.
    with Registry.from_settings(gw.settings) as registry:
        registry.set_system_vdxp(sdk.system_id, allow_from=["192.0.2.0/24", "2001:db8::/32"])
    for r in sdk.requests:
        answer = _fail(*_replay(gw, r), "ACCESS.SOURCE", op=r.operation)
        assert "127.0.0.1" in answer["ErrorDesc"]
    new_status = SdkSession(sdk.system_id, sdk.secret, datetime.now(VN_TZ)).send_edoc(
        sdk.sent_file().replace(b"</edXMLEnvelope>", b"<!-- other -->\n</edXMLEnvelope>"), H41, "edoc"
    )
    _fail(*_replay(gw, new_status), "ACCESS.SOURCE", op="sendEdoc")
    assert gw.count("documents") == stored  # nothing stored
    assert [o for (o,) in gw.query(AUDIT)] == ["AUTH.STALE", "ACCESS.SOURCE"]  # the first of each kind
    assert gw.query(REFUSED, c="ACCESS.SOURCE")[0][0] == len(sdk.requests) + 1  # and every one counted


def test_a_fresh_request_is_accepted_once_and_its_replay_refused_by_another_gunicorn(tmp_path, database_url, pki):
    """The cache is in the database: gunicorn A accepts, gunicorn B (other processes, same database) refuses."""
    systems = {"vpcp": ([G22], None), "nghean": ([H41], None)}
    with running_gateway(tmp_path / "a", database_url, pki, AGENCIES, systems) as a:
        env_b = gateway_env(
            tmp_path / "b", database_url, pki, max_package_bytes=256 * 1024, SECRET_KEY=a.settings.secret_key
        )
        (tmp_path / "b").mkdir()
        settings_b = load_settings(env=env_b)
        with served(settings_b, env_b, tmp_path / "b" / "gunicorn.log"):
            b = Gateway(f"http://{settings_b.bind}", settings_b, a.secrets, tmp_path / "b" / "gunicorn.log")
            secret = a.secrets["nghean"]
            listed = _received_list("nghean", secret, datetime.now(VN_TZ))
            _ok(*_replay(a, listed))
            for gw in (b, a, b):
                answer = _fail(*_replay(gw, listed), "AUTH.REPLAY", op="getReceivedEdocList")
                assert "already accepted" in answer["ErrorDesc"]
            # the same call signed a millisecond later is another signature: accepted
            _ok(*_replay(b, _received_list("nghean", secret, datetime.now(VN_TZ) + timedelta(milliseconds=1))))

            # A new package: accepted once at B; its replay at A is refused and stores nothing more.
            package, _ = _edoc(H41, (G22,), "801")
            params = vdxp.send_edoc_params(package, sender=H41, kind=PackageKind.EDOC)
            send = _signed("nghean", secret, Operation.SEND_EDOC, params, package, datetime.now(VN_TZ))
            doc_id = _ok(*_replay(b, send))["DocId"]
            before = a.count("documents")
            _fail(*_replay(a, send), "AUTH.REPLAY", op="sendEdoc")
            assert a.count("documents") == before
            assert a.query("SELECT count(*) FROM documents WHERE doc_id = :d", d=doc_id)[0][0] == 1
            assert [o for (o,) in a.query(AUDIT)] == ["AUTH.REPLAY"]
            assert a.query(REFUSED, c="AUTH.REPLAY")[0][0] == 4

            # Our own client signs a fresh, strictly increasing timestamp per call: a frozen clock (two calls in
            # one millisecond) still gives two signatures, both accepted by a strict system.
            frozen = datetime.now(VN_TZ)
            with VdxpClient(a.vdxp, "nghean", secret, clock=lambda: frozen) as client:
                assert client.received_list(PackageKind.EDOC) == client.received_list(PackageKind.EDOC) == []
            assert a.count("vdxp_signatures") == 5  # each accepted signature once; no refused one


# ================================================================================================ in process


@pytest.fixture
def service(tmp_path, database_url, pki) -> Iterator[GatewayService]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        gateway_key=pki.gateway_key,
        gateway_cert=pki.gateway_cert,
        trust_store=pki.trust,
        crl_files=tuple(pki.crls),
        trusted_proxies=("127.0.0.1",),
        vdxp_window_seconds=300,
    )
    upgrade(settings)
    with GatewayService.from_settings(settings) as svc:
        svc.registry.import_records(AGENCIES)
        yield svc


def _call(edge: VdxpEdge, r: CapturedRequest, remote: str, **headers: str) -> tuple[int, dict[str, Any]]:
    """The edge in process, as gunicorn calls it, from ``remote`` with extra HTTP headers (a proxy's)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/vdxp",
        "PATH_INFO": r.path,
        "CONTENT_LENGTH": str(len(r.body)),
        "wsgi.input": io.BytesIO(r.body),
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": remote,
    }
    for name, value in {**r.headers, **headers}.items():
        key = name.upper().replace("-", "_")
        if key != "CONTENT_LENGTH":
            environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value.encode().decode("latin-1")
    seen: list[str] = []
    body = b"".join(edge(environ, lambda status, _headers: seen.append(status)))
    return int(seen[0].split()[0]), json.loads(body)


def test_source_bindings_believe_proxy_headers_only_from_a_trusted_proxy(service, pki):
    secret = service.registry.add_system(
        "sdk", [H41], vdxp_replay="legacy-sdk", allow_from=["192.0.2.0/24", "2001:db8::/32"]
    )
    edge = VdxpEdge(service, service.settings)
    stale = SdkSession("sdk", secret, datetime(2026, 1, 1, tzinfo=VN_TZ)).get_agencies_list()  # fixed timestamp
    _ok(*_call(edge, stale, "192.0.2.10"))  # directly from an allowed address
    _ok(*_call(edge, stale, "::ffff:192.0.2.11"))  # the same address, IPv4-mapped
    _ok(*_call(edge, stale, "2001:db8::5"))
    _ok(*_call(edge, stale, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9, 192.0.2.12"}))  # via the trusted proxy
    _fail(*_call(edge, stale, "198.51.100.7"), "ACCESS.SOURCE", op="getAgenciesList")
    # the client's own claim, from an untrusted peer, counts for nothing
    _fail(
        *_call(edge, stale, "198.51.100.7", **{"X-Forwarded-For": "192.0.2.10"}), "ACCESS.SOURCE", op="getAgenciesList"
    )
    # the trusted proxy forwarded no address (or garbage, or the client's claim on the left): unknown, refused
    _fail(*_call(edge, stale, "127.0.0.1"), "ACCESS.SOURCE", op="getAgenciesList")
    _fail(*_call(edge, stale, "127.0.0.1", **{"X-Forwarded-For": "x"}), "ACCESS.SOURCE", op="getAgenciesList")
    bad_left = {"X-Forwarded-For": "192.0.2.10, 198.51.100.7"}
    _fail(*_call(edge, stale, "127.0.0.1", **bad_left), "ACCESS.SOURCE", op="getAgenciesList")
    # a gateway without trusted proxies ignores the header from loopback too
    untrusting = VdxpEdge(service, dataclasses.replace(service.settings, trusted_proxies=()))
    forwarded = {"X-Forwarded-For": "192.0.2.10"}
    _fail(*_call(untrusting, stale, "127.0.0.1", **forwarded), "ACCESS.SOURCE", op="getAgenciesList")


def test_a_client_certificate_binding_is_read_from_the_trusted_proxy_only(service, pki):
    pem = Path(pki.intermediate_cert).read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())  # as openssl prints it
    secret = service.registry.add_system("sdk", [H41], vdxp_replay="legacy-sdk", client_certs=[fingerprint])
    edge = VdxpEdge(service, service.settings)
    request = SdkSession("sdk", secret, datetime(2026, 1, 1, tzinfo=VN_TZ)).get_agencies_list()
    escaped = urllib.parse.quote(pem.decode("ascii"), safe="")  # nginx $ssl_client_escaped_cert
    proxy = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-Cert": escaped, "X-Forwarded-For": "198.51.100.7"}
    _ok(*_call(edge, request, "127.0.0.1", **proxy))
    _fail(*_call(edge, request, "198.51.100.7", **proxy), "ACCESS.SOURCE", op="getAgenciesList")  # untrusted peer
    failed = dict(proxy, **{"X-SSL-Client-Verify": "FAILED:certificate has expired"})
    _fail(*_call(edge, request, "127.0.0.1", **failed), "ACCESS.SOURCE", op="getAgenciesList")
    other = urllib.parse.quote(Path(pki.root_cert).read_text("ascii"), safe="")
    wrong = dict(proxy, **{"X-SSL-Client-Cert": other})
    _fail(*_call(edge, request, "127.0.0.1", **wrong), "ACCESS.SOURCE", op="getAgenciesList")
    garbage = dict(proxy, **{"X-SSL-Client-Cert": "-----BEGIN%20CERTIFICATE-----%0A%25%25%0A"})
    _fail(*_call(edge, request, "127.0.0.1", **garbage), "ACCESS.SOURCE", op="getAgenciesList")
    _fail(*_call(edge, request, "127.0.0.1"), "ACCESS.SOURCE", op="getAgenciesList")


def test_strict_window_both_ways_and_the_cache_is_purged(service):
    secret = service.registry.add_system("ours", [H41])
    edge = VdxpEdge(service, service.settings)
    now = datetime.now(VN_TZ)
    for skew in (timedelta(seconds=-290), timedelta(seconds=290)):
        _ok(*_call(edge, _received_list("ours", secret, now + skew), "127.0.0.1"))
    for skew in (timedelta(seconds=-320), timedelta(seconds=320)):
        answer = _fail(
            *_call(edge, _received_list("ours", secret, now + skew), "127.0.0.1"),
            "AUTH.STALE",
            op="getReceivedEdocList",
        )
    assert " ahead of " in answer["ErrorDesc"] and "300 s" in answer["ErrorDesc"]
    store: Store = service.store
    assert store.nonces.prune_signatures(datetime.now(UTC)) == 0  # both still inside their window
    later = datetime.now(UTC) + timedelta(seconds=300)
    assert store.nonces.prune_signatures(later) == 1  # the one signed 290 s ago has left it; the other has not
    assert store.nonces.prune_signatures(later + timedelta(seconds=600)) == 1


def test_legacy_sdk_needs_a_binding_and_allow_lists_are_checked(service):
    with pytest.raises(RequestError, match="needs a binding"):
        service.registry.add_system("sdk", [H41], vdxp_replay="legacy-sdk")
    for bad in ("0.0.0.0/0", "::/0", "10.0.0.7/24", "not-an-address", "192.0.2.0/33"):
        with pytest.raises(RequestError, match="--allow-from"):
            service.registry.add_system("sdk", [H41], allow_from=[bad])
    with pytest.raises(RequestError, match="--client-cert"):
        service.registry.add_system("sdk", [H41], client_certs=["abc"])
    with pytest.raises(RequestError, match="--vdxp-replay"):
        service.registry.add_system("sdk", [H41], vdxp_replay="lenient")
    assert service.registry.list_systems() == []  # nothing half-added
    service.registry.add_system("sdk", [H41], vdxp_replay="legacy-sdk", allow_from=["192.0.2.7", "192.0.2.7/32"])
    info = service.registry.system_info("sdk")
    assert (info.vdxp_replay, info.vdxp_allow_from, info.vdxp_client_certs) == ("legacy-sdk", ("192.0.2.7/32",), ())
    with pytest.raises(RequestError, match="needs a binding"):
        service.registry.set_system_vdxp("sdk", allow_from=[])  # clearing the last binding of a legacy system
    info = service.registry.set_system_vdxp("sdk", vdxp_replay="strict", allow_from=[])
    assert (info.vdxp_replay, info.vdxp_allow_from) == ("strict", ())
