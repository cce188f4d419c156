"""Business checks on a read package (gateway.md Intake 4; edxml.md §3–6, §8, §13).

Two outcomes per finding:

* an **error** makes the package unusable (it cannot be routed, matched or shown): a missing or
  malformed agency identifier, no recipient, a duplicate recipient, an update that does not name the
  document it updates, manifest and attachments that do not match;
* a **warning** records what a demanding receiver would flag but what real producers send anyway
  (the de-facto length limits of Bkav's validator, an email address with a typo, a future date).

Errors are raised together as one :class:`EdxmlBusinessError` (or :class:`EdxmlValueError` when all of
them are single-field problems) whose ``detail["problems"]`` lists every finding, so an integrator fixes
a package in one round.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from gateway.edxml.codes import BussinessDocType, StatusCode
from gateway.edxml.model import EdocPackage, Organization, Package, StatusPackage
from gateway.edxml.organ import OrganId
from gateway.errors import AttachmentError, EdxmlBusinessError, EdxmlValueError

#: De-facto maxima of Bkav's QCVN validator (edxml.md §8): reported as warnings, not enforced.
MAX_LENGTHS = {
    "Code/CodeNumber": 11,
    "Code/CodeNotation": 30,
    "PromulgationInfo/Place": 50,
    "Subject": 500,
    "Content": 500,
    "OrganName": 200,
    "OrganizationInCharge": 500,
    "OrganAdd": 500,
    "Email": 100,
    "Telephone": 20,
    "Fax": 20,
    "DocumentType/TypeName": 100,
    "OtherInfo/SphereOfPromulgation": 100,
    "OtherInfo/TyperNotation": 10,
    "ToPlaces/Place": 150,
    "AttachmentName": 500,
}
#: One implementation stores DocumentId in 200 characters (edxml.md §6.3); longer cannot be stored.
MAX_DOCUMENT_ID = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class CheckReport:
    """What the checks found; ``errors`` empty means the package may be accepted."""

    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def error(self, path: str, message: str, *, value: bool = False) -> None:
        self.errors.append({"path": path, "message": message, "kind": "value" if value else "business"})

    def warn(self, path: str, message: str) -> None:
        self.warnings.append({"path": path, "message": message})

    def raise_if_errors(self) -> None:
        if not self.errors:
            return
        first = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        cls = EdxmlValueError if all(e["kind"] == "value" for e in self.errors) else EdxmlBusinessError
        raise cls(f"{first['message']}{more}", path=first["path"], problems=self.errors)


def check(pkg: Package, *, today: date | None = None) -> CheckReport:
    """Run every check; the caller decides (``report.raise_if_errors()``)."""
    report = CheckReport()
    for w in pkg.warnings:
        report.warn("", w)
    if isinstance(pkg, StatusPackage):
        _check_status(pkg, report)
    else:
        _check_edoc(pkg, report, today or date.today())
    return report


def _organ_id(report: CheckReport, path: str, value: str) -> None:
    if not value:
        report.error(path, "agency identifier (OrganId) is empty", value=True)
    elif not OrganId.is_valid(value):
        report.error(path, f"{value!r} is not a valid agency identifier (OrganId)", value=True)


def _organization(report: CheckReport, path: str, org: Organization) -> None:
    _organ_id(report, f"{path}/OrganId", org.organ_id)
    for name, value in (
        ("OrganName", org.organ_name),
        ("OrganizationInCharge", org.organization_in_charge),
        ("OrganAdd", org.organ_add),
        ("Email", org.email),
        ("Telephone", org.telephone),
        ("Fax", org.fax),
    ):
        _length(report, f"{path}/{name}", name, value)
    if org.email and not _EMAIL.match(org.email):
        report.warn(f"{path}/Email", f"{org.email!r} does not look like an email address")


def _length(report: CheckReport, path: str, key: str, value: str | None) -> None:
    limit = MAX_LENGTHS.get(key)
    if value is not None and limit is not None and len(value) > limit:
        report.warn(path, f"{len(value)} characters, above the de-facto limit of {limit}")


def _check_edoc(pkg: EdocPackage, report: CheckReport, today: date) -> None:
    base = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
    h = pkg.message_header
    _organization(report, f"{base}/From", h.from_)
    for i, to in enumerate(h.to, 1):
        _organization(report, f"{base}/To[{i}]", to)
    for organ, n in Counter(pkg.recipients).items():
        if n > 1:
            report.error(f"{base}/To", f"recipient {organ} is listed {n} times")
    if not pkg.document_id:
        report.error(f"{base}/DocumentId", "DocumentId is empty", value=True)
    elif len(pkg.document_id) > MAX_DOCUMENT_ID:
        report.error(f"{base}/DocumentId", f"DocumentId is longer than {MAX_DOCUMENT_ID} characters", value=True)
    if not h.code.code_number:
        report.error(f"{base}/Code/CodeNumber", "CodeNumber (số văn bản) is empty", value=True)
    _length(report, f"{base}/Code/CodeNumber", "Code/CodeNumber", h.code.code_number)
    _length(report, f"{base}/Code/CodeNotation", "Code/CodeNotation", h.code.code_notation)
    _length(report, f"{base}/PromulgationInfo/Place", "PromulgationInfo/Place", h.promulgation_info.place)
    prom = h.promulgation_info.promulgation_date
    if prom is None:
        report.error(f"{base}/PromulgationInfo/PromulgationDate", "PromulgationDate is missing", value=True)
    elif prom > today + timedelta(days=1):  # a day of slack for time zones
        report.warn(f"{base}/PromulgationInfo/PromulgationDate", f"PromulgationDate {prom} is in the future")
    if not h.subject:
        report.error(f"{base}/Subject", "Subject (trích yếu) is empty", value=True)
    _length(report, f"{base}/Subject", "Subject", h.subject)
    _length(report, f"{base}/Content", "Content", h.content)
    if not h.document_type.type_name:
        report.warn(f"{base}/DocumentType/TypeName", "TypeName is empty; receivers match document types on it")
    _length(report, f"{base}/DocumentType/TypeName", "DocumentType/TypeName", h.document_type.type_name)
    for i, place in enumerate(h.to_places, 1):
        _length(report, f"{base}/ToPlaces/Place[{i}]", "ToPlaces/Place", place)
    for i, rf in enumerate(h.response_for, 1):
        if rf.organ_id:
            _organ_id(report, f"{base}/ResponseFor[{i}]/OrganId", rf.organ_id)
    _check_bussiness(pkg, report)
    _check_attachments(pkg, report)


def _check_bussiness(pkg: EdocPackage, report: CheckReport) -> None:
    path = "/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness"
    b = pkg.trace_header_list.bussiness
    for i, th in enumerate(pkg.trace_header_list.trace_headers, 1):
        _organ_id(report, f"/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/TraceHeader[{i}]/OrganId", th.organ_id)
    if b is None:
        report.warn(path, "no Bussiness block; the package is treated as a new document")
        return
    kind = b.bussiness_doc_type
    if kind is BussinessDocType.UPDATE:
        if not b.document_id:
            report.error(f"{path}/DocumentId", "an update (BussinessDocType 2) must name the document it updates")
        info = b.bussiness_document_info
        if info is not None:
            for i, r in enumerate(info.receivers, 1):
                _organ_id(report, f"{path}/BussinessDocumentInfo/ReceiverList/Receiver[{i}]/OrganId", r.organ_id)
            if info.document_receiver and not info.receivers:
                report.error(f"{path}/BussinessDocumentInfo/ReceiverList", "DocumentReceiver=1 but no Receiver")
    elif kind is BussinessDocType.REPLACE:
        if not b.replacement_info_list:
            report.error(
                f"{path}/ReplacementInfoList",
                "a replacement (BussinessDocType 3) must list the replaced documents",
            )
        for i, ri in enumerate(b.replacement_info_list, 1):
            if not ri.document_id:
                report.error(f"{path}/ReplacementInfoList/ReplacementInfo[{i}]/DocumentId", "DocumentId is empty")
            for j, organ in enumerate(ri.organ_ids, 1):
                _organ_id(report, f"{path}/ReplacementInfoList/ReplacementInfo[{i}]/OrganIdList/OrganId[{j}]", organ)
    elif kind is BussinessDocType.REVOKE and not b.document_id and not pkg.message_header.response_for:
        report.error(
            f"{path}/DocumentId",
            "a revocation (BussinessDocType 1) must name the revoked document (Bussiness/DocumentId or ResponseFor)",
        )


def _check_attachments(pkg: EdocPackage, report: CheckReport) -> None:
    refs = Counter(r.content_id for r in pkg.references)
    atts = Counter(a.content_id for a in pkg.attachments)
    problems = []
    for cid, n in (refs + atts).items():
        if refs[cid] > 1 or atts[cid] > 1:
            problems.append(f"ContentId {cid!r} is used {n} times")
        elif not refs[cid]:
            problems.append(f"attachment {cid!r} has no manifest Reference")
        elif not atts[cid]:
            problems.append(f"manifest Reference {cid!r} has no attachment")
    for i, a in enumerate(pkg.attachments, 1):
        if not a.content_id:
            problems.append(f"attachment {i} has an empty ContentId")
        _length(
            report,
            f"/edXML/AttachmentEncoded/Attachment[{i}]/AttachmentName",
            "AttachmentName",
            a.attachment_name,
        )
    for p in problems:
        report.error("/edXML/edXMLEnvelope/edXMLBody/edXMLManifest", p)
    if problems:
        # Attachment problems have their own wire code; raised here so the code is precise.
        raise AttachmentError(problems[0], path="/edXML/edXMLEnvelope/edXMLBody/edXMLManifest", problems=problems)


def _check_status(pkg: StatusPackage, report: CheckReport) -> None:
    base = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
    _organization(report, f"{base}/From", pkg.from_)
    rf = pkg.response_for
    if not rf.document_id:
        report.error(f"{base}/ResponseFor/DocumentId", "ResponseFor/DocumentId is empty", value=True)
    if not rf.code:
        report.error(f"{base}/ResponseFor/Code", "ResponseFor/Code is empty", value=True)
    if rf.organ_id:
        _organ_id(report, f"{base}/ResponseFor/OrganId", rf.organ_id)
    else:
        report.warn(f"{base}/ResponseFor/OrganId", "ResponseFor/OrganId is empty")
    if pkg.timestamp is None:
        report.error(f"{base}/Timestamp", "Timestamp is missing", value=True)
    if pkg.status_code in (
        StatusCode.REJECTED,
        StatusCode.RECALL_REQUESTED,
        StatusCode.CHANGE_REFUSED,
    ) and not (pkg.description):
        report.warn(f"{base}/Description", f"status {pkg.status_code.value} should give a reason in Description")
