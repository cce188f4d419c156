"""Routing of edoc packages (gateway.md "Routing", Intake 3 and 7): who gets a delivery, and what an update,
revocation or replacement is linked to.

* A package from a local system goes to every ``To``, each a registered, active agency
  (``ROUTE.UNKNOWN_RECIPIENT`` otherwise). With an upstream VDXP axis configured, recipients unknown here become
  agencies on the :data:`UPSTREAM_CHANNEL` channel and are forwarded upstream; inactive agencies stay refused.
* A package polled from another axis (:data:`UPSTREAM_SYSTEM`: the national VDXP axis, or a legacy e-doc.vn axis)
  gets deliveries only for the ``To`` hosted here (:func:`hosted_here`: not on an :data:`AXIS_CHANNELS` channel):
  an axis delivers to the agencies it reaches itself, and sending anything back up, or across to the other axis,
  would loop or duplicate what that axis delivers on its own.
* An update/revoke/replace must name a document of the same sender that the gateway knows (``NOT_FOUND``).
* DocumentIds belong to their issuer (issue 10 finding 9; setting ``document_id_policy``): a DocumentId is
  ``{From/OrganId},{date},{number}`` by convention (edxml.md §6.3, [C] samples and the SDK), so one that names
  another agency as its issuer is not the sender's to use; a new document may not take a DocumentId another
  agency already issued (this covers opaque/UUID DocumentIds, which name no issuer); and an update, revocation or
  replacement may not concern a DocumentId issued by another agency. Otherwise an agency could send a document
  under another's DocumentId and then revoke "it" — recipients match by DocumentId. ``standard`` (the default)
  refuses (``EDXML.DOCUMENT_ID``) what takes another agency's document: an update/revoke/replace of a DocumentId
  issued by another agency, and a DocumentId that collides with one another agency sent (its own, or an opaque
  one another agency used first); a DocumentId merely naming another issuer is logged and recorded, since real
  producers copy templates (the SDK's edoc_new sample). ``strict`` refuses every finding, ``warn`` logs and
  records them in the document's metadata, ``off`` skips. Opaque DocumentIds (a UUID, edxml.md §6.3) stay
  accepted.

Status packages are routed by :mod:`gateway.services.status_relay`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from gateway.db import AgencyRecord, DocumentRecord, StatusRecord, Store
from gateway.edxml import BussinessDocType, EdocPackage
from gateway.errors import DocumentIdError, NotFoundError, RouteError

log = logging.getLogger(__name__)

#: Channels a worker pushes to; ``mailbox`` recipients fetch their deliveries themselves.
PUSH_CHANNELS: Final = frozenset({"soap", "rest", "vdxp", "edocvn"})
#: The acting identity of packages polled from another axis (:meth:`Intake.ingest_upstream`), in
#: ``submitted_by`` and the audit log (the audit detail names the source and its channel). No registered system
#: can carry it (a system id starts with a letter or a digit), so no client can borrow an axis's rights.
UPSTREAM_SYSTEM: Final = "@upstream"
#: The channel of the agencies reached through the national VDXP axis, where recipients unknown here are forwarded
#: when an upstream is configured.
UPSTREAM_CHANNEL: Final = "vdxp"
#: Channels whose agencies another axis reaches (the national VDXP axis; a legacy e-doc.vn axis): a package polled
#: from one may speak only for the agencies on ITS channel, and is delivered only to agencies hosted here.
AXIS_CHANNELS: Final = frozenset({UPSTREAM_CHANNEL, "edocvn"})

#: The issuer part of a conventional DocumentId: the lenient OrganId grammar of edxml.md §6.1 with at least one
#: dot (so that a word or a UUID is never taken for an agency), then the comma.
#: Where refusals of the package's own DocumentId point.
DOCUMENT_ID_PATH: Final = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/DocumentId"
_ISSUER: Final = re.compile(r"([0-9A-Z]+(?:\.[0-9A-Z]+)+),", re.ASCII)

_RELATED_WHAT = {
    BussinessDocType.REVOKE: "revocation",
    BussinessDocType.UPDATE: "update",
    BussinessDocType.REPLACE: "replacement",
}


@dataclass(frozen=True)
class Plan:
    """The routing outcome of a package: who gets a delivery (and whether it is pushed), what it is linked to,
    the status-history row of a status package, and the metadata stored with the document."""

    #: (recipient OrganId, channel it is reached by).
    recipients: tuple[tuple[str, str], ...]
    related_doc_id: str | None = None
    status: StatusRecord | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipients:
    """Who an edoc goes to, and the upstream agencies to register once every check has passed."""

    deliver_to: tuple[str, ...]
    agencies: Mapping[str, AgencyRecord]
    new_upstream: tuple[AgencyRecord, ...] = ()


def hosted_here(agency: AgencyRecord | None) -> bool:
    """A registered, active agency this gateway delivers to itself (any channel but an axis's)."""
    return agency is not None and agency.active and agency.channel not in AXIS_CHANNELS


def edoc_recipients(
    pkg: EdocPackage,
    agencies: Mapping[str, AgencyRecord],
    *,
    upstream_configured: bool,
    polled: bool = False,
    for_recipient: str | None = None,
) -> Recipients:
    """The ``To`` that get a delivery (module docstring); refuses unknown or inactive recipients."""
    if polled:
        return Recipients(_upstream_targets(pkg.recipients, agencies, for_recipient), agencies)
    unknown = [r for r in pkg.recipients if r not in agencies or not agencies[r].active]
    if not unknown:
        return Recipients(pkg.recipients, agencies)
    # Inactive agencies are known and stay refused; unknown ones become upstream agencies.
    if not upstream_configured or any(r in agencies for r in unknown):
        raise RouteError(f"unknown or inactive recipient(s): {', '.join(unknown)}", recipients=unknown)
    names = {o.organ_id: o.organ_name for o in pkg.message_header.to}
    new = {r: AgencyRecord(r, names.get(r) or r, channel=UPSTREAM_CHANNEL) for r in unknown}
    return Recipients(pkg.recipients, {**agencies, **new}, tuple(new.values()))


def _upstream_targets(
    recipients: Sequence[str], agencies: Mapping[str, AgencyRecord], for_recipient: str | None
) -> tuple[str, ...]:
    """The ``To`` of a polled edoc hosted here. A local recipient that is switched off refuses the package, as a
    local submission would; the others (unknown here, or reached through an axis) are the axes' to deliver."""
    local = [r for r in recipients if r in agencies and agencies[r].channel not in AXIS_CHANNELS]
    inactive = [r for r in local if not agencies[r].active]
    if inactive:
        raise RouteError(f"inactive recipient(s): {', '.join(inactive)}", recipients=inactive)
    if not local:
        raise RouteError(
            "none of the recipients is hosted by this gateway: " + ", ".join(recipients), recipients=list(recipients)
        )
    if for_recipient is not None and for_recipient not in local:
        raise RouteError(
            f"the axis holds this package for {for_recipient}, which is not a recipient hosted here",
            recipients=[for_recipient],
        )
    return tuple(local)


def document_id_issuer(document_id: str) -> str | None:
    """The OrganId a conventional DocumentId names as its issuer; ``None`` for an opaque one (a UUID)."""
    m = _ISSUER.match(document_id.strip())
    return m.group(1) if m else None


def document_id_problems(
    store: Store, pkg: EdocPackage, targets: Sequence[str], stored: Sequence[DocumentRecord] | None = None
) -> list[tuple[bool, str]]:
    """What is not the sender's in the package's own DocumentId and the ones it concerns, each as (``serious``,
    message): serious findings are refused under ``standard``, the others only under ``strict``. ``stored``: the
    edocs under the package's DocumentId when the caller already read them (intake's lookup, issue 14)."""
    sender = pkg.sender
    problems: list[tuple[bool, str]] = []
    issuer = document_id_issuer(pkg.document_id)
    if stored is None:
        stored = [d for d, _ in store.documents.edocs_with_recipients(pkg.document_id)] if pkg.document_id else []
    others = sorted({d.sender for d in stored if d.sender != sender})
    if issuer is not None and issuer != sender:
        # Producers copy templates (the SDK's own edoc_new sample: From A80, DocumentId of G22): a mere mismatch is
        # serious only when it collides with a document its issuer really sent.
        problems.append((issuer in others, f"DocumentId {pkg.document_id!r} is issued by {issuer}, not by {sender}"))
    elif pkg.bussiness_doc_type is BussinessDocType.NEW and others:
        # Taking an id another agency already used; not serious when it is the sender's own (someone else used it
        # first: refusing the real issuer would let anyone block its next number).
        problems.append((issuer is None, f"DocumentId {pkg.document_id!r} was already used by {', '.join(others)}"))
    what = _RELATED_WHAT.get(pkg.bussiness_doc_type, "reference")
    for target in targets:
        owner = document_id_issuer(target)
        if owner is not None and owner != sender:
            problems.append((True, f"the {what} concerns {target!r}, a document of {owner}, not of {sender}"))
    return problems


def _apply_document_id_policy(
    store: Store, pkg: EdocPackage, targets: Sequence[str], policy: str, stored: Sequence[DocumentRecord] | None
) -> list[str]:
    if policy == "off":
        return []
    problems = document_id_problems(store, pkg, targets, stored)
    refused = [m for serious, m in problems if policy == "strict" or (serious and policy == "standard")]
    if refused:
        raise DocumentIdError(
            refused[0], path=DOCUMENT_ID_PATH, document_id=pkg.document_id, sender=pkg.sender, problems=refused
        )
    for _serious, problem in problems:
        log.warning("document_id_policy=%s: accepted although %s", policy, problem)
    return [m for _s, m in problems]


def plan_edoc(
    store: Store,
    pkg: EdocPackage,
    recipients: Recipients,
    *,
    document_ids: str = "standard",
    stored: Sequence[DocumentRecord] | None = None,
) -> Plan:
    """Deliveries, link and metadata of an edoc whose recipients were decided by :func:`edoc_recipients`;
    ``document_ids`` is the ``document_id_policy`` applied (module docstring); ``stored``: the edocs under the
    package's DocumentId if already read (else read here)."""
    h = pkg.message_header
    b = pkg.trace_header_list.bussiness
    kind = pkg.bussiness_doc_type
    meta: dict[str, Any] = {
        "promulgation_date": iso(h.promulgation_info.promulgation_date),
        "type_name": h.document_type.type_name or None,
        "due_date": iso(h.due_date),
        "priority": h.other_info.priority.value,
        "attachments": len(pkg.attachments),
        "bussiness_doc_type": kind.value,
    }
    related: str | None = None
    targets: list[str] = []
    if kind is BussinessDocType.REPLACE and b is not None:
        targets = [ri.document_id for ri in b.replacement_info_list if ri.document_id]
    elif kind is not BussinessDocType.NEW and b is not None and b.document_id:
        targets = [b.document_id]
    elif kind is not BussinessDocType.NEW and h.response_for:
        targets = [rf.document_id for rf in h.response_for if rf.document_id]
    findings = _apply_document_id_policy(store, pkg, targets, document_ids, stored)
    if findings:
        meta["document_id_warnings"] = findings
    if kind is not BussinessDocType.NEW:
        related = _find_related(store, pkg.sender, targets, kind)
        meta["related_document_ids"] = targets
    agencies = recipients.agencies
    reached = tuple((r, agencies[r].channel) for r in recipients.deliver_to)
    return Plan(recipients=reached, related_doc_id=related, meta=meta)


def _find_related(store: Store, sender: str, targets: list[str], kind: BussinessDocType) -> str:
    """The original document a revoke/update/replace concerns: same sender, preferring a new (type 0)."""
    for target in targets:
        candidates = store.documents.edocs_with_recipients(target, sender)
        if candidates:
            return original_of([d for d, _ in candidates]).doc_id
    what = _RELATED_WHAT[kind]
    raise NotFoundError(
        f"the {what} concerns document(s) {', '.join(targets) or '(none named)'} of {sender}, "
        "which the gateway does not know",
        document_ids=targets,
    )


def original_of(docs: Sequence[DocumentRecord]) -> DocumentRecord:
    """Of several stored edocs sharing one sender's DocumentId (an original and its update, replacement or
    revocation), the one a reference by DocumentId means: the original (type 0) if stored, else the newest."""
    originals = [d for d in docs if d.bussiness_doc_type == BussinessDocType.NEW.value]
    return (originals or list(docs))[0]


def iso(value: date | datetime | None) -> str | None:
    """A date or time as stored in document metadata (ISO 8601), or None."""
    return value.isoformat() if value is not None else None


__all__ = [
    "AXIS_CHANNELS",
    "PUSH_CHANNELS",
    "UPSTREAM_CHANNEL",
    "UPSTREAM_SYSTEM",
    "Plan",
    "Recipients",
    "document_id_issuer",
    "document_id_problems",
    "edoc_recipients",
    "hosted_here",
    "iso",
    "original_of",
    "plan_edoc",
]
