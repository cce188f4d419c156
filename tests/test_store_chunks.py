"""Package bytes stored in pieces (issue 14, :mod:`gateway.db.chunks`), on SQLite and PostgreSQL.

A package of at most 1 MiB stays in ``documents.raw``; a bigger one becomes ``ceil(size / 1 MiB)`` rows of
``document_chunks`` in the intake transaction. Proven here: byte-exact round trips at the edges of that rule
through every reader (``documents.raw``/``payload``/``raw_many``, ``deliveries.fetch``, the push worker's turn),
atomicity (a refused insert leaves no piece), cascade on delete, a missing piece refused loudly, rows stored
inline before migration 0012 still read — and the point of it all: a 20 MB package goes in from a spool file and
comes back out to one while the process's peak RSS grows by well under the package's size (printed; run with
``-s`` to see the numbers).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db import (
    AgencyRecord,
    AuditEntry,
    DocumentRecord,
    IdempotencyConflict,
    NewDocument,
    StatusRecord,
    Store,
    SystemRecord,
    create_engine,
)
from gateway.db import tables as t
from gateway.db.chunks import MissingChunk, chunk_count
from gateway.db.claims import ClaimRequest
from gateway.payload import Payload, PayloadWriter
from gateway.services.mailbox import Mailbox

NOW = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC)
MiB = 1 << 20
SENDER, MAILBOX_TO, PUSH_TO = "000.00.01.H53", "000.00.00.G22", "000.00.00.P01"
#: Empty, exactly the inline limit, one byte past it (two pieces, the second of one byte), several pieces + odd.
SIZES = [0, MiB, MiB + 1, 5 * MiB + 12345]


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(create_engine(database_url), spool_dir=tmp_path / "spool")
    s.create_schema()
    s.registry.upsert_agencies(
        [
            AgencyRecord(organ_id=SENDER, name=SENDER),
            AgencyRecord(organ_id=MAILBOX_TO, name=MAILBOX_TO),
            AgencyRecord(organ_id=PUSH_TO, name=PUSH_TO, channel="soap", endpoint="https://peer.example/soap"),
        ],
        now=NOW,
    )
    yield s
    s.engine.dispose()


def new_doc(raw: bytes | Payload, *, idem: str | None = None, recipients=(), status=None) -> NewDocument:
    doc_id = uuid.uuid4().hex
    size = raw.size if isinstance(raw, Payload) else len(raw)
    return NewDocument(
        document=DocumentRecord(
            doc_id=doc_id,
            kind="edoc",
            sender=SENDER,
            document_id=f"{SENDER},2026/03/01,{doc_id[:6]}/VP",
            sha256="00" * 32,
            size=size,
            received_at=NOW,
            signature_state="valid",
            idem_key=idem or uuid.uuid4().hex * 2,
            bussiness_doc_type=0,
            meta={},
        ),
        raw=raw,
        recipients=recipients,
        audit=AuditEntry(at=NOW, action="intake.accepted", doc_id=doc_id),
        status=status,
    )


def spooled(data: bytes, spool: Path) -> Payload:
    """``data`` as a payload built the way the edges build one: written in pieces (a file above 1 MiB)."""
    with PayloadWriter(spool) as writer:
        for start in range(0, len(data), 64 * 1024):
            writer.write(data[start : start + 64 * 1024])
        return writer.finish()


def stored_form(store: Store, doc_id: str) -> tuple[int, int, int]:
    """(``raw_chunks``, length of ``documents.raw``, rows in ``document_chunks``) of a document."""
    with store.engine.connect() as conn:
        raw_chunks, raw = conn.execute(
            select(t.documents.c.raw_chunks, t.documents.c.raw).where(t.documents.c.doc_id == doc_id)
        ).one()
        rows = conn.execute(select(t.document_chunks.c.seq).where(t.document_chunks.c.doc_id == doc_id)).all()
    return raw_chunks, len(raw), len(rows)


def fetch(store: Store, delivery_id: str) -> Payload:
    payload = store.deliveries.fetch(delivery_id, NOW, AuditEntry(at=NOW, action="delivery.fetch"))
    assert payload is not None
    return payload


def spool_fds(spool: Path) -> list[str]:
    """The open files of this process inside ``spool`` (unlinked spool files show as ``… (deleted)``)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(spool)):
            found.append(target)
    return found


# ================================================================================================ round trips


@pytest.mark.parametrize("size", SIZES, ids=["0", "1MiB", "1MiB+1", "5MiB+12345"])
def test_every_reader_gets_the_bytes_exactly(store: Store, tmp_path: Path, size: int):
    data = random.Random(size).randbytes(size)
    digest = hashlib.sha256(data).hexdigest()
    small = new_doc(b"<small/>")
    store.documents.insert_document(small)
    with spooled(data, tmp_path / "in") as payload:
        assert payload.in_memory == (size <= MiB)
        new = new_doc(payload, recipients=((MAILBOX_TO, "mailbox"), (PUSH_TO, "soap")))
        ids = store.documents.insert_document(new)
    doc_id = new.document.doc_id
    pieces = {0: 0, MiB: 0, MiB + 1: 2, 5 * MiB + 12345: 6}[size]
    assert chunk_count(size) == pieces
    # Inline: the bytes in documents.raw, no piece. Chunked: raw empty, raw_chunks pieces, that many rows.
    assert stored_form(store, doc_id) == ((0, size, 0) if not pieces else (pieces, 0, pieces))

    assert store.documents.raw(doc_id) == data
    with store.documents.payload(doc_id) as read:  # type: ignore[union-attr]
        assert (read.size, read.sha256, read.read()) == (size, digest, data)
        assert read.in_memory == (not pieces)  # a chunked one is spooled, never held whole
    assert store.documents.raw_many([doc_id, small.document.doc_id, "f" * 32]) == {
        doc_id: data,
        small.document.doc_id: b"<small/>",
    }
    with fetch(store, ids[MAILBOX_TO]) as fetched:
        assert (fetched.size, fetched.sha256) == (size, digest)
        assert b"".join(fetched.chunks(777_777)) == data
    delivery, _ = store.deliveries.delivery(ids[MAILBOX_TO])  # type: ignore[misc]
    assert delivery.state == "fetched"  # the fetch's own writes happened with the read

    result = store.outbox.turn(
        "worker-1",
        now=NOW,
        lease_until=NOW + timedelta(minutes=1),
        finished=(),
        request=ClaimRequest(limit=5, channels=("soap",)),
        plan=lambda claims, _summary: claims,
    )
    assert [c.delivery_id for c in result.claims] == [ids[PUSH_TO]]
    # The push worker's turn: a small package comes with it, a big one is only named (read when its send starts).
    assert (result.data, result.chunked) == (({doc_id: data}, frozenset()) if not pieces else ({}, {doc_id}))


def test_bytes_given_whole_are_chunked_too(store: Store):
    data = random.Random(3).randbytes(3 * MiB + 5)
    new = new_doc(data)
    store.documents.insert_document(new)
    assert stored_form(store, new.document.doc_id) == (4, 0, 4)
    assert store.documents.raw(new.document.doc_id) == data


def test_a_fetched_big_package_is_spooled_in_the_stores_spool_directory(store: Store, tmp_path: Path):
    data = random.Random(2).randbytes(2 * MiB)
    new = new_doc(data, recipients=((MAILBOX_TO, "mailbox"),))
    ids = store.documents.insert_document(new)
    spool = tmp_path / "spool"
    before = spool_fds(spool)
    payload = fetch(store, ids[MAILBOX_TO])
    opened = [f for f in spool_fds(spool) if f not in before]
    assert len(opened) == 1 and opened[0].endswith("(deleted)")  # unlinked from the start: a crash leaves nothing
    payload.close()
    assert spool_fds(spool) == before


def test_the_mailbox_hands_over_the_stores_spooled_payload(store: Store):
    """``Mailbox.fetch_payload`` (GetEdoc's path) returns the store's payload itself, spooled; ``fetch`` is its
    ``read()`` — both audited fetches of the receiver's own system."""
    store.registry.add_system(
        SystemRecord(
            id="SYS-G22",
            name="G22",
            secret_enc=b"-",
            secret_hash="-",
            active=True,
            created_at=NOW,
            agencies=(MAILBOX_TO,),
        )
    )
    data = random.Random(9).randbytes(3 * MiB + 9)
    ids = store.documents.insert_document(new_doc(data, recipients=((MAILBOX_TO, "mailbox"),)))
    mailbox = Mailbox(store, lambda: NOW)
    with mailbox.fetch_payload("SYS-G22", ids[MAILBOX_TO]) as payload:
        assert not payload.in_memory and payload.size == len(data)
        assert payload.sha256 == hashlib.sha256(data).hexdigest()
    assert mailbox.fetch("SYS-G22", ids[MAILBOX_TO]) == data
    assert len(store.audit.entries(action="delivery.fetch", limit=10)) == 2


def test_rows_stored_inline_before_0012_are_still_read(store: Store):
    """Migration 0012 rewrites nothing: a big package stored whole in ``raw`` (``raw_chunks`` 0) reads as before."""
    new = new_doc(b"x")
    store.documents.insert_document(new)
    big = random.Random(7).randbytes(2 * MiB + 3)
    with store.engine.begin() as conn:
        conn.execute(update(t.documents).where(t.documents.c.doc_id == new.document.doc_id).values(raw=big))
    assert store.documents.raw(new.document.doc_id) == big
    with store.documents.payload(new.document.doc_id) as read:  # type: ignore[union-attr]
        assert read.read() == big


# ================================================================================================ atomicity


def test_a_taken_idempotency_key_leaves_no_piece(store: Store, tmp_path: Path):
    first = new_doc(random.Random(1).randbytes(3 * MiB), idem="k" * 64)
    store.documents.insert_document(first)
    before = store.counts()
    assert before["document_chunks"] == 3
    with (
        spooled(random.Random(2).randbytes(4 * MiB), tmp_path / "in") as payload,
        pytest.raises(IdempotencyConflict) as info,
    ):
        store.documents.insert_document(new_doc(payload, idem="k" * 64))
    assert info.value.winner.doc_id == first.document.doc_id
    assert store.counts() == before


def test_a_failure_after_the_pieces_undoes_them(store: Store):
    """The last row of the transaction fails (a history row about a document that does not exist): the pieces,
    written before it, go with everything else."""
    bad_status = StatusRecord(
        doc_id="f" * 32, recipient=MAILBOX_TO, reporter=MAILBOX_TO, status_code="01", received_at=NOW
    )
    before = store.counts()
    with pytest.raises(IntegrityError):
        store.documents.insert_document(new_doc(random.Random(4).randbytes(2 * MiB + 1), status=bad_status))
    assert store.counts() == before


def test_pieces_go_with_their_document(store: Store):
    keep, drop = new_doc(random.Random(5).randbytes(2 * MiB)), new_doc(random.Random(6).randbytes(3 * MiB))
    store.documents.insert_document(keep)
    store.documents.insert_document(drop)
    with store.engine.begin() as conn:
        conn.execute(delete(t.documents).where(t.documents.c.doc_id == drop.document.doc_id))
    assert store.counts()["document_chunks"] == 2  # ON DELETE CASCADE (SQLite: foreign_keys=ON)
    assert store.documents.raw(keep.document.doc_id) == keep.raw


def test_a_missing_piece_is_refused_not_served_short(store: Store):
    new = new_doc(random.Random(8).randbytes(3 * MiB), recipients=((MAILBOX_TO, "mailbox"),))
    ids = store.documents.insert_document(new)
    with store.engine.begin() as conn:
        conn.execute(delete(t.document_chunks).where(t.document_chunks.c.seq == 1))
    with pytest.raises(MissingChunk, match="piece 1 of 3"):
        store.documents.raw(new.document.doc_id)
    with pytest.raises(MissingChunk):
        fetch(store, ids[MAILBOX_TO])
    delivery, _ = store.deliveries.delivery(ids[MAILBOX_TO])  # type: ignore[misc]
    assert delivery.state == "queued" and delivery.fetched_at is None  # the failed fetch changed nothing


# ================================================================================================ memory


def _status_kib(name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)


def _settle() -> int:
    """Free what can be freed, reset the peak (VmHWM := VmRSS) and return the resident size in KiB."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: the measure is only less tight
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kib("VmRSS")


def test_20_mb_insert_and_fetch_in_bounded_memory(store: Store, tmp_path: Path):
    size = 20_000_000 + 7
    rng = random.Random(20)
    with PayloadWriter(tmp_path / "in") as writer:
        for start in range(0, size, MiB):
            writer.write(rng.randbytes(min(MiB, size - start)))
        payload = writer.finish()
    # Warm up: statements compiled, pools and caches filled, so the measure is the package's own cost.
    warm = new_doc(random.Random(0).randbytes(2 * MiB + 1), recipients=((MAILBOX_TO, "mailbox"),))
    fetch(store, store.documents.insert_document(warm)[MAILBOX_TO]).close()

    new = new_doc(payload, recipients=((MAILBOX_TO, "mailbox"),))
    base = _settle()
    started = time.perf_counter()
    ids = store.documents.insert_document(new)
    insert_s, insert_kib = time.perf_counter() - started, _status_kib("VmHWM") - base
    payload.close()

    base = _settle()
    started = time.perf_counter()
    fetched = fetch(store, ids[MAILBOX_TO])
    fetch_s, fetch_kib = time.perf_counter() - started, _status_kib("VmHWM") - base
    with fetched:
        assert (fetched.size, fetched.sha256) == (size, new.raw.sha256)  # type: ignore[union-attr]
        assert not fetched.in_memory

    dialect = store.dialect
    print(
        f"\n[{dialect}] 20 MB package: insert {insert_s * 1000:.0f} ms, peak RSS +{insert_kib / 1024:.1f} MiB; "
        f"fetch {fetch_s * 1000:.0f} ms, peak RSS +{fetch_kib / 1024:.1f} MiB "
        f"(bound {size * 0.5 / MiB:.1f} MiB)"
    )
    assert insert_kib * 1024 < size * 0.5, f"insert grew the peak RSS by {insert_kib} KiB"
    assert fetch_kib * 1024 < size * 0.5, f"fetch grew the peak RSS by {fetch_kib} KiB"
