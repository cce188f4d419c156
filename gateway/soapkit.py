"""Hosting a spyne service behind our own WSGI front: the two things every spyne service of this project does the
same way — the gateway's SOAP edge (:mod:`gateway.web.soap`) and the reference receiver of the ``soap`` channel
(:mod:`adapters.soap.receiver`).

* :func:`call_spyne` — hand spyne an envelope that the front has already read and parsed safely (spyne's own parser
  accepts DTDs and logs whole bodies: it never sees the bytes) and take its answer as ``(status, body)``;
* :func:`reproducible_wsdl` / :func:`wsdl_with_address` — the WSDL spyne generates, with each ``xs:schema``'s
  children in a fixed order (spyne's order depends on what the process built before, so a committed WSDL would
  not be reproducible), and the service address substituted without spyne work.

A module of its own, beside neither edge nor adapter, because adapters may not import the web edges.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, Final

from lxml import etree
from spyne.interface.wsdl import Wsdl11
from spyne.server.wsgi import WsgiApplication

XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
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


def reproducible_wsdl(spyne: WsgiApplication, placeholder_address: str) -> bytes:
    """The WSDL of a spyne application with its schema children in a fixed order (kind, then name)."""
    wsdl = Wsdl11(spyne.app.interface)
    wsdl.build_interface_document(placeholder_address)
    root = etree.fromstring(wsdl.get_interface_document())  # spyne's own output, not untrusted input
    for schema in root.iter(f"{{{XSD_NS}}}schema"):
        children = list(schema)
        children.sort(key=lambda el: (_SCHEMA_ORDER.get(el.tag, 9), el.get("name") or el.get("namespace") or ""))
        schema[:] = children
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def wsdl_with_address(template: bytes, address: str) -> bytes:
    """``template`` (from :func:`reproducible_wsdl`) with ``address`` as every ``soap:address`` location."""
    root = etree.fromstring(template)  # our own output, not untrusted input
    for location in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        location.set("location", address)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


__all__ = ["STATUS_LINES", "WSDL_SOAP_NS", "XSD_NS", "call_spyne", "reproducible_wsdl", "wsdl_with_address"]
