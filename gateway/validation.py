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
from gateway.xmlcheck import schema
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, parse_bytes


@dataclass(frozen=True)
class ValidatedPackage:
    """A package that passed validation, with the tree it was read from and the check warnings."""

    kind: PackageKind
    package: Package
    tree: etree._ElementTree
    report: CheckReport


def validate_package(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, today: date | None = None) -> ValidatedPackage:
    """Validate package bytes; raises the first failing stage's typed :class:`GatewayError`."""
    tree = parse_bytes(data, max_bytes=max_bytes, what="edXML package")
    kind = classify(tree.getroot())
    schema.validate(tree, kind)
    package = read_tree(tree)
    report = check(package, today=today)
    report.raise_if_errors()
    return ValidatedPackage(kind=kind, package=package, tree=tree, report=report)
