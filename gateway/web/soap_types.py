"""The SOAP service's message types (spyne models, declared in ``urn:edoc-gateway:soap:1``) and the mapping of the
contract's values onto them.

Kept apart from :mod:`gateway.web.soap` (operations, protocol, WSDL) because the types ARE the published contract:
changing one changes ``wsdl/edoc-gateway.wsdl``, which a test compares byte for byte.

Packages travel as ``xs:base64Binary`` and must stay byte-exact (they are signed with inclusive C14N).
spyne's ``ByteArray`` decodes them by joining the base64 text character by character (10 MB: 311 ms, against
63 ms for :func:`base64.b64decode` on this machine) and without validation, so characters outside the alphabet are
silently dropped — a corrupted package would be accepted as a different one. :class:`Base64Package` is declared as
the same ``xs:base64Binary`` in the WSDL but decoded and encoded by the service's own handlers (strict alphabet,
whitespace tolerated, ``REQUEST.INVALID`` otherwise).
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from spyne import Boolean, ComplexModel, DateTime, Enum, Fault, Integer, Long, SimpleModel, Unicode

from gateway.edxml.codes import PackageKind
from gateway.errors import RequestError
from gateway.services import api as values
from gateway.soapkit import XSD_NS
from gateway.web.faults import SOAP_TNS, FaultInfo

_WHITESPACE = str.maketrans("", "", " \t\r\n")


class Base64Package(SimpleModel):
    """An edXML package as ``xs:base64Binary``; its Python value is ``bytes``, exactly as sent.

    Decoding and encoding are done by :class:`_GuardedSoap11`, not by spyne's ByteArray handlers.
    """

    __type_name__ = "base64Binary"
    __namespace__ = XSD_NS


def decode_package(text: str | None, path: str) -> bytes:
    """Strict base64 → bytes; whitespace (line-wrapped base64 from some SOAP stacks) is allowed and ignored."""
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    stripped = text.translate(_WHITESPACE)
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("the value is not valid base64", path=path) from None


REQ: Final = {"min_occurs": 1, "nillable": False}
OPT: Final = {"min_occurs": 0, "nillable": False}

# Named enumerations in the WSDL. On input they are read by _GuardedSoap11._enum_from_element as plain str: spyne's
# own handler does getattr(EnumType, text) — an unknown value is an AttributeError (an internal error), a name such
# as "customize" returns a method, and the first value of every spyne Enum is falsy.
KindType = Enum(*(k.value for k in PackageKind), type_name="PackageKind")
AckStatusType = Enum(*(o.value for o in values.AckOutcome), type_name="AckStatus")
DeliveryStateType = Enum(*(s.value for s in values.DeliveryState), type_name="DeliveryState")


class Receipt(ComplexModel):
    """The answer to SendEdoc/SendStatus (gateway.md Intake 7); the same answer again for a retried package."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012 -- spyne reads the order from this list
        ("docId", Unicode(**REQ)),
        ("documentId", Unicode(**REQ)),
        ("sha256", Unicode(**REQ)),
        ("receivedAt", DateTime(**REQ)),
        ("duplicate", Boolean(**REQ)),
        ("signedReceipt", Base64Package.customize(**REQ)),
    ]


class PendingItem(ComplexModel):
    """One waiting delivery in a mailbox; ``deliveryId`` is what GetEdoc and Acknowledge take as ``docId``."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("deliveryId", Unicode(**REQ)),
        ("docId", Unicode(**REQ)),
        ("kind", KindType.customize(**REQ)),
        ("sender", Unicode(**REQ)),
        ("recipient", Unicode(**REQ)),
        ("documentId", Unicode(**REQ)),
        ("receivedAt", DateTime(**REQ)),
        ("size", Long(**REQ)),
        ("state", DeliveryStateType.customize(**REQ)),
    ]


class StatusEntry(ComplexModel):
    """One business status (01…16) of a document for one recipient; out-of-order ones are kept and flagged."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("statusCode", Unicode(**REQ)),
        ("reporter", Unicode(**REQ)),
        ("description", Unicode(**OPT)),
        ("timestamp", DateTime(**OPT)),
        ("receivedAt", DateTime(**REQ)),
        ("outOfOrder", Boolean(**REQ)),
        ("emittedByGateway", Boolean(**REQ)),
    ]


class RecipientView(ComplexModel):
    """Per recipient: the transport state of its delivery and its business status history."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("organId", Unicode(**REQ)),
        ("deliveryId", Unicode(**REQ)),
        ("state", DeliveryStateType.customize(**REQ)),
        ("fetchedAt", DateTime(**OPT)),
        ("acknowledgedAt", DateTime(**OPT)),
        ("ackReason", Unicode(**OPT)),
        ("status", StatusEntry.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


class DocumentView(ComplexModel):
    """A document as its sender and recipients see it (gateway.md "Status feedback")."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("docId", Unicode(**REQ)),
        ("documentId", Unicode(**REQ)),
        ("sender", Unicode(**REQ)),
        ("receivedAt", DateTime(**REQ)),
        ("recipient", RecipientView.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


class Agency(ComplexModel):
    """A registered agency (gateway.md "Registry")."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("organId", Unicode(**REQ)),
        ("name", Unicode(**REQ)),
        ("parent", Unicode(**OPT)),
        ("level", Integer(**OPT)),
        ("channel", Unicode(**REQ)),
        ("active", Boolean(**REQ)),
    ]


class GatewayErrorDetail(Fault):
    """Declares the Fault detail in the WSDL (``wsdl:fault`` of every operation).

    Instances are never serialized by spyne: :meth:`_GuardedSoap11.fault_to_parent` renders every Fault with
    :func:`gateway.web.faults.fault_element`, so the guard and the service answer identically.
    """

    __namespace__ = SOAP_TNS
    __type_name__ = "GatewayError"
    _type_info = [  # noqa: RUF012
        ("code", Unicode(**REQ)),
        ("message", Unicode(**REQ)),
        ("messageVi", Unicode(**REQ)),
        ("path", Unicode(**OPT)),
    ]


class GatewayFault(Fault):
    """A Fault that carries its :class:`FaultInfo` through spyne to :meth:`_GuardedSoap11.fault_to_parent`."""

    def __init__(self, info: FaultInfo) -> None:
        super().__init__("Server" if info.server else "Client", info.faultstring)
        self.info = info


# ------------------------------------------------------------------------------- values → message types


def receipt_type(r: values.Receipt) -> Receipt:
    return Receipt(
        docId=r.doc_id,
        documentId=r.document_id,
        sha256=r.sha256,
        receivedAt=r.received_at,
        duplicate=r.duplicate,
        signedReceipt=r.signed_receipt,
    )


def pending_item_type(p: values.PendingItem) -> PendingItem:
    return PendingItem(
        deliveryId=p.delivery_id,
        docId=p.doc_id,
        kind=p.kind.value,
        sender=p.sender,
        recipient=p.recipient,
        documentId=p.document_id,
        receivedAt=p.received_at,
        size=p.size,
        state=p.state.value,
    )


def document_view_type(d: values.DocumentView) -> DocumentView:
    return DocumentView(
        docId=d.doc_id,
        documentId=d.document_id,
        sender=d.sender,
        receivedAt=d.received_at,
        recipient=[
            RecipientView(
                organId=r.recipient,
                deliveryId=r.delivery_id,
                state=r.state.value,
                fetchedAt=r.fetched_at,
                acknowledgedAt=r.acknowledged_at,
                ackReason=r.ack_reason,
                status=[
                    StatusEntry(
                        statusCode=s.status_code.value,
                        reporter=s.reporter,
                        description=s.description,
                        timestamp=s.timestamp,
                        receivedAt=s.received_at,
                        outOfOrder=s.out_of_order,
                        emittedByGateway=s.emitted_by_gateway,
                    )
                    for s in r.statuses
                ],
            )
            for r in d.recipients
        ],
    )


def agency_type(a: values.AgencyInfo) -> Agency:
    return Agency(organId=a.organ_id, name=a.name, parent=a.parent, level=a.level, channel=a.channel, active=a.active)


__all__ = [
    "OPT",
    "REQ",
    "AckStatusType",
    "Agency",
    "Base64Package",
    "DeliveryStateType",
    "DocumentView",
    "GatewayErrorDetail",
    "GatewayFault",
    "KindType",
    "PendingItem",
    "Receipt",
    "RecipientView",
    "StatusEntry",
    "agency_type",
    "decode_package",
    "document_view_type",
    "pending_item_type",
    "receipt_type",
]
