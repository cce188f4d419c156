"""Intake of a :class:`~gateway.payload.Payload` in bounded memory (issue 14), on SQLite and PostgreSQL.

A package an edge spooled is parsed from its spool file, its attachments' base64 checked in pieces read again from
the spool (only zips kept decoded), its signature digest streamed from the spool, and the payload handed to the
store: the same receipt as from bytes, the same bytes stored, and every refusal the same code as from bytes. The
small refusal vectors are forced into a spool file (``memory_limit=0``) so the spooled path is the one tested.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_big_package import _package
from test_intake_limits import bomb
from test_services import SECRET_KEY, edoc
from test_signature_fast import EDITS, GOOD, SMALL

from gateway.config import Settings
from gateway.db import create_engine
from gateway.demo.pki import DemoPki
from gateway.edxml import add_files, read_bytes, read_tree, render
from gateway.errors import GatewayError, SignatureError
from gateway.payload import Payload, PayloadWriter
from gateway.services.gateway import GatewayService
from gateway.validation import validate_package
from gateway.xmlcheck.bulk import SpooledTexts
from gateway.xmlcheck.safe import parse_bytes, parse_payload
from gateway.xmlcheck.signature import SignatureState, verify_package
from gateway.xmlcheck.signing import SigningKey, sign_package
from gateway.xmlcheck.trust import TrustStore

A, B = "000.00.01.H53", "000.00.00.G22"
MIB = 1 << 20
STORED = ("documents", "deliveries", "status_history", "outbox")
#: The test's bound on the in-process peak RSS growth of one 20 MB intake: measured 1.82-1.90x (the tree, ~1x, plus
#: the zip attachment kept for the inflation check, ~0.75x; before issue 14: 5.5x). It failed once at 2.5x on a
#: machine at load 4, so the bound is issue 14's own 3x: still far below what holding the bytes would cost.
BOUND = 3.0
#: The end tag of an attachment's base64 text, whatever its prefix.
_CTE_END = re.compile(rb"(</(?:[\w.-]+:)?ContentTransferEncoded>)")


def spool(data: bytes, where: Path) -> Payload:
    """``data`` as an edge would hand it over when big: in a spool file (here whatever its size)."""
    writer = PayloadWriter(where, memory_limit=0)
    for start in range(0, len(data), MIB):
        writer.write(data[start : start + MIB])
    payload = writer.finish()
    assert not payload.in_memory
    return payload


@dataclass
class World:
    svc: GatewayService
    key: SigningKey
    spool_dir: Path
    trust_files: tuple[Path, list[Path]]

    def stored(self) -> dict[str, int]:
        counts = self.svc.store.counts()
        return {t: counts[t] for t in STORED}


@pytest.fixture
def world(database_url: str, tmp_path: Path, pki: DemoPki) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET_KEY,
        max_package_bytes=50 * MIB,
        max_inflated_bytes=16 * MIB,
    )
    svc = GatewayService(
        create_engine(settings),
        SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain),
        TrustStore.from_files(pki.trust, pki.crls),
        settings,
    )
    svc.store.create_schema()
    svc.registry.import_records([{"organ_id": A, "name": A, "signature_policy": "require"}, {"organ_id": B, "name": B}])
    svc.registry.add_system("sys-a", [A])
    cred = pki.agencies[A]
    key = SigningKey.from_files(cred.key, cred.cert, pki.chain)
    yield World(svc, key, tmp_path / "spool", (pki.trust, pki.crls))
    svc.close()


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise AssertionError(key)


class PeakOverBound(AssertionError):
    """The whole submit grew the peak RSS by more than BOUND x the package (the store's part, see below)."""


def _measure(fn):
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    result = fn()
    return result, _status("VmHWM") - base


def test_a_20mb_spooled_package_is_parsed_and_verified_in_bounded_memory(world: World, capsys, request):
    """The intake's own stages — parse from the spool, XSD, read (base64 checked from the spool, the zip kept),
    signature (digest streamed) — within BOUND x the package: the tree (~1x) and the zip attachment (~0.75x)."""
    data = _package(world.key, 20_000_000, "98")
    size = len(data)
    payload = spool(data, world.spool_dir)
    del data
    request.addfinalizer(payload.close)

    def stages() -> SignatureState:
        validated = validate_package(payload, max_bytes=50 * MIB, attachments="zips")
        trust = TrustStore.from_files(*world.trust_files)
        return verify_package(validated.tree, trust, spooled=validated.spooled).state

    state, growth = _measure(stages)
    with capsys.disabled():
        print(f"\n20 MB spooled parse+read+verify: peak RSS +{growth / MIB:.1f} MiB = {growth / size:.2f}x the package")
    assert state is SignatureState.VALID
    assert growth <= BOUND * size, f"peak RSS grew {growth / size:.2f}x the package"


def test_a_20mb_spooled_package_is_accepted_stored_byte_exact_in_bounded_memory(world: World, capsys, request):
    world.svc.submit("sys-a", sign_package(edoc(A, (B,)), world.key))  # warm: a worker that served small ones
    data = _package(world.key, 20_000_000, "99")
    digest, size = hashlib.sha256(data).hexdigest(), len(data)
    payload = spool(data, world.spool_dir)
    del data
    request.addfinalizer(payload.close)
    receipt, growth = _measure(lambda: world.svc.submit("sys-a", payload))
    with capsys.disabled():
        print(f"\n20 MB spooled intake: peak RSS +{growth / MIB:.1f} MiB = {growth / size:.2f}x the package")
    assert not receipt.duplicate and receipt.sha256 == digest
    raw = world.svc.store.documents.raw(receipt.doc_id)
    assert raw is not None and len(raw) == size and hashlib.sha256(raw).hexdigest() == digest
    # The same bytes in memory: the same document (a duplicate answers the original receipt, same sha256).
    again = world.svc.submit("sys-a", raw)
    assert again.duplicate and (again.doc_id, again.sha256, again.kind, again.document_id) == (
        receipt.doc_id,
        receipt.sha256,
        receipt.kind,
        receipt.document_id,
    )
    if growth > BOUND * size:
        raise PeakOverBound(f"peak RSS grew {growth / size:.2f}x the package")


def _bad_base64(key: SigningKey) -> bytes:
    data = render(add_files(read_bytes(edoc(A, (B,))), [("a.txt", b"hello world" * 100)], zip=False))
    return _CTE_END.sub(rb"QQ=\1", data, count=1)


def _tampered(key: SigningKey) -> bytes:
    return sign_package(edoc(A, (B,), subject="V/v thử nghiệm"), key).replace("thử".encode(), b"thu", 1)


def _zip_bomb(key: SigningKey) -> bytes:
    pkg = add_files(read_bytes(edoc(A, (B,))), [("bomb.zip", bomb(64 * MIB))], zip=False)
    return sign_package(render(pkg), key)


REFUSALS = {
    "bad base64 in an attachment": (_bad_base64, "EDXML.ATTACHMENT"),
    "DOCTYPE": (lambda k: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "EDXML.FORBIDDEN"),
    "not well-formed": (lambda k: edoc(A, (B,))[:-40], "EDXML.PARSE"),
    "over the size limit": (lambda k: edoc(A, (B,)) + b" " * (50 * MIB), "SIZE.LIMIT"),
    "a zip bomb over LIMIT.INFLATED": (_zip_bomb, "LIMIT.INFLATED"),
    "a tampered signed package": (_tampered, "EDXML.SIGNATURE"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_the_same_from_a_spooled_payload_and_store_nothing(world: World, case: str):
    make, code = REFUSALS[case]
    data = make(world.key)
    before = world.stored()
    with pytest.raises(GatewayError) as from_bytes:
        world.svc.submit("sys-a", data)
    with pytest.raises(GatewayError) as from_spool, spool(data, world.spool_dir) as payload:
        world.svc.submit("sys-a", payload)
    assert from_bytes.value.code == from_spool.value.code == code
    assert from_bytes.value.message == from_spool.value.message
    assert from_bytes.value.detail == from_spool.value.detail
    assert world.stored() == before


# ------------------------------------------------------------------------------ the streamed digest, differential


def _streamed_verdict(data: bytes, trust: TrustStore, where: Path) -> tuple[str, str | None]:
    with spool(data, where) as payload:
        tree = parse_payload(payload)
        spooled = SpooledTexts(payload, huge_tree=False)
        read_tree(tree, attachments="zips", spooled=spooled)
        try:
            check = verify_package(tree, trust, spooled=spooled)
        except SignatureError as exc:
            return "refused", exc.detail["reason"]
    assert check.state is SignatureState.VALID
    return "valid", "streamed" if check.signed_xml is None else "kept"


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_files(pki.trust, pki.crls)


@pytest.fixture(scope="module")
def keys(pki: DemoPki) -> tuple[SigningKey, SigningKey]:
    cred = pki.agencies[A]
    return SigningKey.from_files(cred.key, cred.cert, pki.chain), SigningKey.from_files(
        pki.ecdsa.key, pki.ecdsa.cert, pki.chain
    )


@pytest.mark.parametrize("variant", sorted(GOOD))
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_streamed_digest_gives_the_verdicts_of_the_whole_canonical_form(
    corpus, keys, trust, tmp_path, variant, edit
):
    """tests/test_signature_fast.py's variants, verified with the big texts streamed from a spool: the same
    verdict as the whole canonical form; the content is streamed (not kept) exactly when the input has no comment."""
    data = EDITS[edit](GOOD[variant](corpus.read(SMALL), *keys))
    whole = parse_bytes(data)
    try:
        expected: tuple[str, str | None] = ("valid", None)
        kept = verify_package(whole, trust)
        expected = ("valid", "kept" if not kept.signed_is_input else "streamed")
    except SignatureError as exc:
        expected = ("refused", exc.detail["reason"])
    assert _streamed_verdict(data, trust, tmp_path) == expected


def test_streamed_text_is_escaped_as_canonical_xml_escapes_it(keys, trust, tmp_path):
    """A text with ``&``, ``<``, ``>`` and a carriage return (as ``&#13;``: a literal one is normalised away) in a
    ContentTransferEncoded: the digest streamed from the spool equals the whole form's (C14N 1.0 §2.3)."""
    pkg = read_bytes(edoc(A, (B,)))
    pkg = add_files(pkg, [("a.txt", b"x" * 3000)], zip=False)
    data = _CTE_END.sub(rb"&#13;\n &amp;&lt;&gt;\1", render(pkg), count=1)
    signed = sign_package(data, keys[0])
    assert verify_package(parse_bytes(signed), trust).state is SignatureState.VALID
    with spool(signed, tmp_path) as payload:
        tree = parse_payload(payload)
        spooled = SpooledTexts(payload, huge_tree=False)
        spooled.register(next(e for e in tree.iter() if str(e.tag).endswith("ContentTransferEncoded")))
        check = verify_package(tree, trust, spooled=spooled)
    assert check.state is SignatureState.VALID and check.signed_xml is None
    with pytest.raises(ValueError):
        check.signed_root  # noqa: B018 - not kept: never mistaken for "unsigned"


def test_attachments_not_kept_are_none_not_empty(tmp_path):
    pkg = add_files(read_bytes(edoc(A, (B,))), [("a.txt", b"hello" * 1000), ("z.zip", bomb(MIB))], zip=False)
    data = render(pkg)
    with spool(data, tmp_path) as payload:
        spooled = SpooledTexts(payload, huge_tree=False)
        read = read_tree(parse_payload(payload), attachments="zips", spooled=spooled)
    full = read_tree(parse_bytes(data))
    assert [a.kept for a in read.attachments] == [a.is_zip for a in full.attachments]
    for got, want in zip(read.attachments, full.attachments, strict=True):
        assert got.data is None or got.data == want.data
        assert got.is_zip == want.is_zip
