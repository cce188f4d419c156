"""The one safe XML parser factory (gateway.md Intake 1–2).

Rules, in the order they are applied:

1. the size limit is checked on the byte count before anything is parsed;
2. a DOCTYPE (and with it every entity declaration) is refused — edXML never needs one, and refusing it
   outright closes XXE, parameter entities and billion-laughs in one move;
3. libxml2 runs with entity resolution, DTD loading and network access off;
4. ``huge_tree`` (text nodes over libxml2's 10 MB cap) is switched on only for inputs that need it,
   i.e. large packages whose base64 attachment is one big text node;
5. with :func:`parse_bounded`, the shape of the document (depth, element count, attributes per element, text per
   node) is held to :class:`TreeLimits` *while* it is parsed, so a hostile document is refused after the first chunk
   that breaks a limit, before any consumer walks it (issue 10: spyne spent 41–81 s on one element with 100,000
   attributes; libxml2 parses it in 35 ms).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from gateway.errors import EdxmlForbiddenError, EdxmlParseError, SizeLimitError
from gateway.payload import Payload

#: gateway.md Intake 1: the default package size limit.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

#: libxml2 refuses text nodes above 10,000,000 bytes unless huge_tree is on (XML_MAX_TEXT_LENGTH).
HUGE_TREE_FROM = 9_000_000

# A cheap pre-scan for ASCII-compatible encodings; the post-parse docinfo check catches the rest
# (UTF-16 input, for example).
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")
#: :func:`parse_bounded` feeds libxml2 this much at a time and checks the limits after each piece: a document that
#: breaks one is refused after at most this many more bytes of parsing.
_CHUNK: Final = 64 * 1024
#: libxml2's own resource limits (depth 256, or 2048 with huge_tree; 10 MB text without it) report this error code.
_ERR_RESOURCE_LIMIT: Final = 114


def make_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """A new lxml parser with every dangerous feature off.

    Parsers are cheap and not shared between threads, so callers get a fresh one each time.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        remove_blank_text=False,
        collect_ids=False,
    )


def check_size(size: int, max_bytes: int, what: str = "XML document") -> None:
    """Refuse ``size`` bytes above ``max_bytes`` with ``SIZE.LIMIT``."""
    if size > max_bytes:
        raise SizeLimitError(
            f"{what} is {size} bytes, above the limit of {max_bytes} bytes", size=size, limit=max_bytes
        )


def parse_bytes(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "XML document") -> etree._ElementTree:
    """Parse untrusted bytes into a tree, or raise a typed :class:`GatewayError`.

    Raises ``SIZE.LIMIT`` before parsing, ``EDXML.FORBIDDEN`` for a DOCTYPE or entity declaration,
    ``EDXML.PARSE`` for anything not well-formed (with line and column).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_bytes takes bytes; encode text before parsing")
    check_size(len(data), max_bytes, what)
    if _FORBIDDEN.search(_prolog(data)):
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE or ENTITY declaration, which is not allowed")
    parser = make_parser(huge_tree=len(data) > HUGE_TREE_FROM)
    try:
        root = etree.fromstring(bytes(data), parser=parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        raise EdxmlParseError(f"{what} is not well-formed XML: {exc.msg}", line=line, column=col) from None
    return _checked(root.getroottree(), parser, what)


def parse_payload(
    payload: Payload, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "XML document"
) -> etree._ElementTree:
    """:func:`parse_bytes` on a :class:`~gateway.payload.Payload`, with the same rules in the same order.

    A payload in memory takes :func:`parse_bytes` itself (the 10 KB package: no file object in the way). A spooled
    one is parsed from :meth:`Payload.open`: libxml2 pulls it in pieces, so the only whole copy of the package in
    memory is the tree (issue 14). The size limit is judged on ``payload.size`` before anything is read, the prolog
    check on its first MiB (where :func:`_prolog` looks in bytes too); the docinfo and namespace checks follow the
    parse as for bytes."""
    if payload.in_memory:
        return parse_bytes(payload.read(), max_bytes=max_bytes, what=what)
    check_size(payload.size, max_bytes, what)
    if _FORBIDDEN.search(_prolog(payload.head(1 << 20))):
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE or ENTITY declaration, which is not allowed")
    parser = make_parser(huge_tree=payload.size > HUGE_TREE_FROM)
    try:
        with payload.open() as fh:
            tree = etree.parse(fh, parser=parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        raise EdxmlParseError(f"{what} is not well-formed XML: {exc.msg}", line=line, column=col) from None
    return _checked(tree, parser, what)


def _checked(tree: etree._ElementTree, parser: etree.XMLParser, what: str) -> etree._ElementTree:
    """The checks after a parse: namespace well-formedness, then no DOCTYPE (whatever the encoding hid)."""
    _refuse_namespace_errors(parser, what)
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE declaration, which is not allowed")
    return tree


def _refuse_namespace_errors(parser: etree._FeedParser, what: str) -> None:
    """``EDXML.PARSE`` for a document that breaks Namespaces in XML (a QName such as ``a:b:c``).

    libxml2 reports these as recoverable and, in some documents, lxml returns a tree anyway — with a tag such as
    ``{ns}a:b:c`` that etree.QName and every tag lookup then refuse (fuzzing found this). A package is namespaced
    XML; such a document is not one. Warnings (a relative namespace URI) are left to the checks that read them."""
    for entry in parser.error_log:
        if entry.domain == etree.ErrorDomains.NAMESPACE and entry.level >= etree.ErrorLevels.ERROR:
            raise EdxmlParseError(
                f"{what} is not namespace-well-formed XML: {entry.message}", line=entry.line, column=entry.column
            )


@dataclass(frozen=True)
class TreeLimits:
    """Hard limits on the shape of an untrusted document, checked by :func:`parse_bounded` as it parses.

    Each limit is one that no legitimate document of the caller's kind comes near, and each bounds work a consumer
    would otherwise do per node: walking ``attrib.items()`` (spyne), recursing by depth, copying text.
    """

    #: Element nesting, the root being depth 1.
    max_depth: int
    #: Elements in the document; comments and processing instructions that are kept count as elements.
    max_elements: int
    #: Attributes of one element, namespace declarations included.
    max_attributes: int
    #: Characters of one text node (element text, tail, attribute value, comment, processing instruction) ...
    max_text_chars: int
    #: ... except the text of the elements at these paths, which may be as large as the document: where a package
    #: travels inside an envelope. Paths are local names from the root, namespaces not compared: the consumer (spyne)
    #: matches a parameter by its local name, so a package in any namespace must pass where it would be read.
    bulk: frozenset[tuple[str, ...]] = frozenset()


def parse_bounded(
    data: bytes,
    limits: TreeLimits,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    what: str = "XML document",
    strip_comments: bool = False,
    forbid_pis: bool = False,
) -> etree._ElementTree:
    """:func:`parse_bytes` that also holds the document to ``limits`` while parsing it.

    The document is fed to libxml2 in pieces; after each, the new parse events are checked, so the refusal comes
    as soon as a limit is crossed and the counting costs one Python step per element (never per attribute: the
    attribute count is ``len(attrib)``, constant time). ``SIZE.LIMIT`` (with ``path`` and the ``limit`` crossed) for a
    limit, ``EDXML.FORBIDDEN`` for a DOCTYPE or — with ``forbid_pis`` — a processing instruction, ``EDXML.PARSE``
    for the rest. ``strip_comments`` drops comments while parsing, and the text on both sides of one becomes one
    text node (``QUJD<!---->RA==`` reads ``QUJDRA==``, as every XML reader understands it, not ``QUJD``).
    """
    if not isinstance(data, bytes | bytearray):
        raise TypeError("parse_bounded takes bytes; encode text before parsing")
    check_size(len(data), max_bytes, what)
    if _FORBIDDEN.search(_prolog(data)):
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE or ENTITY declaration, which is not allowed")
    _check_declarations(data, limits, what)
    parser = etree.XMLPullParser(
        events=("start-ns", "start", "end", "comment", "pi"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=len(data) > HUGE_TREE_FROM,
        remove_blank_text=False,
        remove_comments=strip_comments,
        collect_ids=False,
    )
    shape = _Shape(limits, what, forbid_pis)
    closed = False
    try:
        for start in range(0, len(data), _CHUNK):
            parser.feed(bytes(data[start : start + _CHUNK]))
            shape.check(parser.read_events())
        closed = True
        root = parser.close()
        shape.check(parser.read_events())
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, what) from None
    finally:
        _release(parser, closed)
    _refuse_namespace_errors(parser, what)
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE declaration, which is not allowed")
    return tree


def syntax_error(exc: etree.XMLSyntaxError, what: str) -> SizeLimitError | EdxmlParseError:
    """libxml2's refusal as ours: its own depth or text-size cap (reached before our limits) is ``SIZE.LIMIT``,
    anything else ``EDXML.PARSE``, both with line and column (the bounded parsers of this module and of
    :mod:`gateway.xmlcheck.stream` say it alike)."""
    line, col = exc.position if exc.position else (None, None)
    if exc.code == _ERR_RESOURCE_LIMIT:
        return SizeLimitError(f"{what} exceeds a parser limit: {exc.msg}", line=line, column=col, kind="parser")
    return EdxmlParseError(f"{what} is not well-formed XML: {exc.msg}", line=line, column=col)


def _check_declarations(data: bytes | bytearray, limits: TreeLimits, what: str) -> None:
    """libxml2 spends ~2 µs per namespace declaration on one start tag (100,000 of them: 170–500 ms) before any event
    reaches us; they are counted in the bytes first, at memchr speed, each one counting as an element. A "xmlns" in
    text counts too: a legitimate document has a handful, far below any element limit."""
    count_declarations(data.count(b"xmlns"), limits, what)


def count_declarations(declarations: int, limits: TreeLimits, what: str) -> None:
    """``SIZE.LIMIT`` for more ``xmlns`` in a document than ``limits.max_elements`` (:func:`_check_declarations`)."""
    if declarations > limits.max_elements:
        raise SizeLimitError(
            f"{what} has {declarations} namespace declarations, above the limit of {limits.max_elements}",
            kind="elements",
            size=declarations,
            limit=limits.max_elements,
        )


def _release(parser: etree.XMLPullParser, closed: bool) -> None:
    """Break lxml's reference cycle (document → its parser → unread events → elements → document), which kept a
    refused request's tree — MBs for a hostile one — alive until the next cyclic GC: worker RSS rose by ~8 MB per
    8 MB identifier and fell only when the collector ran (issue 10 finding 3). Reading the events to the end empties
    lxml's event list; closing a parser left mid-document drops the partial tree it holds."""
    for _ in parser.read_events():
        pass
    if not closed:
        with contextlib.suppress(etree.XMLSyntaxError):  # it is mid-document: the error is expected
            parser.close()
        for _ in parser.read_events():
            pass


class _Shape:
    """The running counts of :func:`parse_bounded`: the open elements (their local names: the path), the elements
    so far, the namespace declarations of the element about to start."""

    def __init__(self, limits: TreeLimits, what: str, forbid_pis: bool) -> None:
        self.limits = limits
        self.what = what
        self.forbid_pis = forbid_pis
        self.local: list[str] = []
        self.elements = 0
        self.declarations = 0

    def check(self, events: Iterable[tuple[str, Any]]) -> None:
        lim = self.limits
        for event, node in events:
            if event == "start":
                self._count(1)
                if len(self.local) >= lim.max_depth:
                    self._refuse("depth", len(self.local) + 1, lim.max_depth, "levels of nesting", node.tag)
                attributes = len(node.attrib) + self.declarations
                self.declarations = 0
                if attributes > lim.max_attributes:
                    self._refuse("attributes", attributes, lim.max_attributes, "attributes on one element", node.tag)
                for value in node.attrib.values():
                    self._text(value, "an attribute value", node.tag)
                self.local.append(node.tag.rpartition("}")[2])
            elif event == "end":
                self._end(node)
            elif event == "start-ns":
                self.declarations += 1
                if self.declarations > lim.max_attributes:
                    self._refuse(
                        "attributes", self.declarations, lim.max_attributes, "namespace declarations on one element"
                    )
            elif event == "pi":
                if self.forbid_pis:
                    where = "/" + "/".join(self.local) if self.local else "the prolog"
                    raise EdxmlForbiddenError(
                        f"{self.what} contains a processing instruction (in {where}), which is not allowed",
                        path=where if self.local else None,
                    )
                self._count(1)
                self._text(node.text, "a processing instruction")
            else:  # a comment that is kept
                self._count(1)
                self._text(node.text, "a comment")

    def _end(self, node: etree._Element) -> None:
        limit = self.limits.max_text_chars
        # A package's text is never looked at: reading .text would copy tens of MB into a Python string.
        if not (self.limits.bulk and tuple(self.local) in self.limits.bulk):
            text = node.text
            if text is not None and len(text) > limit:
                self._refuse("text", len(text), limit, "characters of text")
        for child in node:
            tail = child.tail
            if tail is not None and len(tail) > limit:
                self._refuse("text", len(tail), limit, "characters of text")
        self.local.pop()

    def _count(self, n: int) -> None:
        self.elements += n
        if self.elements > self.limits.max_elements:
            self._refuse("elements", self.elements, self.limits.max_elements, "elements")

    def _text(self, text: str | None, kind: str, tag: str | None = None) -> None:
        if text is not None and len(text) > self.limits.max_text_chars:
            self._refuse("text", len(text), self.limits.max_text_chars, f"characters in {kind}", tag)

    def _refuse(self, kind: str, value: int, maximum: int, what: str, starting: str | None = None) -> None:
        """``SIZE.LIMIT`` at the path of the open elements (plus ``starting``, the element whose start tag broke
        the limit). The message names the limit and the count, never the offending text."""
        names = list(self.local)
        if starting is not None:
            names.append(starting.rpartition("}")[2])
        path = "/" + "/".join(names) if names else None
        raise SizeLimitError(
            f"{self.what} has {value} {what}{f' at {path}' if path else ''}, above the limit of {maximum}",
            path=path,
            kind=kind,
            size=value,
            limit=maximum,
        )


def _prolog(data: bytes | bytearray | memoryview) -> bytes:
    """The bytes before the root element's start tag, where a DOCTYPE would have to be.

    Scanning only the prolog keeps the check O(prolog) on 20 MB packages and avoids false alarms on
    ``<!ENTITY`` written inside text or CDATA. For encodings that are not ASCII-compatible no root tag
    is found here and the post-parse ``docinfo`` check does the work.
    """
    head = bytes(data[: 1 << 20])
    m = _ROOT_START.search(head)
    return head[: m.start()] if m else head


def scan_prolog(head: bytes, what: str) -> None:
    """``EDXML.FORBIDDEN`` for a DOCTYPE or ENTITY declaration in the prolog found in ``head`` (the first MiB)."""
    if _FORBIDDEN.search(_prolog(head)):
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE or ENTITY declaration, which is not allowed")


#: The running counts of :func:`parse_bounded`, for its streaming twin (:mod:`gateway.xmlcheck.stream`), which
#: must apply exactly the same rules.
ShapeCounter = _Shape


def read_limited(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file, checking its size first so an oversized file is never loaded into memory."""
    p = Path(path)
    check_size(p.stat().st_size, max_bytes, what=str(p))
    with p.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    check_size(len(data), max_bytes, what=str(p))
    return data


def parse_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._ElementTree:
    """:func:`parse_bytes` on a file, with the size checked before reading."""
    return parse_bytes(read_limited(path, max_bytes), max_bytes=max_bytes, what=str(path))
