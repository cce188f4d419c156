""":func:`~gateway.xmlcheck.safe.parse_bounded` for a document read from a file, whose big text nodes never enter the
tree (issue 14).

Why: a SOAP request carrying a 20 MB package is 27 MB of base64 in one text node. Parsed whole, it was held as the
request bytes, as the libxml2 text node, as a Python ``str`` and as the decoded bytes at once. Here the document is
read from its (spooled) file in pieces and parsed by an lxml parser whose *target* builds the same small tree with
:class:`lxml.etree.TreeBuilder`, except that the text of an element at one of ``limits.bulk``'s paths is handed, as
it arrives, to a :class:`TextSink` the caller chose (the SOAP edge decodes base64 into a spool file): the tree never
holds it.

Every rule of :func:`parse_bounded` applies, in the same order and with the same error: the size and the DOCTYPE/
ENTITY prolog scan and the count of namespace declarations before anything is parsed (a first pass over the file,
at ``bytes.count`` speed), ``huge_tree`` only for inputs that need it, each :class:`TreeLimits` check by the same
counter (:class:`~gateway.xmlcheck.safe.ShapeCounter`), processing instructions refused, comments dropped (the text
on both sides of one is one text: ``QUJD<!---->RA==`` is ``QUJDRA==``, in a package too), namespace errors refused.
A limit crossed is reported after the piece of input that crossed it has been parsed, so that a syntax error later
in the same piece wins, as it does in :func:`parse_bounded` (tests/test_soap_streaming.py compares the two).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, NamedTuple, Protocol

from lxml import etree

from gateway.errors import EdxmlForbiddenError, EdxmlParseError, GatewayError
from gateway.xmlcheck.safe import (
    DEFAULT_MAX_BYTES,
    ShapeCounter,
    TreeLimits,
    check_size,
    count_declarations,
    scan_prolog,
    syntax_error,
)

#: The piece fed to libxml2 at a time, as :func:`parse_bounded` feeds it.
CHUNK: Final = 64 * 1024
#: libxml2 refuses text nodes above 10,000,000 bytes unless huge_tree is on; the same switch as parse_bounded.
HUGE_TREE_FROM: Final = 9_000_000
#: The tag given to an element whose name lxml refuses (a QName broken by a namespace error): the document is
#: refused at the end with the namespace error libxml2 logged, as parse_bounded refuses it.
_BROKEN_TAG: Final = "{urn:edoc-gateway:broken-name}x"


class TextSink(Protocol):
    """Where the text of one bulk element goes, piece by piece; it decides what the text means."""

    def write(self, text: str) -> None: ...

    def end(self) -> None: ...


def parse_bounded_file(
    body: IO[bytes],
    size: int,
    limits: TreeLimits,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    what: str = "XML document",
    bulk_text: Callable[[etree._Element], TextSink],
    chunk: int = CHUNK,
) -> etree._ElementTree:
    """The first ``size`` bytes of the seekable ``body`` as :func:`parse_bounded` with ``strip_comments`` and
    ``forbid_pis`` would parse them (module docstring), except that the text of each element at a ``limits.bulk``
    path goes to ``bulk_text(element)`` instead of the tree. ``body`` is read twice and left at its end; ``chunk``
    (the piece libxml2 is fed) is parse_bounded's, and smaller only in tests that split a document everywhere."""
    check_size(size, max_bytes, what)
    _first_pass(body, size, limits, what)
    errors = _ERRORS.start()
    target = _Target(limits, what, bulk_text, errors)
    parser = etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=size > HUGE_TREE_FROM,
        remove_blank_text=False,
        collect_ids=False,
    )
    body.seek(0)
    remaining = size
    try:
        while remaining > 0:
            piece = body.read(min(chunk, remaining))
            if not piece:
                break
            remaining -= len(piece)
            parser.feed(piece)  # raises libxml2's fatal errors (a tree parser raises at the same feed)
            target.raise_pending()
        root = parser.close()
        target.raise_pending()
        _raise_logged_error(errors, what)  # namespace errors: a tree parser raises them at its close
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, what) from None
    finally:
        _ERRORS.stop()
        target.stop()
    if root is None or target.broken_name:  # cannot happen without a logged error; never accept it silently
        raise EdxmlParseError(f"{what} is not namespace-well-formed XML: a name or namespace URI is not valid")
    return root.getroottree()


class _ErrorCapture(etree.PyErrorLog):
    """libxml2's messages of a parse with a target, which lxml keeps from the parser's ``error_log`` and does not
    raise for namespace errors (a tree parser raises them at its close: tests/test_soap_streaming.py). Every error
    of a thread also goes to the thread's global log; this one, installed as that log (``use_global_python_log`` is per
    thread), keeps the entries while a parse of this thread collects them and drops them otherwise — never to
    the logging system: a message can quote the document."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def start(self) -> list[Any]:
        if not getattr(self._local, "installed", False):
            etree.use_global_python_log(self)
            self._local.installed = True
        self._local.entries = []
        return self._local.entries

    def stop(self) -> None:
        self._local.entries = None

    def receive(self, entry: Any) -> None:
        entries = getattr(self._local, "entries", None)
        if entries is not None:
            entries.append(entry)


_ERRORS: Final = _ErrorCapture()
_UNBOUND: Final = re.compile(r"Namespace prefix (\S+) on (\S+) is not defined")
#: Undefined entities are not errors with entities unresolved (lxml's feed parser ignores them the same way).
_IGNORED: Final = frozenset({etree.ErrorTypes.ERR_UNDECLARED_ENTITY, etree.ErrorTypes.WAR_UNDECLARED_ENTITY})


def _raise_logged_error(entries: list[Any], what: str) -> None:
    """``EDXML.PARSE`` for the first error libxml2 logged and did not stop for (a namespace error), as lxml's tree
    parser raises it when it closes."""
    for entry in entries:
        if entry.level >= etree.ErrorLevels.ERROR and entry.type not in _IGNORED:
            raise EdxmlParseError(
                f"{what} is not well-formed XML: {entry.message}", line=entry.line, column=entry.column
            )


def _first_pass(body: IO[bytes], size: int, limits: TreeLimits, what: str) -> None:
    """What :func:`parse_bounded` checks on the bytes before parsing: the prolog (no DOCTYPE/ENTITY) and the
    count of ``xmlns`` (namespace declarations cost libxml2 time before any event reaches the counter)."""
    body.seek(0)
    head = b""
    declarations = 0
    tail = b""
    remaining = size
    while remaining > 0:
        piece = body.read(min(1 << 20, remaining))
        if not piece:
            break
        remaining -= len(piece)
        if len(head) < 1 << 20:
            head += piece[: (1 << 20) - len(head)]
        # "xmlns" split across two pieces is counted once: the 4 bytes kept cannot hold a whole one.
        declarations += (tail + piece).count(b"xmlns")
        tail = piece[-4:]
    scan_prolog(head, what)
    count_declarations(declarations, limits, what)


class _Start(NamedTuple):
    """What the shape counter reads of a start tag (:meth:`ShapeCounter.check`), before lxml builds the element."""

    tag: str
    attrib: dict[str, str]


class _Long(str):
    """A text cut short (:meth:`_Target.data`) that reports its true length to the shape counter."""

    def __new__(cls, length: int) -> _Long:
        text = super().__new__(cls, "")
        text.length = length  # type: ignore[attr-defined]
        return text

    def __len__(self) -> int:
        return self.length  # type: ignore[attr-defined,no-any-return]


class _Ended:
    """An ended element as the shape counter reads it (its text, its children's tails), with the true length of a
    text cut short."""

    def __init__(self, element: etree._Element, long: dict[tuple[Any, str], int]) -> None:
        self._element = element
        self._long = long
        n = long.get((element, "text"))
        self.text = element.text if n is None else _Long(n)

    def __iter__(self) -> Iterator[Any]:
        for child in self._element:
            n = self._long.get((child, "tail"))
            yield child if n is None else _Tail(_Long(n))


class _Tail(NamedTuple):
    tail: str


class _Target:
    """The parser target: a :class:`etree.TreeBuilder` with the limits counted on each event and the bulk text
    diverted. An error is kept until the end of the piece being parsed (:meth:`raise_pending`), and nothing more
    is built after it."""

    def __init__(
        self,
        limits: TreeLimits,
        what: str,
        bulk_text: Callable[[etree._Element], TextSink],
        errors: list[Any],
    ) -> None:
        self._errors = errors  # libxml2's messages so far (_ErrorCapture)
        self._seen = 0
        self._builder = etree.TreeBuilder()
        self._shape = ShapeCounter(limits, what, forbid_pis=True)
        self._bulk = limits.bulk
        self._bulk_text = bulk_text
        self._sink: TextSink | None = None  # the open bulk element's, until its first child or its end
        self._sink_depth = 0
        self._pending: GatewayError | None = None
        self._tags: list[str] = []  # the open elements' tags, as the builder knows them
        self._limit = limits.max_text_chars
        self._run = 0  # characters of the text being parsed (an element's text or tail) ...
        self._run_owner: tuple[Any, str] = (None, "tail")  # ... whose it is
        self._long: dict[tuple[Any, str], int] = {}  # the length of each text cut short for being over the limit
        self.broken_name = False

    def raise_pending(self) -> None:
        if self._pending is not None:
            raise self._pending

    def stop(self) -> None:
        """Drop the partial tree (a refused document's) and end a sink left open."""
        self._builder = None  # type: ignore[assignment]
        if self._sink is not None:
            self._sink.end()
            self._sink = None

    def _step(self, work: Callable[[], Any]) -> Any:
        if self._pending is not None:
            return None
        try:
            return work()
        except GatewayError as exc:
            self._pending = exc
            return None

    # -- lxml's target interface

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str, str] | None = None) -> None:
        self._step(lambda: self._start(tag, attrib, nsmap or {}))

    def _start(self, tag: str, attrib: dict[str, str], nsmap: dict[str, str]) -> None:
        if self._sink is not None:  # a child ends the bulk element's text: what follows is a tail
            self._end_sink()
        shape = self._shape
        for prefix, uri in nsmap.items():
            shape.check((("start-ns", (prefix, uri)),))
        # Checked before the element is built: lxml adds attributes one by one, each looked up among those already
        # there — 100,000 attributes took 44 s (libxml2's own parse, with a hash table, takes 35 ms).
        shape.check((("start", _Start(self._tree_tag(tag), attrib)),))
        namespaces = {(prefix or None): uri for prefix, uri in nsmap.items()}
        try:
            element = self._builder.start(tag, attrib, namespaces)
        except ValueError:
            # A name or namespace URI lxml's API refuses. Mostly libxml2 has logged the namespace error that refuses
            # the document anyway; a URI that libxml2 took without a word (``http://a:.b/``) is refused here where
            # parse_bounded accepted it — a stricter verdict, never a looser one (the edge answers REQUEST.INVALID
            # to both a parse error and an envelope in such a namespace).
            self.broken_name = True
            element = self._builder.start(_BROKEN_TAG, {}, {})
        self._tags.append(element.tag)
        self._run, self._run_owner = 0, (element, "text")
        if self._bulk and tuple(shape.local) in self._bulk:
            self._sink = self._bulk_text(element)
            self._sink_depth = len(shape.local)

    def _tree_tag(self, tag: str) -> str:
        """The tag a tree parser gives the element: with an undeclared prefix it keeps ``prefix:local`` where a
        target only hears ``local`` — the path must be the same, or a package path would match here only."""
        entries = self._errors
        while self._seen < len(entries):
            entry = entries[self._seen]
            self._seen += 1
            unbound = _UNBOUND.fullmatch(entry.message.strip())
            if unbound and unbound.group(2) == tag:
                return f"{unbound.group(1)}:{tag}"
        return tag

    def end(self, tag: str) -> None:
        self._step(self._end)

    def _end(self) -> None:
        if self._sink is not None and self._sink_depth == len(self._shape.local):
            self._end_sink()
        element = self._builder.end(self._tags.pop())  # libxml2 has matched the end tag to the open element
        self._shape.check((("end", _Ended(element, self._long)),))
        self._run, self._run_owner = 0, (element, "tail")

    def data(self, text: str) -> None:
        if self._pending is not None:
            return
        if self._sink is not None:
            self._step(lambda: self._sink.write(text))  # type: ignore[union-attr]
            return
        # A text over the limit is refused where parse_bounded refuses it (at its element's end, with its length),
        # but only counted past the limit: an 8 MB identifier is not held as a str and then as a tree text (RSS).
        self._run += len(text)
        if self._run <= self._limit:
            self._builder.data(text)
        else:
            self._long[self._run_owner] = self._run

    def pi(self, target: str, data: str | None = None) -> None:
        self._step(lambda: self._shape.check((("pi", None),)))

    def doctype(self, *_: Any) -> None:
        self._step(self._doctype)

    def _doctype(self) -> None:
        raise EdxmlForbiddenError(f"{self._shape.what} contains a DOCTYPE declaration, which is not allowed")

    def close(self) -> etree._Element | None:
        """The root; None when the document broke off (lxml then raises libxml2's error, which an exception here
        would hide)."""
        if self._pending is not None or self._builder is None:
            return None
        try:
            return self._builder.close()
        except etree.XMLSyntaxError:
            return None

    def _end_sink(self) -> None:
        sink, self._sink = self._sink, None
        sink.end()  # type: ignore[union-attr]
