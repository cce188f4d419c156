"""Writing ``multipart/related`` bodies (SOAP with Attachments): the client's SendDocument, the server's
GetDocument answer (legacy-edoc-vn.md §2.4, §6.3, §6.5, §7.3).

Why not ``requests_toolbelt.MultipartEncoder``: it writes ``multipart/form-data`` — every part gets a
``Content-Disposition: form-data; name=…`` header and the type is form-data — and it imports ``requests``, which a
protocol module may not (import-linter). What it does well is kept: :class:`MultipartBody` is a lazy, file-like
body with a known length (``len()``, ``read(n)``, iteration), so ``requests`` sends it with a ``Content-Length``
(legacy servers may not take chunked uploads) and never holds a large part in memory. The part headers are four
short ASCII lines we compose ourselves (no folding or encoded words are ever needed).

A part is bytes or a file; ``base64_text=True`` writes a file's Base64 encoding as the part body while the header
still says ``binary`` — exactly what Bkav's axis sends in GetDocument answers (§7.3), behind a per-peer switch.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from gateway.protocols.edocvn.names import MULTIPART_RELATED, ROOT_PART_TYPE, TEXT_XML

CRLF: Final = b"\r\n"
#: File reads while writing a part; a multiple of 3 so Base64 chunks concatenate without padding inside.
READ: Final = 48 * 1024


@dataclass(frozen=True)
class OutPart:
    """One part to write. ``data`` is bytes, a path, or an open binary file positioned at its start."""

    content_id: str
    content_type: str
    data: bytes | Path | IO[bytes]
    transfer_encoding: str = "binary"
    #: Write the Base64 text of ``data`` (no line breaks) instead of its bytes, whatever the label says (§7.3).
    base64_text: bool = False

    def raw_size(self) -> int:
        if isinstance(self.data, bytes):
            return len(self.data)
        if isinstance(self.data, Path):
            return self.data.stat().st_size
        here = self.data.tell()
        end = self.data.seek(0, os.SEEK_END)
        self.data.seek(here)
        return end - here

    def body_size(self) -> int:
        n = self.raw_size()
        return 4 * ((n + 2) // 3) if self.base64_text else n

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.data, bytes):  # in READ-sized pieces too: a reader's blocks never copy the whole part
            view = memoryview(self.data)
            for start in range(0, len(view), READ):
                piece = bytes(view[start : start + READ])
                yield base64.b64encode(piece) if self.base64_text else piece
            return
        handle: IO[bytes] = self.data.open("rb") if isinstance(self.data, Path) else self.data
        try:
            while chunk := handle.read(READ):
                yield base64.b64encode(chunk) if self.base64_text else chunk
        finally:
            if isinstance(self.data, Path):
                handle.close()


def new_boundary() -> str:
    """``MIMEBoundary_<hex>``, the form Bkav's runtime writes (§2.4); random, so it cannot occur in a part."""
    return f"MIMEBoundary_{uuid.uuid4().hex}"


def new_content_id(domain: str = "edoc-gateway") -> str:
    return f"{uuid.uuid4()}@{domain}"


class MultipartBody:
    """A ``multipart/related`` body written lazily: the root envelope first, then each part.

    ``content_type`` is the HTTP header value; ``len(body)`` the exact byte count; ``read(n)`` and iteration give
    the bytes in order. Read it once (it streams files and does not rewind them)."""

    def __init__(
        self,
        envelope: bytes,
        parts: Sequence[OutPart] = (),
        *,
        boundary: str | None = None,
        root_id: str | None = None,
        root_transfer_encoding: str = "8bit",
    ) -> None:
        self.boundary = boundary or new_boundary()
        self.root = OutPart(root_id or new_content_id(), ROOT_PART_TYPE, envelope, root_transfer_encoding)
        self.parts = (self.root, *parts)
        self._iter: Iterator[bytes] | None = None
        self._pending = b""

    @property
    def content_type(self) -> str:
        return f'{MULTIPART_RELATED}; type="{TEXT_XML}"; boundary="{self.boundary}"; start="<{self.root.content_id}>"'

    def _head(self, part: OutPart) -> bytes:
        lines = (
            f"--{self.boundary}",
            f"Content-Type: {part.content_type}",
            f"Content-Transfer-Encoding: {part.transfer_encoding}",
            f"Content-ID: <{part.content_id}>",
            "",
            "",
        )
        return "\r\n".join(lines).encode("ascii")

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode("ascii")

    def __len__(self) -> int:
        return sum(len(self._head(p)) + p.body_size() + len(CRLF) for p in self.parts) + len(self._tail())

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            yield self._head(part)
            yield from part.chunks()
            yield CRLF
        yield self._tail()

    def read(self, size: int = -1) -> bytes:
        """File-like reading, for HTTP clients that send a body with ``read`` in blocks. Each call copies at most
        one block and one piece of a part (≤ :data:`READ`), never what is left of the body."""
        if self._iter is None:
            self._iter = iter(self)
        if size < 0:
            out, self._pending = self._pending + b"".join(self._iter), b""
            return out
        while len(self._pending) < size:
            chunk = next(self._iter, None)
            if chunk is None:
                break
            self._pending = self._pending + chunk if self._pending else chunk
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def to_bytes(self) -> bytes:
        """The whole body, for small messages and tests."""
        return b"".join(self)
