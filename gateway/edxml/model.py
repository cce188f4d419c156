"""The edXML model: plain, immutable values named after the QCVN 102:2016 elements.

The model imports only the standard library and the code lists; it knows nothing of XML parsing,
HTTP or the database. :mod:`gateway.edxml.reader` builds it (tolerant), :mod:`gateway.edxml.writer`
renders it (canonical), :mod:`gateway.edxml.jsonform` maps it to and from the canonical JSON.

Conventions:
* an element that is absent and an element that is empty are the same thing (``None``, or ``""`` for
  text that the standard requires) — producers emit empty elements for "no value" (edxml.md §8);
* repeated elements are tuples, in document order;
* dates are :class:`datetime.date`, timestamps naive :class:`datetime.datetime` in Vietnam local time;
* ``ContentId`` values are kept without the ``cid:`` prefix (edxml.md §9) and written back with it;
* ``warnings`` record what the tolerant reader had to fix; they do not take part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.edxml.codes import (
    BussinessDocType,
    PackageKind,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)


@dataclass(frozen=True, kw_only=True)
class Organization:
    """``From`` / ``To`` (edxml.md §3.1, Organization type)."""

    organ_id: str
    organ_name: str | None = None
    organization_in_charge: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True, kw_only=True)
class Code:
    """``Code`` — số, ký hiệu văn bản."""

    code_number: str = ""
    code_notation: str = ""

    def __str__(self) -> str:
        """The printed form ``7816/VPCP-TTĐT`` used in ``ResponseFor/Code`` and in DocumentIds."""
        return f"{self.code_number}/{self.code_notation}" if self.code_notation else self.code_number


@dataclass(frozen=True, kw_only=True)
class PromulgationInfo:
    place: str | None = None
    promulgation_date: date | None = None


@dataclass(frozen=True, kw_only=True)
class DocumentType:
    """``DocumentType``; ``Type``/``TypeDetail`` code lists are unresolved (edxml.md §7.3): text."""

    type: str = ""
    type_detail: str | None = None
    type_name: str = ""


@dataclass(frozen=True, kw_only=True)
class SignerInfo:
    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class OtherInfo:
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    reply_fors: str | None = None
    reference_codes: str | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResponseFor:
    """The document a package answers or concerns (edxml.md §3.1 1.12, §5.1)."""

    organ_id: str = ""
    code: str = ""
    promulgation_date: date | None = None
    document_id: str = ""


@dataclass(frozen=True, kw_only=True)
class MessageHeader:
    """``MessageHeader`` of an edoc package (edxml.md §3.1)."""

    from_: Organization
    to: tuple[Organization, ...]
    document_id: str = ""
    code: Code = field(default_factory=Code)
    promulgation_info: PromulgationInfo = field(default_factory=PromulgationInfo)
    document_type: DocumentType = field(default_factory=DocumentType)
    subject: str = ""
    content: str | None = None
    signer_info: SignerInfo = field(default_factory=SignerInfo)
    due_date: date | None = None
    other_info: OtherInfo = field(default_factory=OtherInfo)
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: SteeringType | None = None
    response_for_task: tuple[str, ...] = ()
    application_type: str | None = None
    to_places: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TraceHeader:
    organ_id: str
    timestamp: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class StaffInfo:
    department: str | None = None
    department_id: str | None = None
    staff: str | None = None
    staff_id: str | None = None
    mobile: str | None = None
    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class Receiver:
    organ_id: str
    receiver_type: ReceiverType


@dataclass(frozen=True, kw_only=True)
class BussinessDocumentInfo:
    """What an update (BussinessDocType 2) changes (edxml.md §4)."""

    document_info: bool = False
    document_receiver: bool = False
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReplacementInfo:
    """One replaced document and the receivers concerned (BussinessDocType 3)."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Bussiness:
    """``TraceHeaderList/Bussiness`` (sic) — the business operation (edxml.md §4)."""

    bussiness_doc_type: BussinessDocType = BussinessDocType.NEW
    document_id: str | None = None
    bussiness_doc_reason: str | None = None
    paper: bool | None = None
    staff_info: StaffInfo | None = None
    bussiness_document_info: BussinessDocumentInfo | None = None
    replacement_info_list: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TraceHeaderList:
    trace_headers: tuple[TraceHeader, ...] = ()
    bussiness: Bussiness | None = None
    id: str | None = None
    version: str | None = None


@dataclass(frozen=True, kw_only=True)
class SignatureBlock:
    """The ``edXMLHeader/Signature`` element, carried opaque as its exclusive-C14N serialisation.

    The model does not interpret signatures: verification belongs to :mod:`gateway.xmlcheck.signature`
    and works on the received bytes, because a signature does not survive re-rendering.
    """

    xml: str
    #: True when the element is in the xmldsig namespace; False for the official samples' dummy
    #: placeholder, which sits in the edXML namespace (edxml.md §10.1).
    is_xmldsig: bool


@dataclass(frozen=True, kw_only=True)
class ManifestReference:
    """``edXMLBody/edXMLManifest/Reference`` — one per attachment (edxml.md §9)."""

    content_id: str
    content_type: str | None = None
    description: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """``AttachmentEncoded/Attachment``; ``data`` is the decoded payload as carried (usually a zip).

    ``data`` is ``None`` when the bytes were checked but not kept: intake reads a package with
    ``read_tree(..., attachments="zips")``, which proves every attachment's base64 valid and keeps the decoded bytes
    only of the zips (the inflation policy reads them), so that a 20 MB scan is not held decoded for nothing
    (issue 14). ``None`` is never an empty attachment (that is ``b""``): code that needs the bytes reads the package
    with the default ``attachments="all"``."""

    content_id: str
    attachment_name: str | None = None
    description: str | None = None
    content_type: str | None = None
    data: bytes | None = b""
    format: str | None = None
    field_name: str | None = None
    mime_type: str | None = None

    @property
    def is_zip(self) -> bool:
        """Receivers must sniff (edxml.md §9): the zip magic, or the declared content type."""
        declared = (self.content_type or "").lower() in _ZIP_TYPES
        return declared or (self.data is not None and self.data[:4] == ZIP_MAGIC)

    @property
    def kept(self) -> bool:
        """The decoded bytes are here (False: checked at intake and not kept, see the class docstring)."""
        return self.data is not None


#: A zip archive's first local file header.
ZIP_MAGIC = b"PK\x03\x04"


_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})


@dataclass(frozen=True, kw_only=True)
class EdocPackage:
    """An edoc package (văn bản): edxml.md §3."""

    message_header: MessageHeader
    trace_header_list: TraceHeaderList = field(default_factory=TraceHeaderList)
    signature: SignatureBlock | None = None
    manifest_version: str | None = "1.0"
    references: tuple[ManifestReference, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    kind = PackageKind.EDOC

    @property
    def document_id(self) -> str:
        return self.message_header.document_id

    @property
    def sender(self) -> str:
        return self.message_header.from_.organ_id

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(o.organ_id for o in self.message_header.to)

    @property
    def bussiness_doc_type(self) -> BussinessDocType:
        b = self.trace_header_list.bussiness
        return b.bussiness_doc_type if b else BussinessDocType.NEW


@dataclass(frozen=True, kw_only=True)
class StatusPackage:
    """A status package (gói tin trạng thái): edxml.md §5."""

    from_: Organization
    response_for: ResponseFor
    status_code: StatusCode
    timestamp: datetime | None = None
    staff_info: StaffInfo | None = None
    description: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    kind = PackageKind.STATUS

    @property
    def document_id(self) -> str:
        """The business DocumentId of the document this status is about."""
        return self.response_for.document_id

    @property
    def sender(self) -> str:
        return self.from_.organ_id


Package = EdocPackage | StatusPackage
