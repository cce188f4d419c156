"""The SOAP edge's big packages, in and out, in bounded memory (issue 14).

In: the request body (the front's spool file) is parsed by :func:`gateway.xmlcheck.stream.parse_bounded_file`,
which builds the same small envelope tree :func:`gateway.xmlcheck.safe.parse_bounded` built, except that the text
of a package parameter (:data:`gateway.web.soap.PACKAGE_PATHS`) goes, as it is parsed, to a :class:`Base64Text`:
strict base64 decoded piece by piece into a :class:`~gateway.payload.PayloadWriter` (a spool file above 1 MiB). The
tree never holds the 27 MB of base64 of a 20 MB package, and the package is never one ``bytes`` at the edge.
spyne's handler for the parameter (:meth:`gateway.web.soap._GuardedSoap11._package_from_element`) takes the
:class:`~gateway.payload.Payload` from :class:`RequestPackages`, kept in the WSGI environ.

A package's refusals keep their place in the order of checks: bad base64 and a package above
``max_package_bytes`` are found while parsing but raised only when spyne reads the parameter — after the envelope's
limits, its shape and authentication, exactly where :func:`gateway.web.soap_types.decode_package` and intake's size
check raised them (an unauthenticated request still gets ``AUTH.DENIED``, not a verdict on its package). Bad base64
wins over the size, as it did (the text was decoded before its size was known).

Out: :func:`answer_body` turns spyne's GetEdoc answer, whose package element holds a placeholder
(:func:`package_text`), into the answer's bytes in a spool file: the envelope before the placeholder, the base64
of the package written 3-byte-aligned piece by piece, the rest of the envelope. The front sends that file in pieces
(:class:`gateway.web.wsgibridge.StreamedBody`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from lxml import etree

from gateway.errors import RequestError
from gateway.payload import CHUNK, MEMORY_LIMIT, Payload, PayloadTooLarge, PayloadWriter
from gateway.web.rawhttp import Refusal
from gateway.xmlcheck.safe import check_size

#: WSGI environ keys shared with :mod:`gateway.web.soap` (the request's packages; the answer's placeholders).
ENV_PACKAGES: Final = "edoc_gateway.packages"
ENV_ANSWER_PACKAGES: Final = "edoc_gateway.answer_packages"
#: What :func:`gateway.web.soap_types.decode_package` tolerates between base64 characters.
_WHITESPACE: Final = str.maketrans("", "", " \t\r\n")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*(=*)")
#: Base64 text decoded at a time (a multiple of 4): large enough that per-piece costs vanish.
_DECODE_CHARS: Final = 256 * 1024
#: Package bytes encoded at a time for an answer (a multiple of 3, so the pieces' base64 concatenate).
_ENCODE_BYTES: Final = 3 * 256 * 1024


class Base64Text:
    """One package parameter's text → its decoded bytes, as :func:`decode_package` would decode the whole text:
    whitespace (space, tab, CR, LF) ignored anywhere, the base64 alphabet only, padding only at the end: one ``=``
    after 3 characters of a group, two after 2, any number after complete groups (as :func:`base64.b64decode` with
    ``validate=True`` accepts them). Pieces may split a group or the padding anywhere."""

    def __init__(self, writer: PayloadWriter, path: str, max_bytes: int, *, batch: int = _DECODE_CHARS) -> None:
        self._batch = batch  # characters gathered before they are decoded (small in tests: every split is tried)
        self._writer: PayloadWriter | None = writer
        self._path = path
        self._max = max_bytes
        self._pending: list[str] = []
        self._pending_chars = 0
        self._carry = ""
        self._letters = 0  # alphabet characters so far
        self._pads = 0
        self._bad = False
        self._size = 0  # decoded bytes so far (counted on after the writer overflowed)
        self._payload: Payload | None = None
        self._ended = False

    def write(self, text: str) -> None:
        if self._bad:
            return
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars >= self._batch:
            self._flush()

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._flush()
        n = self._letters % 4
        valid = (n == 0 and (self._pads == 0 or self._letters > 0)) or (n, self._pads) in ((2, 2), (3, 1))
        if self._bad or not valid:
            self._bad = True
            self.discard()
            return
        if self._carry:
            self._emit(binascii.a2b_base64(self._carry + "=" * self._pads))
        if self._writer is not None:
            self._payload = self._writer.finish()
            self._writer = None

    def result(self) -> Payload:
        """The decoded package, or the refusal :func:`decode_package` or intake's size check would have made."""
        if self._bad:
            raise RequestError("the value is not valid base64", path=self._path)
        if self._payload is None:
            check_size(self._size, self._max, "edXML package")  # raises: only an overflow leaves no payload
            raise RuntimeError("the package text was not ended")  # a wiring defect
        return self._payload

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
        if self._payload is not None:
            self._payload.close()
            self._payload = None

    def _flush(self) -> None:
        text = "".join(self._pending).translate(_WHITESPACE)
        self._pending.clear()
        self._pending_chars = 0
        if self._bad or not text:
            return
        if self._pads:  # only more padding may follow padding
            self._pads += len(text)
            self._bad = text.strip("=") != ""
            return
        match = _BASE64.fullmatch(text)
        if match is None:
            self._bad = True
            self.discard()
            return
        self._pads = len(match.group(1))
        letters = text[: len(text) - self._pads] if self._pads else text
        self._letters += len(letters)
        data = self._carry + letters
        cut = len(data) - len(data) % 4
        self._carry = data[cut:]
        if cut:
            if self._writer is None:  # over the limit already: count, do not decode
                self._size += cut // 4 * 3
            else:
                self._emit(binascii.a2b_base64(data[:cut]))

    def _emit(self, decoded: bytes) -> None:
        self._size += len(decoded)
        if self._writer is None:
            return
        try:
            self._writer.write(decoded)
        except PayloadTooLarge:
            self._writer.discard()
            self._writer = None


class RequestPackages:
    """The package parameters of one request, by element (kept in the environ for spyne's handler); closes them."""

    def __init__(self, spool_dir: Path, max_bytes: int) -> None:
        self._spool_dir = spool_dir
        self._max = max_bytes
        self._texts: dict[etree._Element, Base64Text] = {}

    def text_for(self, element: etree._Element) -> Base64Text:
        """The sink of a package parameter's text (the parser calls this when the element starts)."""
        parent = element.getparent()
        names = [etree.QName(e).localname for e in (parent, element) if e is not None]
        text = Base64Text(
            PayloadWriter(self._spool_dir, max_bytes=self._max), "/Envelope/Body/" + "/".join(names), self._max
        )
        self._texts[element] = text
        return text

    def payload(self, element: etree._Element) -> Payload | None:
        """The decoded package of ``element``; None when the parser did not divert its text (not a package path)."""
        text = self._texts.get(element)
        return None if text is None else text.result()

    def close(self) -> None:
        for text in self._texts.values():
            text.discard()
        self._texts.clear()

    def __enter__(self) -> RequestPackages:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@contextlib.contextmanager
def request_body(environ: dict[str, Any], length: int, spool_dir: Path) -> Iterator[IO[bytes]]:
    """The request body as a seekable file of exactly ``length`` bytes: the front's spool itself, or (another
    server's stream) a copy, refused with 400 if the client sent less, and closed after."""
    stream = environ["wsgi.input"]
    seekable = getattr(stream, "seekable", None)
    if callable(seekable) and seekable() and stream.tell() == 0 and stream.seek(0, 2) == length:
        stream.seek(0)
        yield stream
        return
    with _copy(stream, length, spool_dir) as copy:
        yield copy


def _copy(stream: Any, length: int, spool_dir: Path) -> IO[bytes]:
    spool_dir.mkdir(parents=True, exist_ok=True)
    copy = tempfile.SpooledTemporaryFile(max_size=1 << 20, dir=spool_dir)  # noqa: SIM115 - the caller closes it
    try:
        received = 0
        while received < length:
            piece = stream.read(min(CHUNK, length - received))
            if not piece:  # the refusal of rawhttp.read_body, word for word
                error = RequestError(f"request body ended after {received} of {length} bytes")
                raise Refusal(400, error, close=True)
            copy.write(piece)
            received += len(piece)
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return copy


# ------------------------------------------------------------------------------------------------ answers


def package_text(environ: dict[str, Any], package: Payload) -> str:
    """The text spyne writes for an answer's package: the base64 itself for a package up to 1 MiB (the small answer
    as before), else a placeholder that :func:`answer_body` replaces by the package streamed from its file."""
    if package.size <= MEMORY_LIMIT:
        with package:
            return base64.b64encode(package.read()).decode("ascii")
    token = f"edoc-gateway-package-{secrets.token_hex(16)}"
    environ.setdefault(ENV_ANSWER_PACKAGES, {})[token] = package
    return token


def answer_body(body: bytes, environ: dict[str, Any], spool_dir: Path, *, ok: bool) -> bytes | Payload:
    """spyne's answer with each placeholder replaced by its package's base64, in a spool file when there is one
    (``ok``: spyne answered without a Fault); the packages are closed."""
    packages: dict[str, Payload] = environ.pop(ENV_ANSWER_PACKAGES, {})
    if not packages or not ok:
        close_answer_packages(packages)
        return body
    try:
        writer = PayloadWriter(spool_dir)
        with writer:
            rest = body
            for token, package in packages.items():
                before, found, rest = rest.partition(token.encode("ascii"))
                if not found:
                    raise RuntimeError("an answer lost its package placeholder")  # a defect: never a partial answer
                writer.write(before)
                for piece in package.chunks(_ENCODE_BYTES):
                    writer.write(base64.b64encode(piece))
            writer.write(rest)
            return writer.finish()
    finally:
        close_answer_packages(packages)


def close_answer_packages(packages: dict[str, Payload]) -> None:
    for package in packages.values():
        package.close()


__all__ = [
    "ENV_ANSWER_PACKAGES",
    "ENV_PACKAGES",
    "Base64Text",
    "RequestPackages",
    "answer_body",
    "package_text",
    "request_body",
]
