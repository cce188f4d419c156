"""The answers of the e-doc.vn profile: built by the server edge exactly in the shapes of legacy-edoc-vn.md §4 and §6,
read back by the client adapter.

Shapes (§4.1): every answer is a SOAP 1.1 envelope with prefix ``soapenv`` and an empty ``soapenv:Header``; the
Body holds ``edXML:<SOAPAction>Response`` in ``http://www.e-doc.vn/Schema/`` whose result element re-declares
``xmlns:edXML``; GetDocument has no wrapper (its Report, on failure, sits directly in the Body). The Report is
``IsSuccess`` then ``ErrorList`` (always present, possibly empty), each ``Error`` ``Code`` then ``Description``
(§4.2). SendDocument adds the axis ``DocumentId`` after the Report, under a generated prefix as Bkav's runtime
writes it — clients match it by namespace and local name. Output is indented (Bkav's is pretty-printed; whitespace
between elements is what its clients already see).

Reading (client side) is by namespace + local name, never by prefix, and tolerates an empty Body (Bkav's answer to
requests it cannot process, §4.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway.edxml.model import Organization
from gateway.errors import GatewayError
from gateway.protocols.edocvn.envelope import child, children, split_envelope, text
from gateway.protocols.edocvn.errors import ProfileError
from gateway.protocols.edocvn.names import EDOC, EDOC_PREFIX, SOAP11, SOAP_PREFIX, UNWRAPPED, Operation
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES

#: The prefix of SendDocument's ``DocumentId`` (Bkav's runtime invents ``axis2nsN``, §6.3).
GENERATED_PREFIX = "axis2ns1"
_EDOC = frozenset({EDOC})
#: ``Organization`` children in Bkav's order (§6.2, ``Organization.java`` propOrder) and the model field of each.
ORGANIZATION_FIELDS = (
    ("OrganId", "organ_id"),
    ("OrganizationInCharge", "organization_in_charge"),
    ("OrganName", "organ_name"),
    ("OrganAdd", "organ_add"),
    ("Email", "email"),
    ("Telephone", "telephone"),
    ("Fax", "fax"),
    ("Website", "website"),
)


@dataclass(frozen=True)
class ReportError:
    code: str
    description: str


@dataclass(frozen=True)
class Report:
    """``Report{IsSuccess, ErrorList}`` (§4.2). A wrong token is ``Report(False)`` with no error at all (§3)."""

    is_success: bool
    errors: tuple[ReportError, ...] = ()


OK = Report(True)
DENIED = Report(False)


def report_for(exc: GatewayError) -> Report:
    """The Report of a refusal: Bkav's code string when the profile has one (:class:`ProfileError`), else the
    gateway's stable code; the description is the English message (Bkav's are English too)."""
    if isinstance(exc, ProfileError):
        return Report(False, (ReportError(exc.report_code, exc.report_description),))
    return Report(False, (ReportError(exc.code, exc.message),))


# ==================================================================================================== building


def e(local: str, value: str | None = None, *kids: etree._Element, nsmap: bool = False) -> etree._Element:
    """An ``edXML:`` element; ``nsmap=True`` re-declares ``xmlns:edXML`` on it (Bkav does on result elements)."""
    el = etree.Element(f"{{{EDOC}}}{local}", nsmap={EDOC_PREFIX: EDOC} if nsmap else None)
    if value is not None:
        el.text = value
    el.extend(kids)
    return el


def report_element(report: Report) -> etree._Element:
    errors = [e("Error", None, e("Code", err.code), e("Description", err.description)) for err in report.errors]
    return e("Report", None, e("IsSuccess", "true" if report.is_success else "false"), e("ErrorList", None, *errors),
             nsmap=True)  # fmt: skip


def envelope(body_children: Iterable[etree._Element], header_children: Iterable[etree._Element] = ()) -> bytes:
    """``soapenv:Envelope`` with the given Header and Body content, indented, UTF-8 with a declaration."""
    root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={SOAP_PREFIX: SOAP11})
    header = etree.SubElement(root, f"{{{SOAP11}}}Header")
    header.extend(header_children)
    body = etree.SubElement(root, f"{{{SOAP11}}}Body")
    body.extend(body_children)
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def answer(operation: Operation | None, *results: etree._Element) -> bytes:
    """``results`` inside ``edXML:<Op>Response`` (directly in the Body for GetDocument or an unknown operation)."""
    if operation is None or operation in UNWRAPPED:
        return envelope(results)
    wrapper = e(operation.response_name, None, *results, nsmap=True)
    return envelope([wrapper])


def report_answer(operation: Operation | None, report: Report) -> bytes:
    return answer(operation, report_element(report))


def error_answer(operation: Operation | None, exc: GatewayError) -> bytes:
    return report_answer(operation, report_for(exc))


def send_document_answer(axis_document_id: str) -> bytes:
    """§6.3 success: the Report and the axis document id, under a generated prefix as Bkav's runtime writes it."""
    doc_id = etree.Element(f"{{{EDOC}}}DocumentId", nsmap={GENERATED_PREFIX: EDOC})
    doc_id.text = axis_document_id
    return answer(Operation.SEND_DOCUMENT, report_element(OK), doc_id)


def organizations_answer(organizations: Iterable[Organization]) -> bytes:
    """§6.2: one ``Organization`` per registry row; a None field is omitted, an empty string gives an empty element."""
    items = []
    for org in organizations:
        item = e("Organization")
        for local, attr in ORGANIZATION_FIELDS:
            value = getattr(org, attr)
            if value is not None:
                item.append(e(local, value))
        items.append(item)
    return answer(Operation.GET_ORGANIZATIONS, e("Organizations", None, *items, nsmap=True))


def pending_answer(document_ids: Iterable[str]) -> bytes:
    """§6.4: ``DocumentIds/DocumentId*``; nothing pending → ``<edXML:DocumentIds/>``."""
    ids = [e("DocumentId", str(i)) for i in document_ids]
    return answer(Operation.GET_PENDING_DOCUMENT_IDS, e("DocumentIds", None, *ids, nsmap=True))


def traces_answer(statuses: Iterable[etree._Element]) -> bytes:
    """§6.8: ``Traces/Status*`` (the qualified Status elements of :func:`.statuses.status_element`)."""
    return answer(Operation.GET_TRACES, e("Traces", None, *statuses, nsmap=True))


def document_answer(header_children: Sequence[etree._Element], manifest: etree._Element) -> bytes:
    """§6.5 database path: MessageHeader and TraceHeaderList in the SOAP Header, the Manifest alone in the Body."""
    return envelope([manifest], header_children)


# ==================================================================================================== reading


@dataclass(frozen=True)
class Answer:
    """An answer as a client reads it. ``empty`` = the Body had nothing (Bkav's silent failure, §4.3)."""

    operation: Operation
    report: Report | None = None
    empty: bool = False
    #: SendDocument: the axis id of the new document.
    document_id: str | None = None
    organizations: tuple[Organization, ...] = ()
    document_ids: tuple[str, ...] = ()
    #: GetTraces: the ``Status`` elements (read them with :func:`.statuses.read_status`).
    statuses: tuple[etree._Element, ...] = ()
    #: GetDocument: the SOAP Header (MessageHeader, TraceHeaderList) and the Manifest.
    header: etree._Element | None = None
    manifest: etree._Element | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Success: a result without a Report, or a Report saying IsSuccess=true."""
        return not self.empty and (self.report is None or self.report.is_success)


def read_report(el: etree._Element) -> Report:
    flag = (text(el, "IsSuccess") or "").lower()
    errors = tuple(
        ReportError(text(err, "Code") or "", _raw_text(err, "Description"))
        for err in children(child(el, "ErrorList"), "Error")
    )
    return Report(flag == "true", errors)


def _raw_text(el: etree._Element, local: str) -> str:
    """A Description as sent, untrimmed: Bkav's texts are wire data clients match on, trailing space and all (§10:
    ``Document Type value is only math '1' or '2' ``)."""
    found = child(el, local)
    return "" if found is None else "".join(found.itertext())


def read_answer(data: bytes, operation: Operation, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Answer:
    """Read the answer to ``operation`` (safe parser; a SOAP 1.2 or non-envelope answer is a ProfileError)."""
    _root, header, body = split_envelope(data, max_bytes=max_bytes)
    top = [c for c in body if isinstance(c.tag, str)]
    if not top:
        return Answer(operation, empty=True)
    wrapper = child(body, operation.response_name, _EDOC)
    scope = wrapper if wrapper is not None else body
    report_el = child(scope, "Report", _EDOC)
    report = read_report(report_el) if report_el is not None else None
    if operation is Operation.GET_DOCUMENT:
        return Answer(operation, report, header=header, manifest=child(body, "Manifest", _EDOC))
    if wrapper is None and report is None:
        raise ProfileError(f"the answer has no {operation.response_name} element", reason="answer-shape")
    if operation is Operation.SEND_DOCUMENT:
        return Answer(operation, report, document_id=text(scope, "DocumentId"))
    if operation is Operation.GET_ORGANIZATIONS:
        orgs = children(child(scope, "Organizations", _EDOC), "Organization", _EDOC)
        return Answer(operation, report, organizations=tuple(_organization(o) for o in orgs))
    if operation is Operation.GET_PENDING_DOCUMENT_IDS:
        ids = children(child(scope, "DocumentIds", _EDOC), "DocumentId", _EDOC)
        return Answer(operation, report, document_ids=tuple("".join(i.itertext()).strip() for i in ids))
    if operation is Operation.GET_TRACES:
        return Answer(operation, report, statuses=tuple(children(child(scope, "Traces", _EDOC), "Status", _EDOC)))
    return Answer(operation, report)


def _organization(el: etree._Element) -> Organization:
    values: dict[str, str | None] = {}
    for local, attr in ORGANIZATION_FIELDS:
        found = child(el, local)
        values[attr] = None if found is None else "".join(found.itertext()).strip()
    return Organization(**{**values, "organ_id": values["organ_id"] or ""})  # type: ignore[arg-type]
