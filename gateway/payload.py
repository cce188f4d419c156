"""A package's bytes, exactly as received, held in memory when small and in a spool file when big (issue 14).

Why: a 20 MB package used to be held whole several times over on its way through the gateway — the request body,
its base64 text, the decoded bytes, the database driver's copy — ten times its size in a worker. Every stage that
only passes the bytes on (an edge decoding base64, the store writing them, an edge answering with them) now passes a
:class:`Payload` and reads it in chunks; only the parser holds the package whole, once, as its tree.

A payload is written once (:class:`PayloadWriter`: chunks in, size and SHA-256 counted on the way) and then
read-only: :meth:`Payload.chunks` and :meth:`Payload.open` read it from the start as often as needed. Up to
``memory_limit`` bytes it stays in memory (the common 10 KB package costs no file); beyond, it goes to a temporary
file in the spool directory, unlinked from the start, so a crashed worker leaves nothing behind. Close it when done
(it is a context manager); a payload built from bytes needs no closing.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

#: Payloads up to this size stay in memory; larger ones go to a file in the spool directory.
MEMORY_LIMIT: Final = 1 << 20
#: The piece size :meth:`Payload.chunks` reads by default: large enough that per-chunk costs vanish, small enough to
#: be no memory at all next to a package.
CHUNK: Final = 1 << 20


class Payload:
    """Package bytes exactly as received (module docstring). Build with :meth:`of` or a :class:`PayloadWriter`."""

    __slots__ = ("_data", "_file", "sha256", "size")

    def __init__(self, *, data: bytes | None, file: IO[bytes] | None, size: int, sha256: str) -> None:
        self._data = data
        self._file = file
        #: The byte count and the hex SHA-256 of the bytes, counted once while they were written.
        self.size = size
        self.sha256 = sha256

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> Payload:
        """A payload over bytes already in memory (tests, small callers, the edges that read a body whole)."""
        data = bytes(data)
        return cls(data=data, file=None, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    @property
    def in_memory(self) -> bool:
        return self._data is not None

    def read(self) -> bytes:
        """The whole bytes. For a spooled payload this costs its size in memory: callers that can stream, stream."""
        if self._data is not None:
            return self._data
        return b"".join(self.chunks())

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (a prolog check, a content sniff)."""
        if self._data is not None:
            return self._data[:n]
        with self.open() as fh:
            return fh.read(n)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The bytes in pieces of at most ``size``, from the start."""
        if self._data is not None:
            view = memoryview(self._data)
            for start in range(0, len(view), size):
                yield bytes(view[start : start + size])
            return
        with self.open() as fh:
            while piece := fh.read(size):
                yield piece

    def open(self, buffer_size: int = CHUNK) -> IO[bytes]:
        """A new binary reader positioned at the start; readers do not disturb each other (own file offset).
        ``buffer_size``: a reader handing out small blocks (an HTTP upload's) needs no 1 MiB buffer of its own."""
        if self._data is not None:
            return io.BytesIO(self._data)
        if self._file is None:
            raise ValueError("the payload is closed")
        return io.BufferedReader(_PositionalReader(self._file.fileno(), self.size), buffer_size)

    def prefix(self, size: int, sha256: str) -> Payload:
        """The first ``size`` bytes, whose digest the caller counted while writing (a VDXP body less its CRLF). The
        result shares this payload's spool file: closing either closes both."""
        if not 0 <= size <= self.size:
            raise ValueError(f"a prefix of {size} bytes of a {self.size}-byte payload")
        if self._data is not None:
            return Payload(data=self._data[:size], file=None, size=size, sha256=sha256)
        return Payload(data=None, file=self._file, size=size, sha256=sha256)

    def close(self) -> None:
        """Give the spool file back (idempotent; bytes need nothing)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Payload:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the bytes
        where = "memory" if self.in_memory else "file"
        return f"Payload(size={self.size}, sha256={self.sha256[:12]}…, in {where})"


class PayloadWriter:
    """Chunks in, a :class:`Payload` out; counts size and SHA-256 as they arrive and enforces ``max_bytes``.

    ``max_bytes`` is checked on every write, so a caller streaming an unbounded source (a base64 text node, a MIME
    part) stops at the first chunk past the limit: :class:`PayloadTooLarge` (the caller turns it into its own
    ``SIZE.LIMIT`` wording)."""

    def __init__(
        self,
        spool_dir: str | os.PathLike[str] | None,
        *,
        max_bytes: int | None = None,
        memory_limit: int = MEMORY_LIMIT,
    ) -> None:
        self._dir = Path(spool_dir) if spool_dir is not None else None
        self._max = max_bytes
        self._memory_limit = memory_limit
        self._buffer: bytearray | None = bytearray()
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if not n:
            return
        if self._max is not None and self.size + n > self._max:
            raise PayloadTooLarge(self.size + n, self._max)
        self._hash.update(chunk)
        self.size += n
        if self._buffer is not None and len(self._buffer) + n <= self._memory_limit:
            self._buffer += chunk
            return
        if self._file is None:
            if self._dir is not None:
                self._dir.mkdir(parents=True, exist_ok=True)
            self._file = tempfile.TemporaryFile(dir=self._dir)  # noqa: SIM115 - owned by the Payload it becomes
            if self._buffer:
                self._file.write(self._buffer)
            self._buffer = None
        self._file.write(chunk)

    def finish(self) -> Payload:
        """The payload written so far; the writer is spent."""
        digest = self._hash.hexdigest()
        if self._file is None:
            data = bytes(self._buffer or b"")
            self._buffer = None
            return Payload(data=data, file=None, size=self.size, sha256=digest)
        self._file.flush()
        file, self._file = self._file, None
        return Payload(data=None, file=file, size=self.size, sha256=digest)

    def discard(self) -> None:
        """Drop what was written (a refused request): the spool file goes at once."""
        self._buffer = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> PayloadWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.discard()


class _PositionalReader(io.RawIOBase):
    """Reads a spool file with ``pread`` at its own offset: several readers of one payload never move each other."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        n = len(data)
        memoryview(buffer)[:n] = data
        self._pos += n
        return n


class PayloadTooLarge(Exception):
    """More bytes were written than the writer's ``max_bytes`` allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes written, above the limit of {limit} bytes")
        self.size = size
        self.limit = limit


__all__ = ["CHUNK", "MEMORY_LIMIT", "Payload", "PayloadTooLarge", "PayloadWriter"]
