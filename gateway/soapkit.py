"""Hosting a spyne service behind our own WSGI front: the two things every spyne service of this project does the
same way — the gateway's SOAP edge (:mod:`gateway.web.soap`) and the reference receiver of the ``soap`` channel
(:mod:`adapters.soap.receiver`).

* :func:`call_spyne` — hand spyne an envelope that the front has already read and parsed safely (spyne's own parser
  accepts DTDs and logs whole bodies: it never sees the bytes) and take its answer as ``(status, body)``;
* :func:`reproducible_wsdl` / :func:`wsdl_with_address` — the WSDL spyne generates, with each ``xs:schema``'s
  children in a fixed order (spyne's order depends on what the process built before, so a committed WSDL would
  not be reproducible), and the service address substituted without spyne work;
* :func:`declare_namespaces`, :func:`set_documentation`, :func:`attach_policy` — what spyne cannot say in its WSDL
  (a service's ``wsdl:documentation``, a WS-Policy on the binding), added by a ``finish`` step of
  :func:`reproducible_wsdl`, so the published file stays spyne's output plus exactly those elements.

A module of its own, beside neither edge nor adapter, because adapters may not import the web edges.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import spyne.const
from lxml import etree
from spyne.interface.wsdl import Wsdl11
from spyne.server.wsgi import WsgiApplication

XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
WSP_NS: Final = "http://www.w3.org/ns/ws-policy"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#: The status lines a SOAP front answers with (RFC 9110 wording: 413 is "Content Too Large").
STATUS_LINES: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    500: "500 Internal Server Error",
}
_SCHEMA_ORDER: Final = {f"{{{XSD_NS}}}{t}": i for i, t in enumerate(("import", "simpleType", "complexType", "element"))}

# spyne's MethodContext.close() runs a full gc.collect() at most once a second "to return file descriptors" of its
# own uploads (spyne/context.py). Our services never hand spyne a file (the fronts close their spools themselves),
# and that collection, run in a request thread with the GIL held, stopped every thread and the event loop of the
# worker: 6 % of a served worker's request time, and a pause of tens of ms in the tail of whichever requests ran
# beside it (issue 14). The interpreter's own generational collector is left to do its work.
spyne.const.MIN_GC_INTERVAL = math.inf

WsgiCallable = Callable[[dict[str, Any], Callable[..., Callable[[bytes], None]]], Any]


def call_spyne(
    spyne: WsgiCallable, environ: Mapping[str, Any], extra: Mapping[str, Any]
) -> tuple[int, bytes, dict[str, Any]]:
    """Run ``spyne`` on a copy of ``environ`` plus ``extra`` (the parsed envelope, the caller's identity) with an
    empty body; return the HTTP status, the whole answer, and the environ spyne saw (its methods leave notes
    there)."""
    inner = dict(environ)
    inner.update(extra)
    # spyne never reads the body (it takes the parsed envelope); an empty stream makes sure it cannot.
    inner["wsgi.input"] = io.BytesIO(b"")
    inner["CONTENT_LENGTH"] = "0"
    captured: list[str] = []

    def capture(status: str, _headers: list[tuple[str, str]], _exc_info: Any = None) -> Callable[[bytes], None]:
        captured.append(status)
        return lambda _data: None

    chunks = spyne(inner, capture)
    try:
        payload = b"".join(c if isinstance(c, bytes) else c.encode("utf-8") for c in chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status = int(captured[0].split(" ", 1)[0]) if captured else 500
    return status, payload, inner


def reproducible_wsdl(
    spyne: WsgiApplication,
    placeholder_address: str,
    finish: Callable[[etree._Element], etree._Element] | None = None,
) -> bytes:
    """The WSDL of a spyne application with its schema children in a fixed order (kind, then name).

    ``finish`` takes the ``wsdl:definitions`` element and returns the one to publish (it may be a new element, as
    :func:`declare_namespaces` returns): the place for what spyne cannot generate.
    """
    wsdl = Wsdl11(spyne.app.interface)
    wsdl.build_interface_document(placeholder_address)
    root = etree.fromstring(wsdl.get_interface_document())  # spyne's own output, not untrusted input
    for schema in root.iter(f"{{{XSD_NS}}}schema"):
        children = list(schema)
        children.sort(key=lambda el: (_SCHEMA_ORDER.get(el.tag, 9), el.get("name") or el.get("namespace") or ""))
        schema[:] = children
    if finish is not None:
        root = finish(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def declare_namespaces(root: etree._Element, prefixes: Mapping[str, str]) -> etree._Element:
    """``root`` with ``prefixes`` (prefix → namespace) declared on it, so added elements need no local xmlns.

    lxml cannot add declarations to an existing element, so this is a new root with the same attributes and
    children; an already-declared prefix must keep its namespace.
    """
    nsmap = dict(root.nsmap)
    for prefix, namespace in prefixes.items():
        if nsmap.get(prefix, namespace) != namespace:
            raise ValueError(f"prefix {prefix!r} is already bound to {nsmap[prefix]!r}")
        nsmap[prefix] = namespace
    new = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=nsmap)
    new.text = root.text
    new.extend(list(root))
    return new


def set_documentation(element: etree._Element, text: str) -> None:
    """Make ``text`` the ``wsdl:documentation`` of a WSDL 1.1 element (it must be the element's first child)."""
    for old in element.findall(f"{{{WSDL_NS}}}documentation"):
        element.remove(old)
    doc = etree.Element(f"{{{WSDL_NS}}}documentation")
    doc.text = text
    element.insert(0, doc)


def attach_policy(root: etree._Element, policy: etree._Element, binding: str) -> None:
    """Publish ``policy`` (a ``wsp:Policy`` with a ``wsu:Id``) in the WSDL and attach it to the named binding.

    WS-PolicyAttachment §4.1: the policy sits in ``wsdl:definitions`` — before ``wsdl:types``, where WSDL 1.1 puts
    extensibility elements — and the binding refers to it with ``wsp:PolicyReference URI="#Id"`` as its first child,
    the layout WCF, CXF and Metro publish and read.
    """
    policy_id = policy.get(f"{{{WSU_NS}}}Id")
    if not policy_id:
        raise ValueError("the policy needs a wsu:Id for the binding to refer to")
    target = root.find(f"{{{WSDL_NS}}}binding[@name='{binding}']")
    if target is None:
        raise ValueError(f"no wsdl:binding named {binding!r}")
    first = 1 if len(root) and root[0].tag == f"{{{WSDL_NS}}}documentation" else 0
    root.insert(first, policy)
    target.insert(0, etree.Element(f"{{{WSP_NS}}}PolicyReference", URI=f"#{policy_id}"))


def wsdl_with_address(template: bytes, address: str) -> bytes:
    """``template`` (from :func:`reproducible_wsdl`) with ``address`` as every ``soap:address`` location."""
    root = etree.fromstring(template)  # our own output, not untrusted input
    for location in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        location.set("location", address)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


__all__ = [
    "STATUS_LINES",
    "WSDL_NS",
    "WSDL_SOAP_NS",
    "WSP_NS",
    "WSU_NS",
    "XSD_NS",
    "attach_policy",
    "call_spyne",
    "declare_namespaces",
    "reproducible_wsdl",
    "set_documentation",
    "wsdl_with_address",
]
