"""The one safe XML parser factory (gateway.md Intake 1–2).

Rules, in the order they are applied:

1. the size limit is checked on the byte count before anything is parsed;
2. a DOCTYPE (and with it every entity declaration) is refused — edXML never needs one, and refusing it
   outright closes XXE, parameter entities and billion-laughs in one move;
3. libxml2 runs with entity resolution, DTD loading and network access off;
4. ``huge_tree`` (text nodes over libxml2's 10 MB cap) is switched on only for inputs that need it,
   i.e. large packages whose base64 attachment is one big text node.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lxml import etree

from gateway.errors import EdxmlForbiddenError, EdxmlParseError, SizeLimitError

#: gateway.md Intake 1: the default package size limit.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

#: libxml2 refuses text nodes above 10,000,000 bytes unless huge_tree is on (XML_MAX_TEXT_LENGTH).
_HUGE_TREE_FROM = 9_000_000

# A cheap pre-scan for ASCII-compatible encodings; the post-parse docinfo check catches the rest
# (UTF-16 input, for example).
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")


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
    parser = make_parser(huge_tree=len(data) > _HUGE_TREE_FROM)
    try:
        root = etree.fromstring(bytes(data), parser=parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        raise EdxmlParseError(f"{what} is not well-formed XML: {exc.msg}", line=line, column=col) from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EdxmlForbiddenError(f"{what} contains a DOCTYPE declaration, which is not allowed")
    return tree


def _prolog(data: bytes | bytearray | memoryview) -> bytes:
    """The bytes before the root element's start tag, where a DOCTYPE would have to be.

    Scanning only the prolog keeps the check O(prolog) on 20 MB packages and avoids false alarms on
    ``<!ENTITY`` written inside text or CDATA. For encodings that are not ASCII-compatible no root tag
    is found here and the post-parse ``docinfo`` check does the work.
    """
    head = bytes(data[: 1 << 20])
    m = _ROOT_START.search(head)
    return head[: m.start()] if m else head


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
