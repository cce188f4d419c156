"""The big text nodes of a spooled package, read again from the spool in pieces instead of from the tree (issue 14).

Why: a 20 MB package is one 20 MB base64 text node. The tree holds it once (libxml2's copy); every Python access
made a second whole copy — ``.text`` is a ``str`` of the same size, ``etree.tostring(method="c14n")`` another
(libxml2 escapes a text node into a new buffer, then into the output; ``write_c14n`` to a file object hands that
output over in one piece, measured: it does not stream). The package's bytes are still in the spool file, and a
*second* SAX pass over them with a parser target delivers the same text in pieces of a few KB, at 1 ms per MB and
no memory: :meth:`SpooledTexts.feed`.

A text read this way is the text the tree holds, character for character: the same bytes go through the same
libxml2 parser with the same options (no DTD, no entities — the tree's parse already refused any DOCTYPE), and a
target's ``data`` receives the characters, CDATA included, that make up ``.text`` of an element without element,
comment or processing-instruction children (the only elements registered here: the reader refuses any other). An
element is named by its *element index path* (:func:`index_path`), which the tree and the event stream share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from gateway.errors import EdxmlParseError
from gateway.payload import Payload

IndexPath = tuple[int, ...]


def index_path(el: etree._Element) -> IndexPath:
    """The position of ``el`` as element indexes from the root (the root is ``(0,)``; comments and PIs not counted)."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        steps.append(sum(1 for s in node.itersiblings(preceding=True) if isinstance(s.tag, str)))
        node = node.getparent()
    return tuple(reversed(steps))


class SpooledTexts:
    """The text-only elements of one spooled package whose text is read from the spool, not from the tree.

    The reader registers the elements it reads this way (:meth:`register`, an attachment's
    ``ContentTransferEncoded``); the signature check then knows which text nodes it may take out of the tree and
    stream instead (:func:`gateway.xmlcheck.enveloped.verify_enveloped`)."""

    def __init__(self, payload: Payload, *, huge_tree: bool) -> None:
        self.payload = payload
        self.huge_tree = huge_tree
        #: Registered elements (document order) and their index paths.
        self.elements: list[tuple[etree._Element, IndexPath]] = []

    def register(self, el: etree._Element) -> IndexPath:
        path = index_path(el)
        self.elements.append((el, path))
        return path

    def feed(self, sinks: Mapping[IndexPath, Callable[[str], None]]) -> None:
        """One SAX pass over the spool: every piece of the text of the element at each path goes to its sink, in
        document order; the pass stops after the last of them."""
        if not sinks:
            return
        target = _Feeder(sinks)
        parser = etree.XMLParser(  # make_parser's options, with a target
            target=target,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=self.huge_tree,
            dtd_validation=False,
            remove_blank_text=False,
            collect_ids=False,
        )
        try:
            with self.payload.open() as fh:
                etree.parse(fh, parser=parser)
        except _Done:
            return
        except etree.XMLSyntaxError as exc:  # pragma: no cover - the same bytes parsed into the tree already
            raise EdxmlParseError(f"edXML package is not well-formed XML: {exc.msg}") from None


class _Done(Exception):
    """Raised by the target after the last wanted element: the rest of the document is not parsed."""


class _Feeder:
    """A parser target that counts element positions and hands the wanted elements' characters to their sinks."""

    def __init__(self, sinks: Mapping[IndexPath, Callable[[str], None]]) -> None:
        self.sinks = sinks
        self.depths = {len(p) for p in sinks}
        self.left = len(sinks)
        self.path: list[int] = []
        self.children: list[int] = [0]
        self.sink: Callable[[str], None] | None = None

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        self.path.append(self.children[-1])
        self.children[-1] += 1
        self.children.append(0)
        self.sink = self.sinks.get(tuple(self.path)) if len(self.path) in self.depths else None

    def end(self, tag: str) -> None:
        if self.sink is not None:
            self.sink = None
            self.left -= 1
            if not self.left:
                raise _Done
        self.path.pop()
        self.children.pop()

    def data(self, text: str) -> None:
        if self.sink is not None:
            self.sink(text)

    def close(self) -> None:
        return None


__all__ = ["IndexPath", "SpooledTexts", "index_path"]
