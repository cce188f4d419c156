"""The parsed-certificate cache of :func:`gateway.xmlcheck.certs.load_der_certificate` (issue 14, intake hot path).

Keyed by the SHA-256 of the DER bytes (content, never a caller's name for them), bounded, and holding only
certificates that parsed in full: a malformed one is parsed and refused again every time, with the same error.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from der import mutations

from gateway.demo.pki import DemoPki
from gateway.xmlcheck import certs
from gateway.xmlcheck.certs import PARSED_CACHE_SIZE, UnreadableCertificate, load_der_certificate

A = "000.00.01.H53"


def _der(pki: DemoPki, organ: str = A) -> bytes:
    cert = x509.load_pem_x509_certificate(pki.agencies[organ].cert.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(autouse=True)
def _empty_cache():
    certs._PARSED.clear()
    yield
    certs._PARSED.clear()


def test_the_same_bytes_give_the_certificate_parsed_the_first_time(pki: DemoPki):
    der = _der(pki)
    first = load_der_certificate(der)
    assert load_der_certificate(bytes(der)) is first  # equal bytes, another object: still a hit
    assert first.public_bytes(serialization.Encoding.DER) == der
    other = _der(pki, sorted(pki.agencies)[1])
    assert load_der_certificate(other) is not first
    assert load_der_certificate(other).public_bytes(serialization.Encoding.DER) == other


@pytest.mark.parametrize("name", ["garbage-subject", "duplicate-extension", "garbage-extension-values"])
def test_a_malformed_certificate_is_never_kept_and_refused_alike_every_time(pki: DemoPki, name: str):
    """The lazily malformed variants load, then fail at first access: they must not be cached after the load."""
    bad = mutations(_der(pki))[name]
    x509.load_der_x509_certificate(bad)  # the precondition: cryptography's load alone accepts it
    messages = []
    for _ in range(3):
        with pytest.raises(UnreadableCertificate) as err:
            load_der_certificate(bad)
        messages.append(str(err.value))
    assert len(set(messages)) == 1
    assert certs._PARSED.get(hashlib.sha256(bad).digest()) is None


def test_every_malformed_variant_stays_refused_after_the_good_one_is_cached(pki: DemoPki):
    good = _der(pki)
    load_der_certificate(good)
    for name, bad in mutations(good).items():
        with pytest.raises(UnreadableCertificate):
            load_der_certificate(bad)
        assert certs._PARSED.get(hashlib.sha256(bad).digest()) is None, name
    assert load_der_certificate(good) is load_der_certificate(good)


def test_the_cache_is_bounded_least_recently_used_first(pki: DemoPki):
    """The bound and the eviction order; the other entries are put directly (300 distinct valid certificates
    would only slow the test down)."""
    der = _der(pki)
    keep = load_der_certificate(der)
    key = hashlib.sha256(der).digest()
    for i in range(PARSED_CACHE_SIZE - 1):
        certs._PARSED.put(i.to_bytes(32, "big"), keep)
    assert certs._PARSED.get(key) is keep  # touched: now the most recent
    certs._PARSED.put(b"x" * 32, keep)  # one over the bound: the oldest filler goes, not the touched one
    assert certs._PARSED.get((0).to_bytes(32, "big")) is None
    assert certs._PARSED.get(key) is keep
    assert len(certs._PARSED._certs) == PARSED_CACHE_SIZE


def test_threads_share_one_parsed_certificate(pki: DemoPki):
    der = _der(pki)
    seen: list[x509.Certificate] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(200):
            cert = load_der_certificate(der)
            with lock:
                seen.append(cert)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 800
    assert len({c.public_bytes(serialization.Encoding.DER) for c in seen}) == 1
