"""A package's stored bytes, whatever their form: inline in ``documents.raw`` or rows of ``document_chunks``.

Why (issue 14): a package used to be one ``documents.raw`` value. The database driver takes a parameter and hands
back a column value whole, so storing a 20 MB package held it whole (plus the driver's copy), and reading it back
held it again — with the bytes read from a :class:`~gateway.payload.Payload` that was built precisely so that no
one holds it whole. Now:

* a package of at most :data:`INLINE_LIMIT` (1 MiB) bytes stays in ``documents.raw`` exactly as before, one
  INSERT: the common 10 KB package costs not one statement more (tests/test_intake_statements.py);
* a bigger one is written as ``ceil(size / CHUNK_BYTES)`` rows of ``document_chunks(doc_id, seq, data)`` of
  1 MiB each, in the intake transaction right after its document row, read from the payload piece by piece (one
  INSERT per piece, never an executemany, which would want every piece at once); ``documents.raw`` is empty and
  ``documents.raw_chunks`` holds the count. Atomic with the document: a refused insert (the idempotency key taken,
  any constraint) rolls the pieces back with it, and ``ON DELETE CASCADE`` takes them with their document.
* every reader goes through :func:`pieces` — the one place that knows both forms — either as bytes
  (:func:`stored_bytes`: the push worker's batch, status lists, the console download) or as a spooled
  :class:`~gateway.payload.Payload` (:func:`stored_payload`: GetEdoc), read one piece per statement so that
  neither driver ever buffers more than 1 MiB of it (a plain SELECT of all pieces would: psycopg fetches a
  client-side result whole).

Alternatives weighed. *One bytea/BLOB per package* (before): whole in memory twice. *PostgreSQL large objects*:
streamable, but PostgreSQL only (SQLite is the default database), outside the row's ``ON DELETE``, and need their
own vacuuming (``vacuumlo``). *A content-addressed file store* (files named by SHA-256, the database holding the
hash): streams naturally and de-duplicates, but the bytes would leave the transaction — a crash between file and
row leaves an orphan or, worse, a row without its bytes, which a receipt already promised — they would need a
second backup kept consistent with the database's, and several gateway hosts behind one PostgreSQL would need a
shared filesystem. Chunked rows keep one transaction, one backup, identical code on SQLite and PostgreSQL, and no
shared filesystem; their cost is one statement per MiB, nothing next to moving that MiB.

Measured (20 MB package, one process, peak RSS growth from a reset high-water mark, 2-core machine shared with
other work, single runs — expect ±20 % on times, ±1 MiB on memory; PostgreSQL 15 on loopback):

======================================  ==================  ==================
one 20 MB package                       SQLite              PostgreSQL
======================================  ==================  ==================
whole value, INSERT (bytes in hand)     +40 MiB, 154 ms     +19 MiB, 195 ms
whole value, SELECT                     +38 MiB,  45 ms     +114 MiB, 155 ms
chunked, insert from a spooled payload  +4 MiB,   97 ms     +3 MiB,  119 ms
chunked, fetch to a spooled payload     +4 MiB,   27 ms     +6 MiB,  119 ms
======================================  ==================  ==================

(the whole-value INSERT came on top of the ``Payload.read()`` that made the bytes: +20 MiB more.) psycopg 3 sends
a ``bytes`` parameter in binary (``BytesBinaryDumper`` under SQLAlchemy's ``%(name)s``: one copy, no hex), but
reads ``bytea`` results in text format, hex-escaped — twice the size, then decoded: hence the 114 MiB, and why a
piece is read per statement. The chunked rows are the ``tests/test_store_chunks.py`` memory test (it prints
them); the whole-value rows a probe of plain INSERT/SELECT of one ``documents.raw``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any, Final

from sqlalchemy import Connection, bindparam, insert, select

from gateway.db import tables as t
from gateway.payload import CHUNK, Payload, PayloadWriter

#: Packages of at most this many bytes are stored inline in ``documents.raw``; bigger ones in pieces.
INLINE_LIMIT: Final = CHUNK
#: The size of every piece but the last.
CHUNK_BYTES: Final = CHUNK

_c = t.document_chunks
_INSERT_CHUNK = insert(_c)
_Q_CHUNK = select(_c.c.data).where(_c.c.doc_id == bindparam("doc_id"), _c.c.seq == bindparam("seq"))


class MissingChunk(RuntimeError):
    """A chunked document lacks a piece: the database was altered behind the gateway (never by its own writes)."""


def chunk_count(size: int) -> int:
    """How many pieces a package of ``size`` bytes is stored as (0: inline)."""
    return 0 if size <= INLINE_LIMIT else -(-size // CHUNK_BYTES)


def raw_columns(raw: bytes | Payload) -> dict[str, Any]:
    """The values of ``documents.raw`` and ``documents.raw_chunks`` for a package (bytes only when inline)."""
    size = raw.size if isinstance(raw, Payload) else len(raw)
    n = chunk_count(size)
    if n:
        return {"raw": b"", "raw_chunks": n}
    return {"raw": raw.read() if isinstance(raw, Payload) else raw, "raw_chunks": 0}


def write_pieces(conn: Connection, doc_id: str, raw: bytes | Payload, expected: int) -> None:
    """Insert the pieces of a package stored in ``expected`` pieces (its document row exists in this transaction)."""
    source = raw.chunks(CHUNK_BYTES) if isinstance(raw, Payload) else _slices(raw)
    written = 0
    for seq, piece in enumerate(source):
        conn.execute(_INSERT_CHUNK, {"doc_id": doc_id, "seq": seq, "data": piece})
        written += 1
    if written != expected:  # the payload changed size under us: never store a package short
        raise ValueError(f"package of {doc_id} gave {written} pieces, {expected} expected")


def pieces(conn: Connection, doc_id: str, raw: bytes | None, raw_chunks: int) -> Iterator[bytes]:
    """THE reader of stored bytes: a document's bytes in order, inline or chunked, one piece in memory at a time."""
    if not raw_chunks:
        yield bytes(raw or b"")
        return
    for seq in range(raw_chunks):
        data = conn.execute(_Q_CHUNK, {"doc_id": doc_id, "seq": seq}).scalar()
        if data is None:
            raise MissingChunk(f"document {doc_id}: piece {seq} of {raw_chunks} is missing")
        yield bytes(data)


def stored_bytes(conn: Connection, doc_id: str, raw: bytes | None, raw_chunks: int) -> bytes:
    """A document's bytes whole (callers whose consumer wants bytes); built without a second full copy."""
    if not raw_chunks:
        return bytes(raw or b"")
    out = io.BytesIO()
    for piece in pieces(conn, doc_id, raw, raw_chunks):
        out.write(piece)
    return out.getvalue()  # CPython hands over the buffer itself, not a copy


def stored_payload(
    conn: Connection, doc_id: str, raw: bytes | None, raw_chunks: int, spool_dir: str | os.PathLike[str] | None
) -> Payload:
    """A document's bytes as a :class:`Payload`: in memory when inline, spooled piece by piece when chunked."""
    if not raw_chunks:
        return Payload.of(raw or b"")
    with PayloadWriter(spool_dir, memory_limit=0) as writer:  # above 1 MiB by definition: straight to the file
        for piece in pieces(conn, doc_id, raw, raw_chunks):
            writer.write(piece)
        return writer.finish()


def _slices(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


__all__ = [
    "CHUNK_BYTES",
    "INLINE_LIMIT",
    "MissingChunk",
    "chunk_count",
    "pieces",
    "raw_columns",
    "stored_bytes",
    "stored_payload",
    "write_pieces",
]
