"""A request body that ``requests`` sends from a :class:`~gateway.payload.Payload` in pieces (issue 14).

Why: a big stored package reaches an adapter as a spool file; handing ``requests`` its bytes would hold the whole
package (and, for the caller that built it, a second copy) for as long as the upload lasts. ``requests`` sends a
file-like body in pieces when it can tell its length up front: :class:`PayloadBody` has ``__len__`` and
``tell()`` (``requests.utils.super_len`` reads both, so the request gets an exact ``Content-Length`` and is never
chunked — an axis behind nginx or Java servlet code wants the length), and ``read(n)``, which urllib3 calls with its
block size. Memory: the payload reader's buffer (:data:`BUFFER`) and one block in flight, whatever the package's size.

``seek(0)`` (any position, in fact) re-opens the payload: urllib3 rewinds a body before retrying a request whose
connection failed before it was sent (``Retry(connect=…)``), and ``requests`` before following a redirect (ours
are not followed). A trailer (``b"\\r\\n"`` for a VDXP server that wants the SDK's CRLF) follows the package.
"""

from __future__ import annotations

import io
from typing import IO, Final

from gateway.payload import Payload

#: The spool reader's buffer: urllib3 asks for 16 KiB blocks; 256 KiB keeps the reads few and the memory small.
BUFFER: Final = 256 * 1024


class PayloadBody:
    """``payload`` then ``trailer`` as a readable, rewindable body of known length (module docstring)."""

    def __init__(self, payload: Payload, trailer: bytes = b"") -> None:
        self._payload = payload
        self._trailer = trailer
        self._reader: IO[bytes] = payload.open(BUFFER)
        self._pos = 0

    def __len__(self) -> int:
        return self._payload.size + len(self._trailer)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` from the start (the only form urllib3 and requests use to rewind)."""
        if whence != io.SEEK_SET or offset < 0:
            raise io.UnsupportedOperation("a payload body seeks from its start only")
        self._reader.close()
        self._reader = self._payload.open(BUFFER)
        self._pos = 0
        while self._pos < offset and self.read(min(offset - self._pos, 1 << 20)):
            pass
        return self._pos

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative: only for small bodies, never called so here)."""
        if size is None or size < 0:
            size = len(self) - self._pos
        if self._pos < self._payload.size:
            piece = self._reader.read(min(size, self._payload.size - self._pos))
            if not piece:  # the spool file is shorter than its payload says: never send a short body as complete
                raise OSError(f"payload ended at {self._pos} of {self._payload.size} bytes")
        else:
            start = self._pos - self._payload.size
            piece = self._trailer[start : start + size]
        self._pos += len(piece)
        return piece

    def close(self) -> None:
        """The reader only: the payload belongs to the caller (the worker closes it when the attempt ends)."""
        self._reader.close()


__all__ = ["PayloadBody"]
