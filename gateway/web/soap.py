"""The SOAP 1.1 service (spyne, document/literal wrapped): operations, message types, WSDL.

gateway.md "Interfaces": SendEdoc, SendStatus, GetPendingList, GetEdoc, Acknowledge, GetStatusHistory,
GetAgencies, target namespace ``urn:edoc-gateway:soap:1``, service ``EdocGateway``. Each operation is a thin
mapping onto :class:`gateway.services.api.GatewayApi`; access rules live there, not here.

This module never sees raw bytes from the network: :mod:`gateway.web.guard` has already limited, read,
safely parsed and authenticated the request, and :class:`_GuardedSoap11` takes the parsed envelope from the
WSGI environ instead of letting spyne parse the body a second time (spyne's own parser path is the one that
accepts DTDs, logs whole invalid bodies and breaks on MTOM — none of it is reachable).

Packages travel as ``xs:base64Binary`` and must stay byte-exact (they are signed with inclusive C14N).
spyne's ``ByteArray`` decodes them by joining the base64 text character by character (10 MB: 311 ms, against
63 ms for :func:`base64.b64decode` on this machine) and without validation, so characters outside the alphabet are
silently dropped — a corrupted package would be accepted as a different one. The :class:`Base64Package` type below
is declared as the same ``xs:base64Binary`` in the WSDL but decoded and encoded by our own handlers (strict
alphabet, whitespace tolerated, ``REQUEST.INVALID`` otherwise).
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, Final, TypeVar

from lxml import etree
from spyne import (
    Application,
    Boolean,
    ComplexModel,
    DateTime,
    Enum,
    Fault,
    Integer,
    Long,
    ServiceBase,
    SimpleModel,
    Unicode,
    rpc,
)
from spyne.interface.wsdl import Wsdl11
from spyne.model.enum import EnumBase
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from gateway.edxml.codes import PackageKind
from gateway.errors import GatewayError, RequestError
from gateway.services import api as values
from gateway.services.api import GatewayApi
from gateway.web.faults import INTERNAL, SOAP_TNS, FaultInfo, fault_element

log = logging.getLogger(__name__)

XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
SERVICE_NAME: Final = "EdocGateway"
#: The address written into the committed WSDL (``wsdl/edoc-gateway.wsdl``); the served one carries the real one.
PLACEHOLDER_ADDRESS: Final = "http://localhost:8080/soap"

#: WSGI environ keys shared with :mod:`gateway.web.guard`.
ENV_SYSTEM_ID: Final = "edoc_gateway.system_id"
ENV_ENVELOPE: Final = "edoc_gateway.envelope"
ENV_FAULT: Final = "edoc_gateway.fault"

#: Largest ``limit`` of GetPendingList; a mailbox is drained page by page.
MAX_PENDING_LIMIT: Final = 1000

_WHITESPACE = str.maketrans("", "", " \t\r\n")


# ----------------------------------------------------------------------------------------------- types


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


_REQ: Final = {"min_occurs": 1, "nillable": False}
_OPT: Final = {"min_occurs": 0, "nillable": False}

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
        ("docId", Unicode(**_REQ)),
        ("documentId", Unicode(**_REQ)),
        ("sha256", Unicode(**_REQ)),
        ("receivedAt", DateTime(**_REQ)),
        ("duplicate", Boolean(**_REQ)),
        ("signedReceipt", Base64Package.customize(**_REQ)),
    ]


class PendingItem(ComplexModel):
    """One waiting delivery in a mailbox; ``deliveryId`` is what GetEdoc and Acknowledge take as ``docId``."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("deliveryId", Unicode(**_REQ)),
        ("docId", Unicode(**_REQ)),
        ("kind", KindType.customize(**_REQ)),
        ("sender", Unicode(**_REQ)),
        ("recipient", Unicode(**_REQ)),
        ("documentId", Unicode(**_REQ)),
        ("receivedAt", DateTime(**_REQ)),
        ("size", Long(**_REQ)),
        ("state", DeliveryStateType.customize(**_REQ)),
    ]


class StatusEntry(ComplexModel):
    """One business status (01…16) of a document for one recipient; out-of-order ones are kept and flagged."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("statusCode", Unicode(**_REQ)),
        ("reporter", Unicode(**_REQ)),
        ("description", Unicode(**_OPT)),
        ("timestamp", DateTime(**_OPT)),
        ("receivedAt", DateTime(**_REQ)),
        ("outOfOrder", Boolean(**_REQ)),
        ("emittedByGateway", Boolean(**_REQ)),
    ]


class RecipientView(ComplexModel):
    """Per recipient: the transport state of its delivery and its business status history."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("organId", Unicode(**_REQ)),
        ("deliveryId", Unicode(**_REQ)),
        ("state", DeliveryStateType.customize(**_REQ)),
        ("fetchedAt", DateTime(**_OPT)),
        ("acknowledgedAt", DateTime(**_OPT)),
        ("ackReason", Unicode(**_OPT)),
        ("status", StatusEntry.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


class DocumentView(ComplexModel):
    """A document as its sender and recipients see it (gateway.md "Status feedback")."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("docId", Unicode(**_REQ)),
        ("documentId", Unicode(**_REQ)),
        ("sender", Unicode(**_REQ)),
        ("receivedAt", DateTime(**_REQ)),
        ("recipient", RecipientView.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


class Agency(ComplexModel):
    """A registered agency (gateway.md "Registry")."""

    __namespace__ = SOAP_TNS
    _type_info = [  # noqa: RUF012
        ("organId", Unicode(**_REQ)),
        ("name", Unicode(**_REQ)),
        ("parent", Unicode(**_OPT)),
        ("level", Integer(**_OPT)),
        ("channel", Unicode(**_REQ)),
        ("active", Boolean(**_REQ)),
    ]


class GatewayErrorDetail(Fault):
    """Declares the Fault detail in the WSDL (``wsdl:fault`` of every operation).

    Instances are never serialized by spyne: :meth:`_GuardedSoap11.fault_to_parent` renders every Fault with
    :func:`gateway.web.faults.fault_element`, so the guard and the service answer identically.
    """

    __namespace__ = SOAP_TNS
    __type_name__ = "GatewayError"
    _type_info = [  # noqa: RUF012
        ("code", Unicode(**_REQ)),
        ("message", Unicode(**_REQ)),
        ("messageVi", Unicode(**_REQ)),
        ("path", Unicode(**_OPT)),
    ]


class GatewayFault(Fault):
    """A Fault that carries its :class:`FaultInfo` through spyne to :meth:`_GuardedSoap11.fault_to_parent`."""

    def __init__(self, info: FaultInfo) -> None:
        super().__init__("Server" if info.server else "Client", info.faultstring)
        self.info = info


# --------------------------------------------------------------------------------------------- service


def _ctx_api(ctx: Any) -> GatewayApi:
    return ctx.app.api


def _ctx_system(ctx: Any) -> str:
    """The system the guard authenticated; a request without one never reaches a method."""
    return ctx.transport.req[ENV_SYSTEM_ID]


def _required(value: object, name: str, operation: str) -> str:
    """A present, non-blank value as text (spyne hands enumeration values over as EnumValue objects)."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise RequestError(f"{name} is required", path=f"/Envelope/Body/{operation}/{name}")
    return text


_E = TypeVar("_E", bound=StrEnum)


def _choice(enum: type[_E], value: str, name: str, operation: str) -> _E:
    try:
        return enum(value.strip())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise RequestError(f"{name} must be one of {allowed}", path=f"/Envelope/Body/{operation}/{name}") from None


def _package(value: bytes | None, operation: str) -> bytes:
    if not value:
        raise RequestError("package is required and must not be empty", path=f"/Envelope/Body/{operation}/package")
    return value


def _receipt(r: values.Receipt) -> Receipt:
    return Receipt(
        docId=r.doc_id,
        documentId=r.document_id,
        sha256=r.sha256,
        receivedAt=r.received_at,
        duplicate=r.duplicate,
        signedReceipt=r.signed_receipt,
    )


def _pending_item(p: values.PendingItem) -> PendingItem:
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


def _document_view(d: values.DocumentView) -> DocumentView:
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


def _agency(a: values.AgencyInfo) -> Agency:
    return Agency(organId=a.organ_id, name=a.name, parent=a.parent, level=a.level, channel=a.channel, active=a.active)


_F = TypeVar("_F", bound=Callable[..., Any])


def _op(*params: Any, returns: Any, out: str) -> Callable[[_F], _F]:
    """``@rpc`` with the conventions of this service: wrapped, our Fault declared, result element named ``out``.

    The docstring becomes the operation's ``wsdl:documentation``, folded onto one line.
    """
    decorate = rpc(*params, _returns=returns, _out_variable_name=out, _throws=GatewayErrorDetail)

    def apply(func: _F) -> _F:
        func.__doc__ = " ".join((func.__doc__ or "").split()) or None
        return decorate(func)

    return apply


class EdocGatewayService(ServiceBase):
    """The operations. Each reads the authenticated system id the guard put in the environ."""

    __service_name__ = SERVICE_NAME

    @_op(Base64Package.customize(**_REQ), returns=Receipt.customize(**_REQ), out="receipt")
    def SendEdoc(ctx, package: bytes | None) -> Receipt:
        """Submit an edXML document package (QCVN 102:2016), byte-exact as base64Binary. Retrying the same
        package returns the original receipt with duplicate=true and stores nothing new."""
        data = _package(package, "SendEdoc")
        return _receipt(_ctx_api(ctx).submit(_ctx_system(ctx), data, PackageKind.EDOC))

    @_op(Base64Package.customize(**_REQ), returns=Receipt.customize(**_REQ), out="receipt")
    def SendStatus(ctx, package: bytes | None) -> Receipt:
        """Submit an edXML status package (01-06, 13, 15, 16); routed to the other party by ResponseFor."""
        data = _package(package, "SendStatus")
        return _receipt(_ctx_api(ctx).submit(_ctx_system(ctx), data, PackageKind.STATUS))

    @_op(
        Unicode(**_REQ),
        KindType.customize(**_OPT),
        Integer(**_OPT),
        returns=PendingItem.customize(min_occurs=0, max_occurs="unbounded", nillable=False),
        out="item",
    )
    def GetPendingList(ctx, organId: str | None, kind: str | None, limit: int | None) -> list[PendingItem]:
        """List what waits in the mailbox of organId (an agency the caller acts for): kind edoc (default) or
        status, at most limit items (default 100, at most 1000)."""
        organ = _required(organId, "organId", "GetPendingList")
        package_kind = _choice(PackageKind, kind, "kind", "GetPendingList") if kind else PackageKind.EDOC
        if limit is None:
            limit = 100
        if not 1 <= limit <= MAX_PENDING_LIMIT:
            raise RequestError(
                f"limit must be between 1 and {MAX_PENDING_LIMIT}", path="/Envelope/Body/GetPendingList/limit"
            )
        items = _ctx_api(ctx).pending(_ctx_system(ctx), organ, package_kind, limit)
        return [_pending_item(p) for p in items]

    @_op(Unicode(**_REQ), returns=Base64Package.customize(**_REQ), out="package")
    def GetEdoc(ctx, docId: str | None) -> bytes:
        """Download a package exactly as the sender sent it. docId is the deliveryId of a PendingItem."""
        delivery = _required(docId, "docId", "GetEdoc")
        return _ctx_api(ctx).fetch(_ctx_system(ctx), delivery)

    @_op(Unicode(**_REQ), AckStatusType.customize(**_REQ), Unicode(**_OPT), returns=Boolean(**_REQ), out="ok")
    def Acknowledge(ctx, docId: str | None, status: str | None, reason: str | None) -> bool:
        """Confirm a downloaded package (docId = deliveryId): done removes it from the mailbox; fail records
        reason for the sender."""
        delivery = _required(docId, "docId", "Acknowledge")
        outcome = _choice(values.AckOutcome, _required(status, "status", "Acknowledge"), "status", "Acknowledge")
        _ctx_api(ctx).acknowledge(_ctx_system(ctx), delivery, outcome, reason or None)
        return True

    @_op(Unicode(**_OPT), Unicode(**_OPT), returns=DocumentView.customize(**_REQ), out="document")
    def GetStatusHistory(ctx, documentId: str | None, docId: str | None) -> DocumentView:
        """Per-recipient delivery state and business status history of a document, by documentId (the edXML
        DocumentId) or docId (the gateway id from the receipt)."""
        document_id = (documentId or "").strip() or None
        doc_id = (docId or "").strip() or None
        if document_id is None and doc_id is None:
            raise RequestError("documentId or docId is required", path="/Envelope/Body/GetStatusHistory")
        view = _ctx_api(ctx).document_view(_ctx_system(ctx), document_id=document_id, doc_id=doc_id)
        return _document_view(view)

    @_op(Unicode(**_OPT), returns=Agency.customize(min_occurs=0, max_occurs="unbounded", nillable=False), out="agency")
    def GetAgencies(ctx, parent: str | None) -> list[Agency]:
        """The registered agencies, or only the children of parent."""
        return [_agency(a) for a in _ctx_api(ctx).agencies((parent or "").strip() or None)]

    @classmethod
    def call_wrapper(cls, ctx: Any, args: Iterable[Any] | None = None) -> Any:
        """Translate errors once (STYLE.md rule 5): GatewayError → its Fault; anything else → GATEWAY.INTERNAL.

        The traceback of an unexpected exception is logged here, with the operation and the system, never with
        the request body; the client learns only the code.
        """
        try:
            return super().call_wrapper(ctx, args)
        except GatewayError as exc:
            raise GatewayFault(FaultInfo.from_error(exc)) from None
        except Fault:
            raise
        except Exception:
            log.exception(
                "internal error in SOAP operation %s (system %s)",
                ctx.method_request_string,
                ctx.transport.req.get(ENV_SYSTEM_ID),
            )
            raise GatewayFault(INTERNAL) from None


#: Qualified names of the operation request elements; the guard refuses anything else before authenticating.
OPERATIONS: Final = frozenset(
    f"{{{SOAP_TNS}}}{name}"
    for name in (
        "SendEdoc",
        "SendStatus",
        "GetPendingList",
        "GetEdoc",
        "Acknowledge",
        "GetStatusHistory",
        "GetAgencies",
    )
)


# -------------------------------------------------------------------------------------------- protocol


class _GuardedSoap11(Soap11):
    """spyne's SOAP 1.1 protocol, minus its parser, with our package codec and our Fault format."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # cdict lookups are cached per class, so these must be registered before the first request.
        self.deserialization_handlers[Base64Package] = self._package_from_element
        self.serialization_handlers[Base64Package] = self._package_to_parent
        self.deserialization_handlers[EnumBase] = self._enum_from_element

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        """Use the envelope the guard already parsed with :mod:`gateway.xmlcheck.safe` (no second parse)."""
        envelope = ctx.transport.req.get(ENV_ENVELOPE)
        if envelope is None:  # a wiring defect: the spyne app was mounted without the guard
            log.error("spyne was called without a guarded envelope; refusing to parse the body itself")
            raise GatewayFault(INTERNAL)
        # (root, xmlids): no id/href resolution — that is SOAP-encoding, not document/literal.
        ctx.in_document = (envelope, None)

    def _package_from_element(self, ctx: Any, cls: Any, element: etree._Element) -> bytes:
        path = f"/Envelope/Body/{etree.QName(element.getparent()).localname}/{etree.QName(element).localname}"
        try:
            data = decode_package(element.text, path)
        except GatewayError as exc:
            raise GatewayFault(FaultInfo.from_error(exc)) from None
        # The base64 text (4/3 of the package) is no longer needed; free it before the use case parses the package,
        # which keeps peak memory closer to the package size (gateway.md Quality bars: RSS under 3x the package).
        element.text = None
        return data

    def _enum_from_element(self, ctx: Any, cls: Any, element: etree._Element) -> str:
        text = (element.text or "").strip()
        if text not in cls.__values__:
            name = etree.QName(element).localname
            path = f"/Envelope/Body/{etree.QName(element.getparent()).localname}/{name}"
            allowed = ", ".join(cls.__values__)
            raise GatewayFault(FaultInfo.from_error(RequestError(f"{name} must be one of {allowed}", path=path)))
        return text

    def _package_to_parent(
        self, ctx: Any, cls: Any, inst: bytes, parent: etree._Element, ns: str, name: str = "retval", **_: Any
    ) -> None:
        elt = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
        elt.text = base64.b64encode(inst).decode("ascii")

    def fault_to_parent(self, ctx: Any, cls: Any, inst: Fault, parent: etree._Element, ns: str, *_: Any, **__: Any):
        """Render every Fault — ours or spyne's own (unknown element, bad integer) — in the one format."""
        if isinstance(inst, GatewayFault):
            info = inst.info
        elif str(inst.faultcode).startswith("Client"):
            # spyne's own client faults (a bad integer or enumeration value) quote at most that small value; packages
            # are decoded by _package_from_element, so no base64 text can end up in a message here.
            info = FaultInfo.from_error(RequestError(str(inst.faultstring)[:300]))
        else:
            log.error("spyne produced a server fault: %s", str(inst.faultstring)[:300])
            info = INTERNAL
        ctx.transport.req[ENV_FAULT] = info
        fault_element(info, parent)


class _EdocApplication(Application):
    """A spyne Application that also holds the use cases (the methods reach them as ``ctx.app.api``)."""

    def __init__(self, api: GatewayApi | None) -> None:
        super().__init__(
            [EdocGatewayService],
            tns=SOAP_TNS,
            name=SERVICE_NAME,
            # parse_xsi_type=False: otherwise xsi:type="tns:Receipt" on any element makes spyne build that class.
            in_protocol=_GuardedSoap11(validator=None, parse_xsi_type=False),
            out_protocol=_GuardedSoap11(),
        )
        self.api = api


def soap_wsgi_app(api: GatewayApi, max_body_bytes: int) -> WsgiApplication:
    """The spyne WSGI application; only ever mounted behind :class:`gateway.web.guard.SoapGuard`.

    ``max_content_length`` is raised to the guard's limit so spyne's own 2 MiB default can never refuse a
    package the guard accepted (spyne does not read the body anyway; see :class:`_GuardedSoap11`).
    """
    return WsgiApplication(_EdocApplication(api), max_content_length=max_body_bytes)


def wsdl_document(address: str = PLACEHOLDER_ADDRESS) -> bytes:
    """The WSDL with ``address`` as the service location; ``wsdl/README.md`` says how to regenerate the file.

    spyne builds the document once per process; each address is then a cheap substitution, so serving ``?wsdl``
    to many host names costs no spyne work.
    """
    root = etree.fromstring(_wsdl_template())  # our own output, not untrusted input
    for location in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        location.set("location", address)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


@functools.cache
def _wsdl_template() -> bytes:
    # WsgiApplication sets the SOAP-over-HTTP transport URI on the application, which the binding names.
    interface = WsgiApplication(_EdocApplication(None)).app.interface
    wsdl = Wsdl11(interface)
    wsdl.build_interface_document(PLACEHOLDER_ADDRESS)
    root = etree.fromstring(wsdl.get_interface_document())
    _sort_schema(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


_SCHEMA_ORDER: Final = {f"{{{XSD_NS}}}{t}": i for i, t in enumerate(("import", "simpleType", "complexType", "element"))}


def _sort_schema(root: etree._Element) -> None:
    """Order each xs:schema's children by kind and name.

    spyne emits types in an order that depends on how many applications the process has built before (the
    served WSDL differed from a freshly generated one); a fixed order makes the committed file reproducible.
    """
    for schema in root.iter(f"{{{XSD_NS}}}schema"):
        children = list(schema)
        children.sort(key=lambda el: (_SCHEMA_ORDER.get(el.tag, 9), el.get("name") or el.get("namespace") or ""))
        schema[:] = children
