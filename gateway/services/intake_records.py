"""What an intake writes: the idempotency key, the document record and the audit rows of an accepted or
refused package (gateway.md Intake 6–7). The pipeline that decides is :mod:`gateway.services.intake`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.db import AuditEntry, DocumentRecord, SignerCertificate
from gateway.edxml import EdocPackage, Package, StatusPackage
from gateway.edxml.dates import format_timestamp
from gateway.errors import GatewayError
from gateway.payload import Payload
from gateway.services.routing import Plan
from gateway.xmlcheck.signature import SignatureCheck, SignatureState

_MAX_WARNINGS_KEPT = 20


def idempotency_key(pkg: Package) -> str:
    """SHA-256 (hex) of the idempotency key of a package (gateway.md Intake 6).

    edoc: (kind, From/OrganId, DocumentId, BussinessDocType). status: (kind, From/OrganId,
    ResponseFor/OrganId, ResponseFor/DocumentId, StatusCode, Timestamp). ``ResponseFor/OrganId`` is in the
    status key because one sender recalls (13) a document from each receiver separately, possibly within the
    same second: without it the second recall would be refused as a duplicate of the first.
    """
    if isinstance(pkg, StatusPackage):
        ts = format_timestamp(pkg.timestamp) if pkg.timestamp is not None else ""
        parts = ["status", pkg.sender, pkg.response_for.organ_id, pkg.document_id, pkg.status_code.value, ts]
    else:
        parts = ["edoc", pkg.sender, pkg.document_id, str(pkg.bussiness_doc_type.value)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class IntakeAttempt:
    """What is known about a submission so far: the refusal audit row is written from it."""

    system_id: str
    sha256: str
    size: int
    sender: str | None = None
    kind: str | None = None
    document_id: str | None = None
    #: Set for a package polled from another axis (:meth:`Intake.ingest_upstream`): where from, and the channel of
    #: the agencies that axis reaches (the only senders it may act for).
    source: str | None = None
    channel: str | None = None
    #: The upstream's id of the polled item, and the agency it holds the item for (when it says).
    reference: str | None = None
    for_recipient: str | None = None

    @classmethod
    def of(cls, system_id: str, payload: Payload, **upstream: str | None) -> IntakeAttempt:
        """Digest and size as the payload counted them when it was written (no second pass over the bytes)."""
        return cls(system_id=system_id, sha256=payload.sha256, size=payload.size, **upstream)

    @property
    def upstream(self) -> bool:
        return self.source is not None

    def audit_detail(self) -> dict[str, str]:
        """What marks an upstream package's audit rows: its source, the upstream's item id and recipient."""
        if self.source is None:
            return {}
        detail = {"source": self.source[:200]}
        if self.channel:
            detail["channel"] = self.channel
        if self.reference:
            detail["peer_reference"] = self.reference[:100]
        if self.for_recipient:
            detail["for_recipient"] = self.for_recipient[:35]
        return detail


def document_record(
    attempt: IntakeAttempt,
    pkg: Package,
    key: str,
    plan: Plan,
    check: SignatureCheck,
    warnings: list[dict[str, str]],
    now: datetime,
) -> DocumentRecord:
    """The stored metadata of an accepted package (what history, lists and reports read)."""
    dates: dict[str, Any] = {}
    if isinstance(pkg, EdocPackage):
        doc_type, code = pkg.bussiness_doc_type.value, None
        h = pkg.message_header
        subject, code_text = h.subject, str(h.code)
        dates = {
            "priority": h.other_info.priority.value,
            "promulgation_date": h.promulgation_info.promulgation_date,
            "due_date": h.due_date,
        }
    else:
        doc_type, code = None, pkg.status_code.value
        subject, code_text = pkg.description, pkg.response_for.code
    return DocumentRecord(
        doc_id=uuid4().hex,
        kind=pkg.kind.value,
        sender=pkg.sender,
        document_id=pkg.document_id,
        sha256=attempt.sha256,
        size=attempt.size,
        received_at=now,
        signature_state=check.state.value,
        idem_key=key,
        bussiness_doc_type=doc_type,
        status_code=code,
        related_doc_id=plan.related_doc_id,
        submitted_by=attempt.system_id,
        signer_subject=check.signer_subject,
        signer_fingerprint=check.signer_fingerprint,
        subject=subject,
        code=code_text,
        meta={**plan.meta, **_signature_meta(check), **_warnings_meta(warnings)},
        **dates,
    )


def accepted(attempt: IntakeAttempt, document: DocumentRecord, plan: Plan) -> AuditEntry:
    """The ``intake.accepted`` audit row (never the body)."""
    return AuditEntry(
        at=document.received_at,
        action="intake.accepted",
        system_id=attempt.system_id,
        doc_id=document.doc_id,
        organ_id=document.sender,
        detail={
            "kind": document.kind,
            "document_id": document.document_id,
            "sha256": attempt.sha256,
            "size": attempt.size,
            "signature": document.signature_state,
            "recipients": [r for r, _channel in plan.recipients],
            **attempt.audit_detail(),
        },
    )


def signer_certificate(check: SignatureCheck, organ_id: str, now: datetime) -> SignerCertificate | None:
    """The certificate watch's row for a VALID signature of ``organ_id``'s package (None for any other state)."""
    cert = check.signer_certificate
    if check.state is not SignatureState.VALID or cert is None or check.signer_fingerprint is None:
        return None
    return SignerCertificate(
        organ_id=organ_id,
        fingerprint=check.signer_fingerprint,
        subject=check.signer_subject,
        issuer=check.issuer_subject,
        serial=f"{cert.serial_number:x}",
        not_before=check.not_before or cert.not_valid_before_utc,
        not_after=check.not_after or cert.not_valid_after_utc,
        first_seen_at=now,
        last_seen_at=now,
        der=cert.public_bytes(Encoding.DER),
    )


def _signature_meta(check: SignatureCheck) -> dict[str, Any]:
    if check.state is not SignatureState.VALID:
        return {}
    return {
        "signature": {
            "algorithm": check.signature_algorithm,
            "digest": check.digest_algorithm,
            "issuer": check.issuer_subject,
            "serial": f"{check.signer_serial:x}" if check.signer_serial is not None else None,
            "revocation": check.revocation,
            "warnings": list(check.warnings),
        }
    }


def _warnings_meta(warnings: list[dict[str, str]]) -> dict[str, Any]:
    if not warnings:
        return {}
    return {"warnings": warnings[:_MAX_WARNINGS_KEPT], "warning_count": len(warnings)}


def refused(attempt: IntakeAttempt, exc: GatewayError, now: datetime) -> AuditEntry:
    """The ``intake.refused`` audit row: code, system, sending agency, digest and size — never the body."""
    detail: dict[str, Any] = {"message": exc.message[:500], "sha256": attempt.sha256, "size": attempt.size}
    for name in ("path", "kind", "document_id"):
        value = exc.path if name == "path" else getattr(attempt, name)
        if value:
            detail[name] = str(value)[:300]
    reason = exc.detail.get("reason")
    if isinstance(reason, str):
        detail["reason"] = reason
    detail.update(attempt.audit_detail())
    return AuditEntry(
        at=now,
        action="intake.refused",
        outcome=exc.code,
        system_id=attempt.system_id,
        organ_id=attempt.sender[:35] if attempt.sender else None,
        detail=detail,
    )


__all__ = ["IntakeAttempt", "accepted", "document_record", "idempotency_key", "refused", "signer_certificate"]
