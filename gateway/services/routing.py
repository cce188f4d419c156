"""Routing of edoc packages (gateway.md "Routing", Intake 3 and 7): who gets a delivery, and what an update,
revocation or replacement is linked to.

* A package from a local system goes to every ``To``, each a registered, active agency
  (``ROUTE.UNKNOWN_RECIPIENT`` otherwise). With an upstream VDXP axis configured, recipients unknown here become
  agencies on the :data:`UPSTREAM_CHANNEL` channel and are forwarded upstream; inactive agencies stay refused.
* A package polled from the upstream (:data:`UPSTREAM_SYSTEM`) gets deliveries only for the ``To`` hosted here:
  the upstream delivers to the agencies it reaches itself, and sending anything back up would loop.
* An update/revoke/replace must name a document of the same sender that the gateway knows (``NOT_FOUND``).

Status packages are routed by :mod:`gateway.services.status_relay`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from gateway.db import AgencyRecord, DocumentRecord, StatusRecord, Store
from gateway.edxml import BussinessDocType, EdocPackage
from gateway.errors import NotFoundError, RouteError

#: Channels a worker pushes to; ``mailbox`` recipients fetch their deliveries themselves.
PUSH_CHANNELS: Final = frozenset({"soap", "rest", "vdxp"})
#: The acting identity of packages polled from the upstream axis (:meth:`Intake.ingest_upstream`), in
#: ``submitted_by`` and the audit log. No registered system can carry it (a system id starts with a letter or a
#: digit), so no client can borrow the upstream's rights.
UPSTREAM_SYSTEM: Final = "@upstream"
#: The channel of the agencies reached through the upstream axis: the only senders the upstream may act for.
UPSTREAM_CHANNEL: Final = "vdxp"

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
    """A registered, active agency this gateway delivers to itself (any channel but the upstream's)."""
    return agency is not None and agency.active and agency.channel != UPSTREAM_CHANNEL


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
    """The ``To`` of an upstream edoc hosted here. A local recipient that is switched off refuses the package, as
    a local submission would; the others (unknown here, or reached through the upstream) are the upstream's."""
    local = [r for r in recipients if r in agencies and agencies[r].channel != UPSTREAM_CHANNEL]
    inactive = [r for r in local if not agencies[r].active]
    if inactive:
        raise RouteError(f"inactive recipient(s): {', '.join(inactive)}", recipients=inactive)
    if not local:
        raise RouteError(
            "none of the recipients is hosted by this gateway: " + ", ".join(recipients), recipients=list(recipients)
        )
    if for_recipient is not None and for_recipient not in local:
        raise RouteError(
            f"the upstream holds this package for {for_recipient}, which is not a recipient hosted here",
            recipients=[for_recipient],
        )
    return tuple(local)


def plan_edoc(store: Store, pkg: EdocPackage, recipients: Recipients) -> Plan:
    """Deliveries, link and metadata of an edoc whose recipients were decided by :func:`edoc_recipients`."""
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
    if kind is not BussinessDocType.NEW:
        targets: list[str] = []
        if kind is BussinessDocType.REPLACE and b is not None:
            targets = [ri.document_id for ri in b.replacement_info_list if ri.document_id]
        elif b is not None and b.document_id:
            targets = [b.document_id]
        elif h.response_for:
            targets = [rf.document_id for rf in h.response_for if rf.document_id]
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
    "PUSH_CHANNELS",
    "UPSTREAM_CHANNEL",
    "UPSTREAM_SYSTEM",
    "Plan",
    "Recipients",
    "edoc_recipients",
    "hosted_here",
    "iso",
    "original_of",
    "plan_edoc",
]
