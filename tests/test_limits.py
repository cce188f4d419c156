"""Rate limits and throttled authentication (issue 10): the limiter alone, then through the service on SQLite and
PostgreSQL (failures are counted in the database, shared by every worker).

Finding 8: an HTTP Basic refusal cost a scrypt (≈30× a digest refusal), unthrottled, and each refusal wrote an
audit row. Here: after K failures the refusal is RATE.LIMITED without scrypt (timed), honest credentials that are
checked cheaply still pass, and the audit trail stays bounded however long the flood (counted).
"""

from __future__ import annotations

import base64
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from test_services import SECRET_KEY

from gateway.config import Settings
from gateway.db import create_engine
from gateway.demo.pki import DemoPki
from gateway.errors import AuthError, RateLimitedError
from gateway.services.auth import password_digest
from gateway.services.gateway import GatewayService
from gateway.services.limits import TokenBuckets, current_source, source_scope
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

A, B = "000.00.01.H53", "000.00.00.G22"
ATTACKER, HONEST = "203.0.113.66", "198.51.100.7"


# ============================================================================================ the buckets


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_grants_the_burst_then_the_rate():
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, max_keys=10, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token every 0.5 s
    assert buckets.take("b") == 0.0  # keys are independent
    clock.t += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.t += 100
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled up to the burst only


def test_token_buckets_are_bounded_and_evict_the_least_recently_used():
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=100, clock=clock)
    buckets.take("kept")
    for i in range(10_000):  # an attacker cycling addresses
        buckets.take(f"10.0.{i // 256}.{i % 256}")
        if i % 50 == 0:
            buckets.take("kept")  # recently used: survives
    assert len(buckets) == 100
    assert buckets.take("kept") > 0  # still empty: it was never evicted


def test_source_scope_is_per_request():
    assert current_source() == ""
    with source_scope(ATTACKER):
        assert current_source() == ATTACKER
    assert current_source() == ""


# ============================================================================================ through the service


@pytest.fixture
def make_service(database_url: str, tmp_path, pki: DemoPki) -> Iterator:
    services: list[GatewayService] = []

    def make(**overrides) -> GatewayService:
        settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=SECRET_KEY, **overrides)
        svc = GatewayService(
            create_engine(settings),
            SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain),
            TrustStore.from_files(pki.trust, pki.crls),
            settings,
        )
        if not services:
            svc.store.create_schema()
            svc.registry.import_records([{"organ_id": o, "name": o} for o in (A, B)])
        services.append(svc)
        return svc

    yield make
    for svc in services:
        svc.close()


def _digest(secret: str) -> tuple[str, str, str]:
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return password_digest(nonce, created, secret), base64.b64encode(nonce).decode(), created


def _timed(call) -> tuple[float, BaseException]:
    started = time.perf_counter()
    try:
        call()
    except (AuthError, RateLimitedError) as exc:
        return time.perf_counter() - started, exc
    raise AssertionError("not refused")


def test_bad_basic_logins_are_rate_limited_without_scrypt_and_the_audit_stays_bounded(make_service):
    svc = make_service(auth_failures_per_address=5, auth_failures_per_user=1000, rate_per_system=0)
    secret = svc.registry.add_system("sys-a", [A])
    with source_scope(ATTACKER):
        assert svc.authenticate_basic("sys-a", secret) == "sys-a"  # an honest login first: now cached
        scrypt = [_timed(lambda: svc.authenticate_basic("sys-a", "guess")) for _ in range(5)]
        assert all(isinstance(exc, AuthError) and exc.code == "AUTH.DENIED" for _, exc in scrypt)
        limited = [_timed(lambda: svc.authenticate_basic("sys-a", "guess")) for _ in range(300)]
        assert all(isinstance(exc, RateLimitedError) for _, exc in limited)
        first = limited[0][1]
        assert isinstance(first, RateLimitedError) and 0 < first.retry_after <= 600
        assert first.to_dict()["detail"] == {"retry_after": first.retry_after}
        # The refusal no longer costs scrypt: an order of magnitude cheaper than the ones that ran it.
        with_scrypt = statistics.median(t for t, _ in scrypt)
        without = statistics.median(t for t, _ in limited)
        assert without * 10 < with_scrypt, (with_scrypt, without)
        # The honest system, whose password is cached, still gets in from the same (blocked) address, and so
        # does a digest (checked cheaply).
        assert svc.authenticate_basic("sys-a", secret) == "sys-a"
        assert svc.authenticate_digest("sys-a", *_digest(secret)) == "sys-a"
        # Unknown names from a blocked address: refused the same way (nothing to enumerate, nothing stored).
        assert isinstance(_timed(lambda: svc.authenticate_basic("nobody", "x"))[1], RateLimitedError)
    # Another address is not blocked: its first wrong password is an ordinary AUTH.DENIED.
    with source_scope(HONEST):
        assert _timed(lambda: svc.authenticate_basic("sys-a", "typo"))[1].code == "AUTH.DENIED"

    denied = svc.store.audit.entries(action="auth.denied", limit=10_000)
    # 307 refusals: one audit row per (address, claimed system, code, window) — never the first one dropped.
    # The address's RATE.LIMITED key does not name the claimed system (cycling names adds nothing); its audit row
    # says which name came first.
    keys = {(e.detail["source"], e.detail["username"], e.outcome) for e in denied}
    assert len(denied) == len(keys) == 3, [(e.detail, e.outcome) for e in denied]
    assert keys == {
        (ATTACKER, "sys-a", "AUTH.DENIED"),
        (ATTACKER, "sys-a", "RATE.LIMITED"),
        (HONEST, "sys-a", "AUTH.DENIED"),
    }
    rows = svc.store.refusals.rows()
    by_key = {(r["source"], r["principal"], r["code"]): r for r in rows}
    assert by_key[(ATTACKER, "sys-a", "AUTH.DENIED")]["count"] == 5
    # The RATE.LIMITED counter is coalesced in the process (written at most every few seconds): at least the first.
    assert by_key[(ATTACKER, "", "RATE.LIMITED")]["count"] >= 1
    assert svc.store.counts()["refusal_counts"] == len(rows) <= 5


def test_the_failure_count_is_shared_by_every_worker(make_service):
    """Two services on one database (two gunicorn workers): failures counted by one block the other."""
    first = make_service(auth_failures_per_address=4, rate_per_system=0)
    second = make_service(auth_failures_per_address=4, rate_per_system=0)
    secret = first.registry.add_system("sys-a", [A])
    with source_scope(ATTACKER):
        for svc in (first, second, first, second):
            with pytest.raises(AuthError):
                svc.authenticate_basic("sys-a", "guess")
        with pytest.raises(RateLimitedError):
            second.authenticate_basic("sys-a", "guess")
        with pytest.raises(RateLimitedError):  # a wrong digest from a blocked address: RATE.LIMITED too
            first.authenticate_digest("sys-a", *_digest("wrong"))
        assert first.authenticate_digest("sys-a", *_digest(secret)) == "sys-a"


def test_a_claimed_system_id_is_blocked_across_addresses(make_service):
    svc = make_service(auth_failures_per_address=1000, auth_failures_per_user=6, rate_per_system=0)
    svc.registry.add_system("sys-a", [A])
    for i in range(6):  # a distributed guess: one try per address
        with source_scope(f"192.0.2.{i}"), pytest.raises(AuthError):
            svc.authenticate_basic("sys-a", "guess")
    with source_scope("192.0.2.200"), pytest.raises(RateLimitedError):
        svc.authenticate_basic("sys-a", "guess")
    with source_scope("192.0.2.200"), pytest.raises(AuthError):  # other names are not affected
        svc.authenticate_basic("sys-b", "guess")


def test_a_system_is_limited_to_its_request_rate(make_service):
    svc = make_service(rate_per_system=0.5, rate_burst_per_system=3)
    secret = svc.registry.add_system("sys-a", [A])
    other = svc.registry.add_system("sys-b", [B])
    for _ in range(3):
        svc.authenticate_digest("sys-a", *_digest(secret))
    with pytest.raises(RateLimitedError) as info:
        svc.authenticate_digest("sys-a", *_digest(secret))
    assert info.value.code == "RATE.LIMITED" and info.value.retry_after == 2  # one token every 2 s
    assert svc.authenticate_digest("sys-b", *_digest(other)) == "sys-b"
    assert [r["code"] for r in svc.store.refusals.rows()] == ["RATE.LIMITED"]


def test_an_address_is_limited_to_its_request_rate(make_service):
    svc = make_service(rate_per_address=1.0, rate_burst_per_address=5)
    for _ in range(5):
        svc.admit_address(ATTACKER)
    with pytest.raises(RateLimitedError) as info:
        svc.admit_address(ATTACKER)
    assert info.value.retry_after == 1
    svc.admit_address(HONEST)
    svc.admit_address("")  # outside a request (no address): not limited


class _Admissions:
    """The one GatewayApi call the throttle front makes, recorded (the front's own contract, not a use case)."""

    def __init__(self) -> None:
        self.sources: list[str] = []

    def admit_address(self, source: str) -> None:
        self.sources.append(source)


@pytest.mark.parametrize(
    ("peer", "trusted", "forwarded", "keyed_as"),
    [
        ("127.0.0.1", (), "203.0.113.9", "127.0.0.1"),  # nobody trusted (the default): the header is a claim
        ("127.0.0.1", ("127.0.0.1",), "203.0.113.9", "203.0.113.9"),  # the local nginx: its X-Forwarded-For
        ("127.0.0.1", ("127.0.0.1",), "203.0.113.9, 198.51.100.7", "198.51.100.7"),  # the entry nginx wrote
        ("192.0.2.5", ("127.0.0.1",), "203.0.113.9", "192.0.2.5"),  # a peer that is not the proxy
        ("127.0.0.1", ("127.0.0.1",), "garbage", "127.0.0.1"),  # a trusted proxy naming nobody: its own budget
    ],
)
def test_the_rate_key_is_the_client_address_believing_only_trusted_proxies(peer, trusted, forwarded, keyed_as):
    from gateway.web.origin import trusted_networks
    from gateway.web.throttle import ThrottleFront

    api = _Admissions()
    front = ThrottleFront(lambda environ, start: [b"ok"], api, trusted_networks(trusted))  # type: ignore[arg-type]
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded, "PATH_INFO": "/healthz"}
    assert list(front(environ, lambda status, headers, exc_info=None: None)) == [b"ok"]
    assert api.sources == [keyed_as]


def test_behind_the_serving_front_the_proxy_is_the_recorded_peer():
    """The ASGI front rewrites REMOTE_ADDR to a trusted proxy's forwarded client and keeps the socket's peer in
    ``edoc_gateway.peer_addr``: the origin (rate keys, VDXP bindings) still sees the proxy as the peer, so its
    certificate headers are believed, and a rewritten address is never taken for a proxy."""
    from gateway.web.origin import client_origin, trusted_networks

    trusted = trusted_networks(["127.0.0.1"])
    environ = {
        "REMOTE_ADDR": "203.0.113.9",
        "edoc_gateway.peer_addr": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
        "HTTP_X_SSL_CLIENT_CERT": "-----BEGIN%20CERTIFICATE-----%0AAAEC%0A-----END%20CERTIFICATE-----%0A",
    }
    origin = client_origin(environ, trusted)
    assert origin.address == "203.0.113.9" and origin.cert_fingerprint is not None
    untrusted = client_origin({**environ, "edoc_gateway.peer_addr": "192.0.2.1"}, trusted)
    assert untrusted.address == "192.0.2.1" and untrusted.cert_fingerprint is None
