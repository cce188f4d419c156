"""How the reader turns ``ContentTransferEncoded`` into :attr:`Attachment.data` (edxml.md §9).

``attachments="all"`` (the default: the CLI, the adapters, the demo): every attachment decoded and kept, as
:func:`decode_base64` decodes it. ``attachments="zips"`` (intake, issue 14): intake needs only the count and the
zips (the inflation policy, ``LIMIT.INFLATED``), so every attachment's base64 is still checked — the same
``EDXML.ATTACHMENT`` at the same path — but the decoded bytes are kept only where :attr:`Attachment.is_zip` would
say zip (declared content type or the zip magic); the others read ``data=None``.

For a spooled package (:class:`~gateway.xmlcheck.bulk.SpooledTexts`) the base64 texts are not taken from the tree
(``.text`` would be a second whole copy of each) but read again from the spool in pieces, all attachments in ONE
pass, and checked piece by piece by :class:`StreamedBase64`. That check only ever *accepts* what
:func:`decode_base64` accepts; whatever it cannot vouch for (a piece that does not decode, padding before the end,
a character outside the alphabet and ``" \\t\\r\\n"``) is handed back, and the reader then runs
:func:`decode_base64` on the element's whole text — so the refusal, message included, is exactly today's.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Literal

from gateway.edxml.model import _ZIP_TYPES, ZIP_MAGIC
from gateway.edxml.nodes import Node
from gateway.errors import AttachmentError
from gateway.xmlcheck.bulk import IndexPath, SpooledTexts

AttachmentMode = Literal["all", "zips"]
_WS = b" \t\r\n"


def decode_base64(text: str, path: str) -> bytes:
    """Strict base64 (RFC 4648 alphabet, padding checked); MIME line breaks and spaces are tolerated."""
    data = text.encode("ascii", errors="replace")
    if any(c in data for c in _WS):
        data = data.translate(None, _WS)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttachmentError(f"attachment content is not valid base64: {exc}", path=path) from None


class StreamedBase64:
    """Strict base64 checked in pieces (module docstring); keeps the decoded bytes only of a zip.

    Sound because base64 decodes in independent groups of four: a text whose pieces, cut at multiples of four
    characters after the whitespace is dropped, each decode strictly, with ``=`` only in the last group, decodes
    strictly as a whole to their concatenation."""

    def __init__(self, *, declared_zip: bool) -> None:
        self.declared_zip = declared_zip
        self.ok = True
        self._kept: io.BytesIO | None = io.BytesIO()  # getvalue() hands its buffer over: no second copy
        self._head = b""
        self._tail = b""
        self._padded = False

    def write(self, text: str) -> None:
        if not self.ok:
            return
        data = text.encode("ascii", errors="replace")
        if any(c in data for c in _WS):
            data = data.translate(None, _WS)
        if not data:
            return
        if self._padded:  # data after "=": not base64 (decode_base64 says how)
            self.ok = False
            return
        data = self._tail + data
        cut = len(data) - len(data) % 4
        self._tail = data[cut:]
        self._padded = b"=" in data
        if cut:
            try:
                self._take(base64.b64decode(data[:cut], validate=True))
            except (binascii.Error, ValueError):
                self.ok = False

    def _take(self, out: bytes) -> None:
        if len(self._head) < 4:
            self._head += out[: 4 - len(self._head)]
        if self._kept is None:
            return
        self._kept.write(out)
        if not self.declared_zip and len(self._head) == 4 and self._head != ZIP_MAGIC:
            self._kept = None  # not a zip: nothing more is kept

    def result(self) -> bytes | None:
        """The decoded bytes of a zip, ``None`` for any other attachment; call only when :attr:`ok` after
        :meth:`finish`."""
        if self.declared_zip or self._head == ZIP_MAGIC:
            return self._kept.getvalue() if self._kept is not None else b""
        return None

    def finish(self) -> None:
        if self._tail:  # not a multiple of four
            self.ok = False


class AttachmentBytes:
    """The ``data`` of each attachment the reader reads, in one of the modes of the module docstring."""

    def __init__(self, mode: AttachmentMode, spooled: SpooledTexts | None) -> None:
        if mode not in ("all", "zips"):
            raise ValueError(f"unknown attachment mode {mode!r}")
        self.keep_all = mode == "all"
        self.spooled = spooled if mode == "zips" else None
        self._checks: dict[int, StreamedBase64] = {}
        self._paths: dict[IndexPath, StreamedBase64] = {}
        self._fed = False

    def prepare(self, attachments: list[Node]) -> None:
        """Register the text-only ``ContentTransferEncoded`` elements of a spooled package (read later, in one pass)."""
        if self.spooled is None:
            return
        for i, node in enumerate(attachments):
            els = node.kids.get("ContentTransferEncoded")
            if els and not len(els[0]):
                check = self._checks[i] = StreamedBase64(declared_zip=_declared_zip(node))
                self._paths[self.spooled.register(els[0])] = check

    def data(self, index: int, enc: Node | None, path: str, content_type: str | None) -> bytes | None:
        """Attachment ``index``'s bytes (``None``: checked, not kept); ``EDXML.ATTACHMENT`` as decode_base64 says."""
        check = self._checks.get(index)
        if check is not None:
            self._feed()
            if check.ok:
                return check.result()
        data = decode_base64((enc.text or "") if enc is not None else "", path)  # today's read, and its refusal
        if self.keep_all or data[:4] == ZIP_MAGIC or (content_type or "").lower() in _ZIP_TYPES:
            return data
        return None

    def _feed(self) -> None:
        if self._fed or self.spooled is None:
            return
        self._fed = True
        self.spooled.feed({path: check.write for path, check in self._paths.items()})
        for check in self._checks.values():
            check.finish()


def _declared_zip(node: Node) -> bool:
    """The attachment's ContentType names a zip, read without the reader's side effects (its warnings); a
    ContentType the reader will refuse counts as zip (nothing is dropped on a guess)."""
    els = node.kids.get("ContentType")
    if not els:
        return False
    if len(els[0]):
        return True
    return (els[0].text or "").strip().lower() in _ZIP_TYPES


__all__ = ["AttachmentBytes", "AttachmentMode", "StreamedBase64", "decode_base64"]
