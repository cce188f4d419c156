"""Read edXML packages into the model — tolerant on input (edxml.md §8–9, §15).

* Elements are found by namespace URI + local name, never by prefix, in any order.
* Both the QCVN 102 namespace and the legacy ``http://www.e-doc.vn/Schema/`` one are read; so are
  un-namespaced children (a stray ``xmlns=""`` is a common producer slip).
* ``Bussiness`` and ``Business``; ``cid:``-prefixed and bare ContentIds; dates in every tolerated
  format; empty elements for "no value"; attachment base64 with or without line breaks.

The reader raises typed errors (``EDXML.STRUCTURE``, ``EDXML.VALUE``, ``EDXML.ATTACHMENT``) with the
element path; rules across fields are in :mod:`gateway.edxml.checks`.
"""

from __future__ import annotations

from lxml import etree

from gateway import ns
from gateway.edxml.attachment_bytes import AttachmentBytes, AttachmentMode, decode_base64
from gateway.edxml.codes import (
    BussinessDocType,
    PackageKind,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)
from gateway.edxml.model import (
    Attachment,
    Bussiness,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Package,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignatureBlock,
    SignerInfo,
    StaffInfo,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
)
from gateway.edxml.nodes import READ_NS, Node, local_name, parse_bool, parse_date, parse_int, parse_timestamp
from gateway.errors import EdxmlStructureError, SignatureError
from gateway.xmlcheck.bulk import SpooledTexts
from gateway.xmlcheck.paths import element_path
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, parse_bytes


def strip_cid(value: str) -> str:
    """``cid:209`` and ``209`` name the same attachment (edxml.md §9); also drops ``<…>`` brackets."""
    v = value.strip()
    if v[:4].lower() == "cid:":
        v = v[4:]
    return v.strip("<>")


# --------------------------------------------------------------------------------------------- kind


def classify(root: etree._Element) -> PackageKind:
    """edoc or status, from the structure (edxml.md §3, §5): a status MessageHeader has a StatusCode."""
    uri, local = local_name(root)
    if local != "edXML" or uri not in ns.EDXML_READ:
        raise EdxmlStructureError(f"root element is {{{uri}}}{local}, expected edXML in namespace {ns.EDXML}", path="/")
    header = _message_header_element(root)
    for child in header:
        if isinstance(child.tag, str) and local_name(child)[1] == "StatusCode":
            return PackageKind.STATUS
    return PackageKind.EDOC


def _message_header_element(root: etree._Element) -> etree._Element:
    el = root
    for step in ("edXMLEnvelope", "edXMLHeader", "MessageHeader"):
        nxt = next((c for c in el if isinstance(c.tag, str) and local_name(c) in _names(step)), None)
        if nxt is None:
            raise EdxmlStructureError(f"required element {step} is missing", path=f"{element_path(el)}/{step}")
        el = nxt
    return el


def _names(local: str) -> set[tuple[str, str]]:
    return {(uri, local) for uri in READ_NS}


def read_bytes(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Package:
    """Safe-parse and read a package from its bytes."""
    return read_tree(parse_bytes(data, max_bytes=max_bytes, what="edXML package"))


def read_tree(
    tree: etree._ElementTree | etree._Element,
    *,
    attachments: AttachmentMode = "all",
    spooled: SpooledTexts | None = None,
) -> Package:
    """Read a parsed package (from :func:`gateway.xmlcheck.safe.parse_bytes`, or a signature's
    ``signed_root`` — the only element a caller may trust after verification).

    ``attachments="zips"`` checks every attachment's base64 but keeps the decoded bytes only of zips
    (:mod:`gateway.edxml.attachment_bytes`; intake); with ``spooled``, the tree's package in its spool file, the
    base64 texts are read from the spool in pieces."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    kind = classify(root)
    warnings: list[str] = []
    if local_name(root)[0] == ns.EDXML_LEGACY:
        warnings.append(f"legacy namespace {ns.EDXML_LEGACY} read as {ns.EDXML}")
    top = Node(root, "/edXML", warnings)
    if kind is PackageKind.STATUS:
        return _read_status(top, warnings)
    return _read_edoc(top, warnings, AttachmentBytes(attachments, spooled))


def _organization(node: Node) -> Organization:
    # Bkav's GetDocument writes ``OrganInCharge`` (legacy profile §9); read it when the standard name is absent.
    in_charge = "OrganInCharge" if node.opt("OrganizationInCharge") is None else "OrganizationInCharge"
    return Organization(
        organ_id=node.s_req("OrganId"),
        organ_name=node.s("OrganName"),
        organization_in_charge=node.s(in_charge),
        organ_add=node.s("OrganAdd"),
        email=node.s("Email"),
        telephone=node.s("Telephone"),
        fax=node.s("Fax"),
        website=node.s("Website"),
    )


def _response_for(node: Node) -> ResponseFor:
    return ResponseFor(
        organ_id=node.s_req("OrganId"),
        code=node.s_req("Code"),
        promulgation_date=node.parsed("PromulgationDate", parse_date),
        document_id=node.s_req("DocumentId"),
    )


def _staff_info(node: Node | None) -> StaffInfo | None:
    if node is None:
        return None
    info = StaffInfo(
        department=node.s("Department"),
        department_id=node.s("DepartmentId"),
        staff=node.s("Staff"),
        staff_id=node.s("StaffId"),
        mobile=node.s("Mobile"),
        email=node.s("Email"),
    )
    return info if info != StaffInfo() else None


def _read_edoc(top: Node, warnings: list[str], decoder: AttachmentBytes) -> EdocPackage:
    env = top.req("edXMLEnvelope")
    head = env.req("edXMLHeader")
    header = _message_header(head.req("MessageHeader"))
    trace = _trace_header_list(head.opt("TraceHeaderList"), warnings)
    body = env.opt("edXMLBody")
    manifest = body.opt("edXMLManifest") if body is not None else None
    references = tuple(
        ManifestReference(
            content_id=strip_cid(n.s_req("ContentId")),
            content_type=n.s("ContentType"),
            description=n.s("Description"),
            attachment_name=n.s("AttachmentName"),
        )
        for n in (manifest.all("Reference") if manifest is not None else [])
    )
    encoded = top.opt("AttachmentEncoded") or env.opt("AttachmentEncoded")
    nodes = encoded.all("Attachment") if encoded is not None else []
    decoder.prepare(nodes)
    attachments = tuple(_attachment(n, i, decoder) for i, n in enumerate(nodes))
    return EdocPackage(
        message_header=header,
        trace_header_list=trace,
        signature=_signature(head),
        manifest_version=manifest.el.get("version") if manifest is not None else None,
        references=references,
        attachments=attachments,
        warnings=tuple(warnings),
    )


def _message_header(mh: Node) -> MessageHeader:
    if not mh.kids.get("To"):
        raise EdxmlStructureError("an edoc package needs at least one To", path=f"{mh.path}/To")
    code = mh.opt("Code")
    prom = mh.opt("PromulgationInfo")
    dtype = mh.opt("DocumentType")
    signer = mh.opt("SignerInfo")
    return MessageHeader(
        from_=_organization(mh.req("From")),
        to=tuple(_organization(n) for n in mh.all("To")),
        document_id=mh.s_req("DocumentId"),
        code=Code(code_number=code.s_req("CodeNumber"), code_notation=code.s_req("CodeNotation")) if code else Code(),
        promulgation_info=PromulgationInfo(
            place=prom.s("Place"), promulgation_date=prom.parsed("PromulgationDate", parse_date)
        )
        if prom
        else PromulgationInfo(),
        document_type=DocumentType(
            type=dtype.s_req("Type"), type_detail=dtype.s("TypeDetail"), type_name=dtype.s_req("TypeName")
        )
        if dtype
        else DocumentType(),
        subject=mh.s_req("Subject"),
        content=mh.s("Content"),
        signer_info=SignerInfo(
            competence=signer.s("Competence"), position=signer.s("Position"), full_name=signer.s("FullName")
        )
        if signer
        else SignerInfo(),
        due_date=mh.parsed("DueDate", parse_date),
        other_info=_other_info(mh.opt("OtherInfo")),
        response_for=tuple(rf for n in mh.all("ResponseFor") if (rf := _response_for(n)) != ResponseFor()),
        steering_type=mh.parsed("SteeringType", SteeringType.parse),  # type: ignore[arg-type]
        response_for_task=mh.texts("ResponseForTask", "TaskCode"),
        application_type=mh.s("ApplicationType"),
        to_places=mh.texts("ToPlaces", "Place"),
    )


def _other_info(other: Node | None) -> OtherInfo:
    if other is None:
        return OtherInfo()
    return OtherInfo(
        priority=other.parsed("Priority", Priority.parse) or Priority.NORMAL,  # type: ignore[arg-type]
        sphere_of_promulgation=other.s("SphereOfPromulgation"),
        typer_notation=other.s("TyperNotation"),
        promulgation_amount=other.parsed("PromulgationAmount", parse_int),
        page_amount=other.parsed("PageAmount", parse_int),
        direction=other.parsed("Direction", parse_bool),
        reply_fors=other.s("ReplyFors"),
        reference_codes=other.s("ReferenceCodes"),
        appendixes=other.texts("Appendixes", "Appendix"),
    )


def _trace_header_list(node: Node | None, warnings: list[str]) -> TraceHeaderList:
    if node is None:
        return TraceHeaderList()
    bnode = node.opt("Bussiness")
    if bnode is None and (bnode := node.opt("Business")) is not None:
        warnings.append("Business read as Bussiness (the standard's spelling)")
    return TraceHeaderList(
        trace_headers=tuple(
            TraceHeader(organ_id=n.s_req("OrganId"), timestamp=n.parsed("Timestamp", parse_timestamp))
            for n in node.all("TraceHeader")
        ),
        bussiness=_bussiness(bnode) if bnode is not None else None,
        id=node.el.get("id"),
        version=node.el.get("version"),
    )


def _spelled(node: Node, standard: str) -> str:
    """``standard`` (``Bussiness…``), or Bkav's ``Business…`` when only that spelling is present (legacy profile §9:
    the block and its children are spelt either way; reading only one lost the other's values)."""
    other = "Business" + standard[len("Bussiness") :]
    return other if node.opt(standard) is None and node.opt(other) is not None else standard


def _bussiness(node: Node) -> Bussiness:
    info = node.opt(_spelled(node, "BussinessDocumentInfo"))
    repl = node.opt("ReplacementInfoList")
    receivers: tuple[Receiver, ...] = ()
    if info is not None and (rl := info.opt("ReceiverList")) is not None:
        receivers = tuple(
            Receiver(
                organ_id=r.s_req("OrganId"),
                receiver_type=r.parsed("ReceiverType", ReceiverType.parse) or ReceiverType.ADDED,  # type: ignore[arg-type]
            )
            for r in rl.all("Receiver")
        )
    return Bussiness(
        bussiness_doc_type=node.parsed(_spelled(node, "BussinessDocType"), BussinessDocType.parse)  # type: ignore[arg-type]
        or BussinessDocType.NEW,
        document_id=node.s("DocumentId"),
        bussiness_doc_reason=node.s(_spelled(node, "BussinessDocReason")),
        paper=node.parsed("Paper", parse_bool),
        staff_info=_staff_info(node.opt("StaffInfo")),
        bussiness_document_info=BussinessDocumentInfo(
            document_info=bool(info.parsed("DocumentInfo", parse_bool)),
            document_receiver=bool(info.parsed("DocumentReceiver", parse_bool)),
            receivers=receivers,
        )
        if info is not None
        else None,
        replacement_info_list=tuple(
            ReplacementInfo(document_id=r.s_req("DocumentId"), organ_ids=r.texts("OrganIdList", "OrganId"))
            for r in (repl.all("ReplacementInfo") if repl is not None else [])
        ),
    )


def _signature(head: Node) -> SignatureBlock | None:
    """The Signature under edXMLHeader: xmldsig-namespaced (real) or edXML-namespaced (the dummy)."""
    for child in head.el:
        if isinstance(child.tag, str) and local_name(child)[1] == "Signature":
            uri = local_name(child)[0]
            try:
                xml = etree.tostring(child, method="c14n", exclusive=True, with_comments=False).decode()
            except etree.C14NError as exc:
                # C14N refuses relative namespace URIs (xmlns="rel"), which XML itself allows (issue 10: a 500).
                message = f"the Signature element cannot be canonicalised: {exc}"
                raise SignatureError(message, path=element_path(child), reason="malformed") from None
            return SignatureBlock(xml=xml, is_xmldsig=uri == ns.DSIG)
    return None


def _attachment(node: Node, index: int, decoder: AttachmentBytes) -> Attachment:
    enc = node.opt("ContentTransferEncoded")
    raw = ""
    if decoder.keep_all:
        raw = (enc.text or "") if enc is not None else ""  # Node.text: a comment cannot cut the payload short
    elif enc is not None and len(enc.el):
        enc.text  # noqa: B018 - refuses a child node (EDXML.VALUE) exactly where the full read does
    path = f"{node.path}/ContentTransferEncoded"
    return Attachment(
        content_id=strip_cid(node.s_req("ContentId")),
        attachment_name=node.s("AttachmentName"),
        description=node.s("Description"),
        content_type=(content_type := node.s("ContentType")),
        data=decode_base64(raw, path) if decoder.keep_all else decoder.data(index, enc, path, content_type),
        format=node.s("Format"),
        field_name=node.s("FieldName"),
        mime_type=node.s("MimeType"),
    )


def _read_status(top: Node, warnings: list[str]) -> StatusPackage:
    mh = top.req("edXMLEnvelope").req("edXMLHeader").req("MessageHeader")
    code_node = mh.req("StatusCode")
    code, note = StatusCode.parse(code_node.text or "", code_node.path)
    if note:
        warnings.append(note)
    return StatusPackage(
        from_=_organization(mh.req("From")),
        response_for=_response_for(mh.req("ResponseFor")),
        status_code=code,
        timestamp=mh.parsed("Timestamp", parse_timestamp),
        staff_info=_staff_info(mh.opt("StaffInfo")),
        description=mh.s("Description"),
        warnings=tuple(warnings),
    )
