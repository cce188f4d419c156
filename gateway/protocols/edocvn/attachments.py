"""Attachments of the e-doc.vn profile: MIME parts ↔ ``edXML:Manifest`` ↔ the model's attachments
(legacy-edoc-vn.md §7).

Intake (SendDocument, §7.1): every non-root part must be named by a ``Manifest/Reference`` whose ``href`` (any
prefix: ``href`` and ``xlink:href`` alike) is ``cid:<Content-ID>``, else the request fails with Bkav's
``R.AttachmentName``; a Reference without a part is ignored. Matching is exact first, as Bkav does, then — liberal —
with RFC 2392 ``%`` escapes undone. A missing Manifest (§7.4) is a document without attachments. Part payloads are
taken after CTE decoding (raw bytes or CTE-base64 both arrive as the file's bytes).

Output: SendDocument writes an unprefixed ``href`` (the form every Bkav code path reads, §7.1); a GetDocument answer
in Bkav's database shape writes ``xlink:href`` + ``xlink:type`` = the media type and ``Description`` = the name
(§6.5). Bkav's GetDocument part bodies are Base64 text labelled ``binary`` (§7.3): :data:`PAYLOAD_BASE64_TEXT`
selects that per peer, both when writing and when reading.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote

from lxml import etree

from gateway.edxml.model import Attachment, ManifestReference
from gateway.edxml.reader import strip_cid
from gateway.protocols.edocvn.envelope import OURS, child, children, text
from gateway.protocols.edocvn.errors import ProfileError
from gateway.protocols.edocvn.mime import Part
from gateway.protocols.edocvn.mimebuild import OutPart
from gateway.protocols.edocvn.names import EDOC, XLINK

#: How a part's body carries the file: its bytes (what Bkav expects on intake) or Base64 text (what it sends, §7.3).
Payload = Literal["raw", "base64-text"]
PAYLOAD_RAW: Final = "raw"
PAYLOAD_BASE64_TEXT: Final = "base64-text"
#: §7.1: the media type Bkav derives from the file extension when a part has none.
_BY_EXTENSION: Final = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}


@dataclass(frozen=True)
class Reference:
    """One ``Manifest/Reference``: the Content-ID its href names (``cid:`` removed), its name and description."""

    content_id: str
    attachment_name: str | None
    description: str | None = None
    content_type: str | None = None


def references(manifest: etree._Element | None) -> tuple[Reference, ...]:
    """The References of a Manifest (none when there is no Manifest, §7.4)."""
    out = []
    for ref in children(manifest, "Reference", OURS):
        href = next((v for k, v in ref.attrib.items() if etree.QName(k).localname == "href"), None)
        if href is None:
            continue
        kind = next((v for k, v in ref.attrib.items() if etree.QName(k).localname == "type"), None)
        name_el = child(ref, "AttachmentName", OURS)
        name = "".join(name_el.itertext()).strip() or None if name_el is not None else None
        out.append(Reference(strip_cid(href), name, text(ref, "Description"), kind))
    return tuple(out)


def match(refs: Sequence[Reference], parts: Mapping[str, Part]) -> list[tuple[Reference, Part]]:
    """Pair every part with the Reference that names it (§7.1), in Manifest order.

    ``R.AttachmentName`` / ``Attachment Name is out of range.`` (Bkav's code and text) for a part no named
    Reference points at."""
    by_id: dict[str, Reference] = {}
    for ref in refs:
        by_id.setdefault(ref.content_id, ref)
        by_id.setdefault(unquote(ref.content_id), ref)
    pairs: list[tuple[Reference, Part]] = []
    for cid, part in parts.items():
        ref = by_id.get(cid)
        if ref is None or not ref.attachment_name:
            raise ProfileError("Attachment Name is out of range.", report_code="R.AttachmentName", content_id=cid)
        pairs.append((ref, part))
    order = {ref.content_id: i for i, ref in enumerate(refs)}
    return sorted(pairs, key=lambda pair: order.get(pair[0].content_id, len(order)))


def content_type_for(name: str | None, declared: str | None) -> str:
    """The part's media type, else Bkav's guess from the extension (§7.1), else ``application/octet-stream``."""
    if declared and declared != "text/plain":  # a part without Content-Type reads as text/plain (RFC 2045)
        return declared
    ext = (name or "").rpartition(".")[2].lower()
    return _BY_EXTENSION.get(ext, "application/octet-stream")


def decode_payload(data: bytes, payload: Payload, content_id: str) -> bytes:
    if payload == PAYLOAD_RAW:
        return data
    try:
        return base64.b64decode(data.translate(None, b" \t\r\n"), validate=True)
    except (binascii.Error, ValueError):
        raise ProfileError(
            "an attachment part is not the Base64 text this peer sends", reason="payload", content_id=content_id
        ) from None


def to_model(
    pairs: Sequence[tuple[Reference, Part]], payload: Payload = PAYLOAD_RAW
) -> tuple[tuple[ManifestReference, ...], tuple[Attachment, ...]]:
    """The model's manifest references and attachments (the model holds payloads as bytes)."""
    manifest, files = [], []
    for ref, part in pairs:
        ctype = content_type_for(ref.attachment_name, part.headers.get("Content-Type") and part.content_type)
        cid = part.content_id or ref.content_id
        manifest.append(
            ManifestReference(
                content_id=cid, content_type=ctype, description=ref.description, attachment_name=ref.attachment_name
            )
        )
        data = decode_payload(part.read(), payload, cid)
        files.append(
            Attachment(
                content_id=cid,
                attachment_name=ref.attachment_name,
                description=ref.description,
                content_type=ctype,
                data=data,
            )
        )
    return tuple(manifest), tuple(files)


def manifest_element(attachments: Sequence[Attachment], *, db_shape: bool = False) -> etree._Element:
    """``edXML:Manifest`` — always present, even empty (§7.4)."""
    nsmap = {"edXML": EDOC, "xlink": XLINK} if db_shape else {"edXML": EDOC}
    manifest = etree.Element(f"{{{EDOC}}}Manifest", nsmap=nsmap)
    for att in attachments:
        ref = etree.SubElement(manifest, f"{{{EDOC}}}Reference")
        if db_shape:
            ref.set(f"{{{XLINK}}}href", f"cid:{att.content_id}")
            ref.set(f"{{{XLINK}}}type", content_type_for(att.attachment_name, att.content_type))
        else:
            ref.set("href", f"cid:{att.content_id}")
        etree.SubElement(ref, f"{{{EDOC}}}AttachmentName").text = att.attachment_name or att.content_id
        # Bkav's database path writes the name as Description (§6.5): same shape, but we keep a real description.
        description = (att.description or att.attachment_name) if db_shape else att.description
        if description:
            etree.SubElement(ref, f"{{{EDOC}}}Description").text = description
    return manifest


def out_parts(attachments: Sequence[Attachment], payload: Payload = PAYLOAD_RAW) -> list[OutPart]:
    """The MIME parts for ``attachments``: raw bytes, or Base64 text still labelled ``binary`` (§7.3)."""
    return [
        OutPart(
            content_id=att.content_id,
            content_type=content_type_for(att.attachment_name, att.content_type),
            data=att.data,
            base64_text=payload == PAYLOAD_BASE64_TEXT,
        )
        for att in attachments
    ]
