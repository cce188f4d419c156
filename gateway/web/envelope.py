"""What a SOAP request to ``/soap`` must look like before spyne reads it (the guard's steps 3–4, issue 10).

The envelope is parsed once, bounded while it is parsed (:func:`gateway.xmlcheck.safe.parse_bounded`: depth,
elements, attributes, text; no DOCTYPE, no processing instruction, comments dropped), then held to the shape every
operation has — a SOAP 1.1 Envelope, one Body, one known operation, no ``xsi:nil`` on it, each parameter at most
once, identifiers within their limit, no unknown ``mustUnderstand`` header. Each refusal is a
:class:`~gateway.web.rawhttp.Refusal` carrying the Fault's error (HTTP 500: decided from the envelope, WS-I R1126).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

from lxml import etree

from gateway import ns
from gateway.errors import EdxmlForbiddenError, EdxmlParseError, RequestError, SizeLimitError
from gateway.web.envelope_stream import RequestPackages
from gateway.web.rawhttp import Refusal as _Refusal
from gateway.web.soap import FREE_TEXT_PARAMETERS, OPERATIONS, PACKAGE_PARAMETERS
from gateway.xmlcheck.safe import TreeLimits, parse_bounded
from gateway.xmlcheck.stream import parse_bounded_file

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"


def parse_envelope(
    body: bytes, max_bytes: int, limits: TreeLimits, max_identifier: int, understood: frozenset[str]
) -> etree._Element:
    """Bounded safe parse, then the shape every operation has: Envelope/Body/<one known operation>; a header with
    ``mustUnderstand`` must be one of ``understood``."""
    with _parse_refusals():
        root = parse_bounded(
            body, limits, max_bytes=max_bytes, what="SOAP envelope", strip_comments=True, forbid_pis=True
        ).getroot()
    return check_envelope(root, max_identifier, understood)


@dataclass(frozen=True)
class EnvelopeRules:
    """What :func:`read_envelope` holds a request to (the guard's settings)."""

    max_bytes: int
    limits: TreeLimits
    max_identifier: int
    understood: frozenset[str]


def read_envelope(body: IO[bytes], length: int, rules: EnvelopeRules, packages: RequestPackages) -> etree._Element:
    """:func:`parse_envelope` of the request body in a file, each package's text decoded into ``packages`` instead
    of the tree (:mod:`gateway.web.envelope_stream`): the same refusals, in the same order."""
    with _parse_refusals():
        root = parse_bounded_file(
            body, length, rules.limits, max_bytes=rules.max_bytes, what="SOAP envelope", bulk_text=packages.text_for
        ).getroot()
    return check_envelope(root, rules.max_identifier, rules.understood)


@contextlib.contextmanager
def _parse_refusals() -> Iterator[None]:
    """A parse error as the Fault it is: decided from the envelope, so HTTP 500 (WS-I R1126)."""
    try:
        yield
    except EdxmlForbiddenError as exc:
        raise _Refusal(500, exc) from None
    except EdxmlParseError as exc:
        raise _Refusal(500, RequestError(exc.message, **exc.detail)) from None
    except SizeLimitError as exc:  # a shape limit
        raise _Refusal(500, exc) from None


def check_envelope(root: etree._Element, max_identifier: int, understood: frozenset[str]) -> etree._Element:
    """The shape every operation has (module docstring); ``root`` or a refusal."""
    if root.tag == f"{{{SOAP12}}}Envelope":
        raise _Refusal(500, RequestError("SOAP 1.2 is not supported: use SOAP 1.1", path="/Envelope"))
    if root.tag != f"{{{ns.SOAP11}}}Envelope":
        raise _Refusal(500, RequestError(f"the root element must be a SOAP 1.1 Envelope, not {root.tag!r}"))
    bodies = root.findall(f"{{{ns.SOAP11}}}Body")
    if len(bodies) != 1:
        raise _Refusal(500, RequestError("the envelope must have exactly one soap:Body", path="/Envelope"))
    operations = [child for child in bodies[0] if isinstance(child.tag, str)]
    if len(operations) != 1:
        raise _Refusal(500, RequestError("soap:Body must contain exactly one operation", path="/Envelope/Body"))
    tag = operations[0].tag
    if tag not in OPERATIONS:
        raise _Refusal(
            500, RequestError(f"unknown operation {tag}", path=f"/Envelope/Body/{etree.QName(tag).localname}")
        )
    _check_parameters(operations[0], max_identifier)
    for header in root.iterfind(f"{{{ns.SOAP11}}}Header/*"):
        # SOAP 1.1 §4.2.3: a header the receiver must understand but does not is a Fault, not silently ignored.
        must = header.get(f"{{{ns.SOAP11}}}mustUnderstand", "0").strip() in ("1", "true")
        if must and header.tag not in understood:
            raise _Refusal(500, RequestError(f"header {header.tag} has mustUnderstand=1 and is not supported"))
    return root


def _check_parameters(operation: etree._Element, max_identifier: int) -> None:
    """The operation element as spyne can read it: no ``xsi:nil`` on it (spyne raised AttributeError/TypeError on
    ``xsi:nil`` of either value), each parameter at most once (every one is ``maxOccurs=1``; spyne silently took one
    of two), and identifier parameters within ``max_identifier`` characters.

    Parameters are told apart by local name, as spyne reads them; unknown children (spyne ignores them) are held to
    the identifier limit too.
    """
    name = etree.QName(operation).localname
    if operation.get(f"{{{XSI}}}nil") is not None:
        raise _Refusal(
            500, RequestError(f"xsi:nil is not allowed on the operation element {name}", path=f"/Envelope/Body/{name}")
        )
    seen: set[str] = set()
    for child in operation:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        path = f"/Envelope/Body/{name}/{local}"
        if local in seen:
            raise _Refusal(500, RequestError(f"{local} appears more than once in {name}", path=path))
        seen.add(local)
        if (name, local) not in PACKAGE_PARAMETERS and (name, local) not in FREE_TEXT_PARAMETERS:
            check_identifier(child, path, max_identifier)


def check_identifier(element: etree._Element | None, path: str, limit: int) -> None:
    """``SIZE.LIMIT`` for an identifier longer than ``limit`` characters; the message never quotes it."""
    text = element.text if element is not None else None
    if text is not None and len(text) > limit:
        raise _Refusal(
            500,
            SizeLimitError(
                f"{path.rsplit('/', 1)[-1]} is {len(text)} characters long, above the limit of {limit} "
                "for an identifier",
                path=path,
                kind="identifier",
                size=len(text),
                limit=limit,
            ),
        )


__all__ = ["EnvelopeRules", "check_envelope", "check_identifier", "parse_envelope", "read_envelope"]
