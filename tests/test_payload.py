"""gateway.payload: package bytes in memory when small, in an unlinked spool file when big, byte-exact either way."""

from __future__ import annotations

import hashlib
import os

import pytest

from gateway.payload import MEMORY_LIMIT, Payload, PayloadTooLarge, PayloadWriter


def _write(spool, data: bytes, piece: int = 70_000, **kw) -> Payload:
    writer = PayloadWriter(spool, **kw)
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    return writer.finish()


@pytest.mark.parametrize("size", [0, 1, MEMORY_LIMIT, MEMORY_LIMIT + 1, 3 * MEMORY_LIMIT + 17])
def test_written_payload_reads_back_byte_exact_with_its_size_and_digest(tmp_path, size):
    data = os.urandom(size)
    with _write(tmp_path / "spool", data) as payload:
        assert payload.in_memory is (size <= MEMORY_LIMIT)
        assert (payload.size, payload.sha256) == (size, hashlib.sha256(data).hexdigest())
        assert payload.read() == data
        assert payload.head(10) == data[:10]
        assert b"".join(payload.chunks(100_000)) == data
        assert all(len(c) <= 100_000 for c in payload.chunks(100_000))
    # The spool file was unlinked from the start: nothing is left in the directory, during or after.
    assert not any((tmp_path / "spool").iterdir()) if (tmp_path / "spool").exists() else True


def test_readers_of_one_spooled_payload_keep_their_own_positions(tmp_path):
    data = os.urandom(2 * MEMORY_LIMIT)
    with _write(tmp_path, data) as payload:
        a, b = payload.open(), payload.open()
        assert a.read(5) == data[:5]
        assert b.read(7) == data[:7]
        assert a.read(5) == data[5:10]
        assert b.read() == data[7:]


def test_writer_stops_at_the_first_chunk_past_its_limit_and_discards(tmp_path):
    writer = PayloadWriter(tmp_path, max_bytes=MEMORY_LIMIT + 10)
    writer.write(b"x" * (MEMORY_LIMIT + 5))
    with pytest.raises(PayloadTooLarge) as caught:
        writer.write(b"y" * 6)
    assert (caught.value.size, caught.value.limit) == (MEMORY_LIMIT + 11, MEMORY_LIMIT + 10)
    writer.discard()


def test_payload_of_bytes_and_its_repr_never_shows_the_bytes():
    payload = Payload.of(b"<secret/>")
    assert payload.read() == b"<secret/>" and payload.open().read() == b"<secret/>"
    assert list(payload.chunks(4)) == [b"<sec", b"ret/", b">"]
    assert "secret" not in repr(payload) and "size=9" in repr(payload)


def test_closed_spooled_payload_cannot_be_opened(tmp_path):
    payload = _write(tmp_path, os.urandom(MEMORY_LIMIT + 1))
    payload.close()
    payload.close()  # idempotent
    with pytest.raises(ValueError):
        payload.open()
