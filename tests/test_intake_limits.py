"""Intake limits as policy (issue 10 finding 8): zip bombs, lying zips, 2,000 attachments, too many recipients and
too many statuses are refused with their stable codes — and nothing is stored, on SQLite and PostgreSQL.

The zips are real, built at test time with :mod:`zipfile`; the "lying" one has its sizes patched in the central
directory and the local header. The inflation is measured with :mod:`tracemalloc`: it must never hold the
inflated data.
"""

from __future__ import annotations

import io
import random
import struct
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from test_services import SECRET_KEY, edoc, status

from gateway.config import Settings
from gateway.db import create_engine
from gateway.demo.pki import DemoPki
from gateway.edxml import StatusCode, add_files, read_bytes, render
from gateway.edxml.model import Attachment
from gateway.errors import (
    AttachmentCountError,
    AttachmentError,
    InflatedSizeError,
    RecipientCountError,
    StatusQuotaError,
)
from gateway.services.gateway import GatewayService
from gateway.services.intake_limits import IntakeLimits, central_directory_entries, inspect_zip
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

A, B, C = "000.00.01.H53", "000.00.00.G22", "000.01.01.H53"
STORED = ("documents", "deliveries", "status_history", "outbox")
MIB = 1 << 20


# ============================================================================================ zips built here


def bomb(inflated: int) -> bytes:
    """One deflated entry of ``inflated`` zero bytes, written in chunks (the test never holds it either)."""
    buf = io.BytesIO()
    chunk = bytes(MIB)
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("bomb.bin", "w", force_zip64=inflated > 0x7FFFFFFF) as fh,
    ):
        for _ in range(inflated // MIB):
            fh.write(chunk)
    return buf.getvalue()


def honest(inflated: int, seed: int = 1) -> bytes:
    """One entry of random bytes (they do not compress: ratio ~1)."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("data.bin", "w") as fh,
    ):
        for _ in range(inflated // MIB):
            fh.write(rng.randbytes(MIB))
    return buf.getvalue()


def many_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            zf.writestr(f"f{i}.txt", b"x")
    return buf.getvalue()


def lying(real: int, declared: int) -> bytes:
    """A zip whose one entry holds ``real`` zero bytes but whose headers declare ``declared``."""
    data = bytearray(bomb(real))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, declared)  # central directory: uncompressed size
    return bytes(data)


def as_attachment(data: bytes, name: str = "x.zip") -> Attachment:
    return Attachment(content_id="c1", attachment_name=name, content_type="application/zip", data=data)


# ============================================================================================ the inspection


def test_a_one_gib_zip_bomb_is_stopped_early_without_holding_what_it_inflates():
    data = bomb(1024 * MIB)
    assert len(data) < 2 * MIB  # ~1 MB on the wire, 1 GiB inflated: finding 8
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InflatedSizeError) as info:
            inspect_zip(as_attachment(data), IntakeLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "LIMIT.INFLATED"
    assert "compressed size" in info.value.message  # the ratio stopped it, long before 1 GiB
    assert peak < 8 * MIB, peak
    assert time.perf_counter() - started < 5


def test_the_total_budget_stops_an_archive_that_compresses_honestly():
    data = bomb(64 * MIB)
    limits = IntakeLimits(max_inflated_bytes=16 * MIB, max_zip_ratio=1e9)
    with pytest.raises(InflatedSizeError) as info:
        inspect_zip(as_attachment(data), limits)
    assert "beyond 16777216 bytes" in info.value.message
    assert inspect_zip(as_attachment(bomb(8 * MIB)), limits) == 8 * MIB


def test_a_zip_whose_headers_understate_its_size_is_refused_after_the_declared_bytes():
    data = lying(real=256 * MIB, declared=1000)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].file_size == 1000
    tracemalloc.start()
    try:
        with pytest.raises(AttachmentError) as info:
            inspect_zip(as_attachment(data), IntakeLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "EDXML.ATTACHMENT" and "CRC" in info.value.message
    assert peak < 4 * MIB, peak


def test_a_zip_whose_headers_overstate_its_size_is_counted_by_what_it_inflates():
    data = lying(real=32 * MIB, declared=4000 * MIB)
    limits = IntakeLimits(max_inflated_bytes=8 * MIB, max_zip_ratio=1e9)
    with pytest.raises(InflatedSizeError):
        inspect_zip(as_attachment(data), limits)


def test_entries_are_counted_from_the_raw_directory_before_zipfile_indexes_them():
    data = many_entries(2000)
    assert central_directory_entries(data) == 2000
    with pytest.raises(AttachmentCountError) as info:
        inspect_zip(as_attachment(data), IntakeLimits(max_attachments=100))
    assert info.value.code == "LIMIT.ATTACHMENTS" and info.value.detail["count"] == 2000
    # The EOCD's own count is not trusted: patched down to 1, the headers are still counted.
    patched = bytearray(data)
    eocd = patched.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", patched, eocd + 8, 1, 1)
    assert central_directory_entries(bytes(patched)) == 2000
    assert inspect_zip(as_attachment(many_entries(10)), IntakeLimits()) == 10


def test_not_a_zip_is_an_attachment_error():
    with pytest.raises(AttachmentError):
        inspect_zip(as_attachment(b"PK\x03\x04 not really"), IntakeLimits())


# ============================================================================================ through intake


class Clock:
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
    clock: Clock

    def stored(self) -> dict[str, int]:
        counts = self.svc.store.counts()
        return {t: counts[t] for t in STORED}


@pytest.fixture
def world(database_url: str, tmp_path, pki: DemoPki) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET_KEY,
        max_inflated_bytes=16 * MIB,
        max_recipients=3,
        max_statuses_per_day=3,
        max_statuses_total=5,
    )
    clock = Clock()
    svc = GatewayService(
        create_engine(settings),
        SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain),
        TrustStore.from_files(pki.trust, pki.crls),
        settings,
        clock=clock,
    )
    svc.store.create_schema()
    svc.registry.import_records(
        [{"organ_id": o, "name": o, "signature_policy": "off"} for o in (A, B, C, "000.00.00.H53")]
    )
    for system, organ in (("sys-a", A), ("sys-b", B)):
        svc.registry.add_system(system, [organ])
    yield World(svc, clock)
    svc.close()


def _with_files(files: list[tuple[str, bytes]], *, zip_them: bool = False) -> bytes:
    pkg = read_bytes(edoc(A, (B,)))
    return render(add_files(pkg, files, zip=zip_them))


def _refused(w: World, data: bytes, exc_type: type[Exception], system: str = "sys-a") -> Exception:
    before = w.stored()
    audit_before = len(w.svc.store.audit.entries(action="intake.refused", limit=10_000))
    with pytest.raises(exc_type) as info:
        w.svc.submit(system, data)
    assert w.stored() == before  # nothing stored, nothing queued
    refusals = w.svc.store.audit.entries(action="intake.refused", limit=10_000)
    assert len(refusals) == audit_before + 1 and refusals[0].outcome == info.value.code  # type: ignore[attr-defined]
    return info.value


def test_a_package_with_2000_attachments_is_refused(world: World):
    data = _with_files([(f"p{i}.txt", b"x") for i in range(2000)])
    err = _refused(world, data, AttachmentCountError)
    assert err.code == "LIMIT.ATTACHMENTS" and err.detail == {"count": 2000, "limit": 100}


def test_a_zip_bomb_attachment_is_refused(world: World):
    data = _with_files([("bomb.zip", bomb(1024 * MIB))])
    assert len(data) < 3 * MIB
    assert _refused(world, data, InflatedSizeError).code == "LIMIT.INFLATED"


def test_the_inflated_budget_is_per_package(world: World):
    # Three honest 6 MiB zips: each alone within 16 MiB, together not.
    data = _with_files([(f"z{i}.zip", honest(6 * MIB, i)) for i in range(3)])
    assert "beyond" in _refused(world, data, InflatedSizeError).message
    ok = _with_files([("z.zip", honest(6 * MIB)), ("doc.pdf", b"%PDF-1.4 tiny")], zip_them=True)
    assert world.svc.submit("sys-a", ok).duplicate is False


def test_too_many_recipients(world: World):
    data = edoc(A, (B, C, "000.00.00.H53", "000.00.00.H99"))
    err = _refused(world, data, RecipientCountError)
    assert err.code == "LIMIT.RECIPIENTS" and err.detail == {"count": 4, "limit": 3}
    assert world.svc.submit("sys-a", edoc(A, (B, C, "000.00.00.H53"))).duplicate is False


def test_statuses_per_document_and_recipient_per_day_and_in_total(world: World):
    w = world
    data = edoc(A, (B,))
    w.svc.submit("sys-a", data)
    for i in range(3):
        w.svc.submit("sys-b", status(B, data, StatusCode.ARRIVED, second=i))
    err = _refused(w, status(B, data, StatusCode.ACCEPTED, second=10), StatusQuotaError, "sys-b")
    assert err.code == "LIMIT.STATUSES"
    assert 0 < err.detail["retry_after"] <= 86400
    w.clock.now += timedelta(seconds=err.detail["retry_after"])  # the next Vietnam day
    for i in range(2):
        w.svc.submit("sys-b", status(B, data, StatusCode.ACCEPTED, second=20 + i))
    total = _refused(w, status(B, data, StatusCode.DONE, second=30), StatusQuotaError, "sys-b")
    assert total.detail == {"limit": 5, "recipient": B}  # the total cap has no retry_after
    assert (
        len(
            w.svc.store.statuses.history(
                w.svc.store.documents.edocs_with_recipients(read_bytes(data).document_id, None)[0][0].doc_id
            )
        )
        == 5
    )


def test_limits_are_settings(tmp_path):
    from gateway.config import load_settings

    s = load_settings(env={"EDOC_GATEWAY_MAX_ATTACHMENTS": "7", "EDOC_GATEWAY_MAX_ZIP_RATIO": "50"})
    assert IntakeLimits.from_settings(s) == replace(IntakeLimits(), max_attachments=7, max_zip_ratio=50.0)
