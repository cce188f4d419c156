"""SOAP 1.1 Faults, built in one place for the guard and the spyne protocol.

STYLE.md rule 5: errors are translated once, at the edge; this module is that translation for SOAP. Every
refusal — whether the guard refuses a request before spyne sees it or a use case raises a
:class:`~gateway.errors.GatewayError` — leaves as the same Fault::

    <soap:Fault>
      <faultcode>soap:Client</faultcode>                       (soap:Server: retryable or internal)
      <faultstring>CODE: English message</faultstring>
      <detail>
        <GatewayError xmlns="urn:edoc-gateway:soap:1">
          <code>CODE</code><message>…</message><messageVi>…</messageVi><path>…</path>  (path only when known)
        </GatewayError>
      </detail>
    </soap:Fault>

so a client branches on ``detail/GatewayError/code`` (or the prefix of ``faultstring``) and never parses prose.

Messages quote what the client sent ("system X may not read the mailbox of <organId>"). A Fault never carries such a
value whole (issue 10: a 16 MB organId came back in the Fault): :func:`gateway.errors.clip` cuts every unbroken run
of more than ``CLIP_OVER`` characters to its first ``CLIP_KEEP`` and says how long it was, in the message and the
path — as the JSON edges' error bodies do (:meth:`gateway.errors.GatewayError.to_dict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from lxml import etree

from gateway import ns
from gateway.errors import GatewayError, clip

#: Target namespace of the SOAP service and of the Fault detail.
SOAP_TNS: Final = "urn:edoc-gateway:soap:1"

#: The code of an unexpected exception. Not in :mod:`gateway.errors` because nothing raises it: it only
#: ever exists on the wire, in place of details that must not leak.
INTERNAL_CODE: Final = "GATEWAY.INTERNAL"

_ENV = ns.SOAP11
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FaultInfo:
    """What a Fault says; built from a :class:`GatewayError` or one of the constants below."""

    code: str
    message: str
    message_vi: str
    path: str | None = None
    #: ``soap:Server`` (the client may retry the same request) instead of ``soap:Client``.
    server: bool = False

    @classmethod
    def from_error(cls, exc: GatewayError) -> FaultInfo:
        """The Fault of ``exc``, with any long caller value in its message or path clipped (:func:`clip`)."""
        path = clip(exc.path) if exc.path else exc.path
        return cls(exc.code, clip(exc.message), exc.message_vi, path, server=exc.retryable)

    @property
    def faultstring(self) -> str:
        return f"{self.code}: {self.message}"


#: The answer to every unexpected exception: no exception text, no traceback — those go to the log only.
INTERNAL: Final = FaultInfo(
    INTERNAL_CODE,
    "internal error in the gateway; the operators have the details in the log",
    "Lỗi nội bộ của cổng trục; quản trị viên có thông tin chi tiết trong nhật ký",
    server=True,
)


def fault_element(info: FaultInfo, parent: etree._Element | None = None) -> etree._Element:
    """The ``soap:Fault`` element, appended to ``parent`` (a ``soap:Body``) when given.

    ``faultcode`` is an ``xs:QName``: its prefix must be the one in scope for the SOAP envelope namespace, which
    inside spyne's response is not ``soap``; so the element is placed first and the prefix read back.
    """
    tag = f"{{{_ENV}}}Fault"
    fault = etree.Element(tag, nsmap={"soap": _ENV}) if parent is None else etree.SubElement(parent, tag)
    code = etree.SubElement(fault, "faultcode")
    code.text = f"{fault.prefix}:{'Server' if info.server else 'Client'}"
    etree.SubElement(fault, "faultstring").text = _xml_safe(info.faultstring)
    detail = etree.SubElement(fault, "detail")
    err = etree.SubElement(detail, f"{{{SOAP_TNS}}}GatewayError", nsmap={None: SOAP_TNS})
    etree.SubElement(err, f"{{{SOAP_TNS}}}code").text = info.code
    etree.SubElement(err, f"{{{SOAP_TNS}}}message").text = _xml_safe(info.message)
    etree.SubElement(err, f"{{{SOAP_TNS}}}messageVi").text = _xml_safe(info.message_vi)
    if info.path:
        etree.SubElement(err, f"{{{SOAP_TNS}}}path").text = _xml_safe(info.path)
    return fault


def fault_envelope(info: FaultInfo) -> bytes:
    """A complete SOAP 1.1 envelope carrying one Fault, UTF-8 with an XML declaration."""
    envelope = etree.Element(f"{{{_ENV}}}Envelope", nsmap={"soap": _ENV})
    fault_element(info, etree.SubElement(envelope, f"{{{_ENV}}}Body"))
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _xml_safe(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (a parser message may quote a control character of the input)."""
    return _NOT_XML.sub("", text)
