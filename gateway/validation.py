"""Package validation as every entry point runs it (gateway.md Intake 2–4):
safe parse → classify → XSD → tolerant read → business checks.

Signature policy and idempotency (Intake 5–6) are the intake service's; this module stops at "is this
a well-formed, schema-valid, sensible edXML package", which is also what ``edoc-gateway validate``
answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lxml import etree

from gateway.edxml import CheckReport, Package, PackageKind, check, classify, read_tree
from gateway.edxml.attachment_bytes import AttachmentMode
from gateway.payload import Payload
from gateway.xmlcheck import schema
from gateway.xmlcheck.bulk import SpooledTexts
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, HUGE_TREE_FROM, parse_bytes, parse_payload


@dataclass(frozen=True)
class ValidatedPackage:
    """A package that passed validation, with the tree it was read from and the check warnings."""

    kind: PackageKind
    package: Package
    tree: etree._ElementTree
    report: CheckReport
    #: A spooled package's big texts, read from its spool rather than from the tree (``attachments="zips"``): the
    #: signature check streams them too (:mod:`gateway.xmlcheck.bulk`).
    spooled: SpooledTexts | None = None


def validate_package(
    data: bytes | Payload,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    today: date | None = None,
    attachments: AttachmentMode = "all",
) -> ValidatedPackage:
    """Validate package bytes or a :class:`~gateway.payload.Payload` (a spooled one is parsed from its file);
    raises the first failing stage's typed :class:`GatewayError`.

    ``attachments="zips"`` (intake): every attachment's base64 is checked, only the zips' decoded bytes kept
    (:mod:`gateway.edxml.attachment_bytes`)."""
    if isinstance(data, Payload):
        tree = parse_payload(data, max_bytes=max_bytes, what="edXML package")
    else:
        tree = parse_bytes(data, max_bytes=max_bytes, what="edXML package")
    kind = classify(tree.getroot())
    schema.validate(tree, kind)
    spooled = None
    if attachments == "zips" and isinstance(data, Payload) and not data.in_memory:
        spooled = SpooledTexts(data, huge_tree=data.size > HUGE_TREE_FROM)
    package = read_tree(tree, attachments=attachments, spooled=spooled)
    report = check(package, today=today)
    report.raise_if_errors()
    return ValidatedPackage(kind=kind, package=package, tree=tree, report=report, spooled=spooled)
