"""edXML packages (QCVN 102:2016/BTTTT): the model, reading, writing, JSON, checks.

The public surface, in the order a package travels::

    pkg = read_bytes(data)          # safe parse + tolerant read (gateway.xmlcheck.safe underneath)
    report = check(pkg)             # business checks; report.raise_if_errors()
    data = render(pkg)              # canonical bytes
    doc = to_json(pkg); pkg = from_json(doc)

This package knows nothing of HTTP, SOAP or the database.
"""

from gateway.edxml.attachments import ExtractedFile, ZipLimits, add_files, extract, make_attachment
from gateway.edxml.checks import CheckReport, check
from gateway.edxml.codes import (
    BussinessDocType,
    PackageKind,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)
from gateway.edxml.jsonform import from_json, json_schema, parse_json, to_json
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
from gateway.edxml.organ import OrganId
from gateway.edxml.reader import classify, read_bytes, read_tree
from gateway.edxml.writer import render

__all__ = [
    "Attachment",
    "Bussiness",
    "BussinessDocType",
    "BussinessDocumentInfo",
    "CheckReport",
    "Code",
    "DocumentType",
    "EdocPackage",
    "ExtractedFile",
    "ManifestReference",
    "MessageHeader",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Package",
    "PackageKind",
    "Priority",
    "PromulgationInfo",
    "Receiver",
    "ReceiverType",
    "ReplacementInfo",
    "ResponseFor",
    "SignatureBlock",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusPackage",
    "SteeringType",
    "TraceHeader",
    "TraceHeaderList",
    "ZipLimits",
    "add_files",
    "check",
    "classify",
    "extract",
    "from_json",
    "json_schema",
    "make_attachment",
    "parse_json",
    "read_bytes",
    "read_tree",
    "render",
    "to_json",
]
