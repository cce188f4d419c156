"""The SOAP 1.1 service (spyne, document/literal wrapped): operations, message types, WSDL.

gateway.md "Interfaces": SendEdoc, SendStatus, GetPendingList, GetEdoc, Acknowledge, GetStatusHistory,
GetAgencies, target namespace ``urn:edoc-gateway:soap:1``, service ``EdocGateway``. Each operation is a thin
mapping onto :class:`gateway.services.api.GatewayApi`; access rules live there, not here.

This module never sees raw bytes from the network: :mod:`gateway.web.guard` has already limited, read,
safely parsed and authenticated the request, and :class:`_GuardedSoap11` takes the parsed envelope from the
WSGI environ instead of letting spyne parse the body a second time (spyne's own parser path is the one that
accepts DTDs, logs whole invalid bodies and breaks on MTOM — none of it is reachable).

Message types and the base64 package type: :mod:`gateway.web.soap_types`.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, Final, TypeVar

from lxml import etree
from spyne import (
    Application,
    Boolean,
    Fault,
    Integer,
    ServiceBase,
    Unicode,
    rpc,
)
from spyne.model.enum import EnumBase
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from gateway import ns
from gateway.edxml.codes import PackageKind
from gateway.errors import GatewayError, RequestError
from gateway.payload import Payload
from gateway.services import api as values
from gateway.services.api import GatewayApi
from gateway.soapkit import reproducible_wsdl, wsdl_with_address
from gateway.web.envelope_stream import ENV_PACKAGES, RequestPackages, package_text
from gateway.web.faults import INTERNAL, SOAP_TNS, FaultInfo, fault_element
from gateway.web.soap_contract import RENAMED, finish_wsdl
from gateway.web.soap_types import (
    OPT,
    REQ,
    AckStatusType,
    Agency,
    Base64Package,
    DocumentView,
    GatewayErrorDetail,
    GatewayFault,
    KindType,
    PendingItem,
    Receipt,
    agency_type,
    decode_package,
    document_view_type,
    pending_item_type,
    receipt_type,
)

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "EdocGateway"
#: The address written into the committed WSDL (``wsdl/edoc-gateway.wsdl``); the served one carries the real one.
PLACEHOLDER_ADDRESS: Final = "http://localhost:8080/soap"

#: WSGI environ keys shared with :mod:`gateway.web.guard`.
ENV_SYSTEM_ID: Final = "edoc_gateway.system_id"
ENV_ENVELOPE: Final = "edoc_gateway.envelope"
ENV_FAULT: Final = "edoc_gateway.fault"

#: Largest ``limit`` of GetPendingList; a mailbox is drained page by page.
MAX_PENDING_LIMIT: Final = 1000


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


def _package(value: Payload | None, operation: str) -> Payload:
    if value is None or not value.size:
        raise RequestError(
            "edxmlPackage is required and must not be empty", path=f"/Envelope/Body/{operation}/edxmlPackage"
        )
    return value


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

    # Parameter and result names are published (wsdl/edoc-gateway.wsdl): each must be a legal identifier in Java,
    # C#, PHP and JavaScript, because toolkits turn them into method parameters (tests/test_wsdl_contract.py).

    @_op(Base64Package.customize(**REQ), returns=Receipt.customize(**REQ), out="receipt")
    def SendEdoc(ctx, edxmlPackage: Payload | None) -> Receipt:
        """Submit an edXML document package (QCVN 102:2016) as edxmlPackage, byte-exact as base64Binary (before
        contract 1.1: package). Retrying the same package returns the original receipt with duplicate=true and
        stores nothing new."""
        data = _package(edxmlPackage, "SendEdoc")
        return receipt_type(_ctx_api(ctx).submit(_ctx_system(ctx), data, PackageKind.EDOC))

    @_op(Base64Package.customize(**REQ), returns=Receipt.customize(**REQ), out="receipt")
    def SendStatus(ctx, edxmlPackage: Payload | None) -> Receipt:
        """Submit an edXML status package (01-06, 13, 15, 16) as edxmlPackage (before contract 1.1: package);
        routed to the other party by ResponseFor."""
        data = _package(edxmlPackage, "SendStatus")
        return receipt_type(_ctx_api(ctx).submit(_ctx_system(ctx), data, PackageKind.STATUS))

    @_op(
        Unicode(**REQ),
        KindType.customize(**OPT),
        Integer(**OPT),
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
        return [pending_item_type(p) for p in items]

    @_op(Unicode(**REQ), returns=Base64Package.customize(**REQ), out="edxmlPackage")
    def GetEdoc(ctx, deliveryId: str | None) -> Payload:
        """Download the package of a pending delivery (deliveryId of a PendingItem) as edxmlPackage, exactly as
        the sender sent it (before contract 1.1: docId in, package out)."""
        delivery = _required(deliveryId, "deliveryId", "GetEdoc")
        return _ctx_api(ctx).fetch_payload(_ctx_system(ctx), delivery)

    @_op(Unicode(**REQ), AckStatusType.customize(**REQ), Unicode(**OPT), returns=Boolean(**REQ), out="ok")
    def Acknowledge(ctx, deliveryId: str | None, status: str | None, reason: str | None) -> bool:
        """Confirm a downloaded delivery (deliveryId of a PendingItem; before contract 1.1: docId): done removes
        it from the mailbox; fail records reason for the sender."""
        delivery = _required(deliveryId, "deliveryId", "Acknowledge")
        outcome = _choice(values.AckOutcome, _required(status, "status", "Acknowledge"), "status", "Acknowledge")
        _ctx_api(ctx).acknowledge(_ctx_system(ctx), delivery, outcome, reason or None)
        return True

    @_op(Unicode(**OPT), Unicode(**OPT), returns=DocumentView.customize(**REQ), out="document")
    def GetStatusHistory(ctx, documentId: str | None, docId: str | None) -> DocumentView:
        """Per-recipient delivery state and business status history of a document, by documentId (the edXML
        DocumentId) or docId (the gateway id from the receipt)."""
        document_id = (documentId or "").strip() or None
        doc_id = (docId or "").strip() or None
        if document_id is None and doc_id is None:
            raise RequestError("documentId or docId is required", path="/Envelope/Body/GetStatusHistory")
        view = _ctx_api(ctx).document_view(_ctx_system(ctx), document_id=document_id, doc_id=doc_id)
        return document_view_type(view)

    @_op(Unicode(**OPT), returns=Agency.customize(min_occurs=0, max_occurs="unbounded", nillable=False), out="agency")
    def GetAgencies(ctx, parent: str | None) -> list[Agency]:
        """The registered agencies, or only the children of parent."""
        return [agency_type(a) for a in _ctx_api(ctx).agencies((parent or "").strip() or None)]

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


#: (operation, parameter) that carry a package, read from the service's own message types: xs:base64Binary bounded
#: only by ``max_package_bytes``. Every other parameter is held to an identifier or text limit by the guard, so a
#: parameter added to an operation is bounded the day it is added. The names from
#: before contract 1.1 are included so that an old client's package reaches :func:`_refuse_renamed` and gets the
#: Fault naming the new name, not a size refusal.
PACKAGE_PARAMETERS: Final = frozenset(
    {
        (name, param)
        for name, method in EdocGatewayService.public_methods.items()
        for param, kind in method.in_message._type_info.items()
        if kind is Base64Package or getattr(kind, "__orig__", None) is Base64Package
    }
    | {key for key, new in RENAMED.items() if new == "edxmlPackage"}
)
#: (operation, parameter) that are free text, bounded by ``soap_max_text_chars`` like any text of the envelope. Every
#: other parameter is an identifier, a code or a number: ``soap_max_identifier_chars``.
FREE_TEXT_PARAMETERS: Final = frozenset({("Acknowledge", "reason")})
#: Where a package travels in a request, as local-name paths for :class:`gateway.xmlcheck.safe.TreeLimits` (spyne
#: matches parameters by local name, whatever their namespace).
PACKAGE_PATHS: Final = frozenset(("Envelope", "Body", op, param) for op, param in PACKAGE_PARAMETERS)


# -------------------------------------------------------------------------------------------- protocol


def _refuse_renamed(envelope: etree._Element) -> None:
    """A request that uses a parameter name from before contract 1.1 gets a Fault naming the new one.

    spyne ignores unknown children, so without this an old client's package would be reported as missing.
    """
    for operation in envelope.iterfind(f"{{{ns.SOAP11}}}Body/*"):
        name = etree.QName(operation).localname
        for child in operation:
            new = RENAMED.get((name, etree.QName(child).localname)) if isinstance(child.tag, str) else None
            if new is not None:
                old = etree.QName(child).localname
                error = RequestError(
                    f"{name} takes {new}, not {old} (renamed in contract 1.1: see the WSDL's documentation)",
                    path=f"/Envelope/Body/{name}/{old}",
                )
                raise GatewayFault(FaultInfo.from_error(error))


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
        _refuse_renamed(envelope)
        # (root, xmlids): no id/href resolution — that is SOAP-encoding, not document/literal.
        ctx.in_document = (envelope, None)

    def _package_from_element(self, ctx: Any, cls: Any, element: etree._Element) -> Payload:
        """The package the guard decoded while parsing (:mod:`gateway.web.envelope_stream`: the tree never held its
        base64), or its refusal; a tree from elsewhere (a test) still has the text, decoded here."""
        packages: RequestPackages | None = ctx.transport.req.get(ENV_PACKAGES)
        path = f"/Envelope/Body/{etree.QName(element.getparent()).localname}/{etree.QName(element).localname}"
        try:
            payload = packages.payload(element) if packages is not None else None
            return payload if payload is not None else Payload.of(decode_package(element.text, path))
        except GatewayError as exc:
            raise GatewayFault(FaultInfo.from_error(exc)) from None

    def _enum_from_element(self, ctx: Any, cls: Any, element: etree._Element) -> str:
        text = (element.text or "").strip()
        if text not in cls.__values__:
            name = etree.QName(element).localname
            path = f"/Envelope/Body/{etree.QName(element.getparent()).localname}/{name}"
            allowed = ", ".join(cls.__values__)
            raise GatewayFault(FaultInfo.from_error(RequestError(f"{name} must be one of {allowed}", path=path)))
        return text

    def _package_to_parent(
        self, ctx: Any, cls: Any, inst: bytes | Payload, parent: etree._Element, ns: str, name: str = "retval", **_: Any
    ) -> None:
        elt = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
        if isinstance(inst, Payload):  # a GetEdoc answer: a big one is streamed in by the guard
            elt.text = package_text(ctx.transport.req, inst)
        else:
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
    return wsdl_with_address(_wsdl_template(), address)


@functools.cache
def _wsdl_template() -> bytes:
    # WsgiApplication sets the SOAP-over-HTTP transport URI on the application, which the binding names.
    return reproducible_wsdl(
        WsgiApplication(_EdocApplication(None)), PLACEHOLDER_ADDRESS, lambda root: finish_wsdl(root, SERVICE_NAME)
    )
