"""Intake (gateway.md "Intake" 1–8): one pipeline for every package, whichever edge it came through.

The stages, in this order, every one able to refuse with a stable code (:meth:`Intake._accept`):

1. **parse/validate** — safe parse, classify, XSD, tolerant read, business checks
   (:func:`gateway.validation.validate_package`: size limit first; the package is parsed ONCE and that tree is
   reused by the signature check); the kind the edge expects and the sender a transport declares must match;
   the attachment and recipient counts of the intake policy (:mod:`gateway.services.intake_limits`,
   ``LIMIT.ATTACHMENTS`` / ``LIMIT.RECIPIENTS``);
2. **authenticate** — the system is known and active (one connection reads the system's agencies, the named
   agencies and, for an edoc, the documents under its DocumentId: ``store.documents.intake_lookup``);
3. **authorise the sender** — the system acts for ``From/OrganId`` (:func:`gateway.services.access.acts_for`;
   a legacy system under its ``legacy_scope``, :mod:`gateway.services.legacy_credentials`) and the sending
   agency is registered and active; a polled package speaks only for agencies on its axis's channel;
4. **route** — every ``To`` is a registered, active agency, or goes upstream (:mod:`gateway.services.routing`);
   then the zip attachments are inflated in chunks against the policy (``LIMIT.INFLATED``): only a package its
   system may send costs that work;
5. **signature policy** — the sending agency's (:mod:`gateway.services.signature_policy`). After verification
   only the content the signature covers is read, and its routing fields must equal those checked above;
6. **idempotency** — see :func:`idempotency_key`: the same key and bytes answer the original receipt and store
   nothing; the same key and other bytes → ``EDXML.DUPLICATE``. An edoc's key is answered by the lookup's
   DocumentId rows; otherwise (a status, ``document_id_policy=off``) by the UNIQUE key at insert — and when the
   link stage refuses, by one read, so a retry still gets its receipt; concurrent identical submissions collide on
   the UNIQUE key and the loser answers as a duplicate;
7. **link** — an update/revoke/replace must name a known document of the same sender; a status must concern a
   known document and is routed by :mod:`gateway.services.status_relay` (within the statuses quota per
   (document, recipient), ``LIMIT.STATUSES``);
8. **persist** — ONE transaction: raw bytes + metadata, one delivery per recipient (an outbox row for push
   channels), the status-history row of a status package, the signer certificate of a valid signature (the
   certificate watch, :mod:`gateway.services.certwatch`), the audit entry;
9. **receipt** — signed with the gateway key (:mod:`gateway.services.receipt`).

Packages polled from another axis — the upstream VDXP axis or a legacy e-doc.vn axis
(:meth:`Intake.ingest_upstream`) — take the same stages under the internal identity
:data:`~gateway.services.routing.UPSTREAM_SYSTEM`. Every refusal writes one ``intake.refused`` audit row (code,
system, sending agency, digest and size — never the body) in its own transaction and stores nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from gateway import logs, metrics
from gateway.config import Settings
from gateway.db import (
    AgencyRecord,
    AuditEntry,
    DocumentRecord,
    IdempotencyConflict,
    IntakeLookup,
    NewDocument,
    SignerCertificate,
    Store,
)
from gateway.edxml import EdocPackage, Package, PackageKind
from gateway.edxml.dates import VN_TZ
from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlStructureError,
    GatewayError,
    RequestError,
    RouteError,
    UnavailableError,
)
from gateway.payload import Payload
from gateway.services.access import acts_for
from gateway.services.api import Receipt
from gateway.services.intake_limits import IntakeLimits, check_counts, check_inflation
from gateway.services.intake_link import link
from gateway.services.intake_records import (
    IntakeAttempt,
    accepted,
    document_record,
    idempotency_key,
    refused,
    signer_certificate,
)
from gateway.services.legacy_credentials import legacy_acts_for
from gateway.services.receipt import build_receipt
from gateway.services.routing import (
    AXIS_CHANNELS,
    UPSTREAM_CHANNEL,
    UPSTREAM_SYSTEM,
    Plan,
    Recipients,
    edoc_recipients,
    hosted_here,
)
from gateway.services.signature_policy import check_signature, signed_package
from gateway.validation import ValidatedPackage, validate_package
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore


class Intake:
    """The intake use case (module docstring); thread-safe, one per process."""

    def __init__(
        self,
        store: Store,
        signing_key: SigningKey,
        trust: TrustStore,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        upstream_configured: bool = False,
    ) -> None:
        self.store = store
        self._key = signing_key
        self._trust = trust
        self._settings = settings
        self._clock = clock
        self._limits = IntakeLimits.from_settings(settings)
        #: An upstream national axis is configured: unknown recipients are forwarded to it (gateway.md Routing).
        self._upstream_configured = upstream_configured

    def submit(
        self,
        system_id: str,
        data: bytes | Payload,
        expected: PackageKind | None = None,
        *,
        declared_sender: str | None = None,
    ) -> Receipt:
        """A package from an authenticated system (:meth:`gateway.services.api.GatewayApi.submit`)."""
        if isinstance(data, Payload):  # bridge until intake reads a Payload itself (issue 14, intake part)
            data = data.read()
        return self._run(IntakeAttempt.of(system_id, data), data, expected, declared_sender)

    def ingest_upstream(
        self,
        data: bytes,
        *,
        source: str,
        channel: str = UPSTREAM_CHANNEL,
        reference: str | None = None,
        recipient: str | None = None,
    ) -> Receipt:
        """Take in a package polled from an axis: the national VDXP one (``channel="vdxp"``, issue 4) or a legacy
        e-doc.vn one (``"edocvn"``, issue 13). The SAME pipeline as :meth:`submit`, under the internal identity
        ``UPSTREAM_SYSTEM``, which acts only for registered agencies on ``channel`` (those THIS axis reaches):
        never for a local one, nor for one behind the other axis (a forged package cannot speak for them). The
        sender's signature policy applies as registered; only the ``To`` hosted HERE get a delivery
        (:mod:`gateway.services.routing`); ``recipient`` (whom the axis holds it for) must be ours, or the item is
        refused rather than acknowledged and dropped. Idempotent; audit rows carry source, channel, reference."""
        if channel not in AXIS_CHANNELS:
            raise ValueError(f"not the channel of an axis: {channel!r}")
        attempt = IntakeAttempt.of(
            UPSTREAM_SYSTEM, data, source=source, channel=channel, reference=reference, for_recipient=recipient
        )
        return self._run(attempt, data, None, None)

    def _run(
        self, attempt: IntakeAttempt, data: bytes, expected: PackageKind | None, declared_sender: str | None
    ) -> Receipt:
        """The pipeline with its refusal audit row, counted once in ``edoc_intake_total`` (:mod:`gateway.metrics`)
        under the edge the request came through (bound by the web edge; ``upstream`` for a polled package)."""
        now = self._clock()
        edge = "upstream" if attempt.upstream else str(logs.bound("edge") or "other")
        try:
            receipt = self._accept(attempt, data, expected, declared_sender, now)
        except UnavailableError as exc:
            metrics.count_intake(kind=attempt.kind, outcome="unavailable", code=exc.code, edge=edge)
            raise
        except GatewayError as exc:
            self._audit_refusal(attempt, exc, now)
            metrics.count_intake(kind=attempt.kind, outcome="refused", code=exc.code, edge=edge)
            raise
        except Exception:
            metrics.count_intake(kind=attempt.kind, outcome="error", code=None, edge=edge)
            raise
        outcome = "duplicate" if receipt.duplicate else "accepted"
        metrics.count_intake(kind=receipt.kind.value, outcome=outcome, code=None, edge=edge)
        logs.bind(doc_id=receipt.doc_id)  # the request's remaining log lines name the stored document
        return receipt

    def _accept(
        self,
        attempt: IntakeAttempt,
        data: bytes,
        expected: PackageKind | None,
        declared_sender: str | None,
        now: datetime,
    ) -> Receipt:
        """The stages of the module docstring, in order."""
        validated = self._parse(attempt, data, now)
        _as_expected(validated, expected, declared_sender)
        pkg = validated.package
        check_counts(pkg, self._limits)
        key = idempotency_key(pkg)
        edoc = isinstance(pkg, EdocPackage)
        named = {pkg.sender, *pkg.recipients} if edoc else {pkg.sender, pkg.response_for.organ_id}
        named.update([attempt.for_recipient] if attempt.for_recipient else [])
        same = (pkg.sender, pkg.document_id) if edoc and self._settings.document_id_policy != "off" else None
        lookup = self.store.documents.intake_lookup(attempt.system_id, named - {""}, key, same_document=same)
        self._authenticate(attempt, lookup)
        sender_agency = self._authorise_sender(attempt, pkg.sender, lookup)
        recipients = self._route(attempt, pkg, lookup)
        check_inflation(pkg, self._limits)
        check = check_signature(validated.tree, sender_agency, self._trust, self._settings, now)
        pkg = signed_package(check, pkg)
        if lookup.existing is not None:
            return self._duplicate(attempt, lookup.existing, now)
        try:
            plan = link(self.store, self._settings, attempt, pkg, lookup, recipients, now)
        except GatewayError:
            # The key was left to the UNIQUE constraint: a retry of an accepted package still gets its receipt.
            existing = None if lookup.key_read else self.store.documents.document_by_idem_key(key)
            if existing is None:
                raise
            return self._duplicate(attempt, existing, now)
        document = document_record(attempt, pkg, key, plan, check, validated, now)
        return self._persist(attempt, data, document, plan, recipients, signer_certificate(check, pkg.sender, now))

    # ------------------------------------------------------------------------------------------ stages

    def _parse(self, attempt: IntakeAttempt, data: bytes, now: datetime) -> ValidatedPackage:
        validated = validate_package(
            data, max_bytes=self._settings.max_package_bytes, today=now.astimezone(VN_TZ).date()
        )
        pkg = validated.package
        attempt.kind, attempt.sender, attempt.document_id = validated.kind.value, pkg.sender, pkg.document_id
        logs.bind(kind=attempt.kind, sender=pkg.sender, document_id=pkg.document_id)
        return validated

    @staticmethod
    def _authenticate(attempt: IntakeAttempt, lookup: IntakeLookup) -> None:
        if not attempt.upstream and lookup.acting is None:
            raise AuthError("system unknown or not active", system_id=attempt.system_id)

    @staticmethod
    def _authorise_sender(attempt: IntakeAttempt, sender: str, lookup: IntakeLookup) -> AgencyRecord:
        if not attempt.upstream and not _may_send_as(lookup, sender):
            raise AccessError(
                f"system {attempt.system_id} may not act for {sender}", system_id=attempt.system_id, organ_id=sender
            )
        agency = lookup.agencies.get(sender)
        if agency is None or not agency.active:
            raise AccessError(f"the sending agency {sender} is not registered or not active", organ_id=sender)
        if attempt.upstream and agency.channel != attempt.channel:
            where = f"on channel {agency.channel}" if agency.channel in AXIS_CHANNELS else "hosted by this gateway"
            raise AccessError(
                f"the {attempt.channel} axis may act only for agencies reached through it (channel "
                f"{attempt.channel}); {sender} is {where}",
                system_id=attempt.system_id,
                organ_id=sender,
            )
        return agency

    def _route(self, attempt: IntakeAttempt, pkg: Package, lookup: IntakeLookup) -> Recipients:
        if isinstance(pkg, EdocPackage):
            return edoc_recipients(
                pkg,
                lookup.agencies,
                upstream_configured=self._upstream_configured,
                polled=attempt.upstream,
                for_recipient=attempt.for_recipient,
            )
        if attempt.for_recipient is not None and not hosted_here(lookup.agencies.get(attempt.for_recipient)):
            raise RouteError(
                f"the axis holds this status for {attempt.for_recipient}, which this gateway does not host",
                recipients=[attempt.for_recipient],
            )
        return Recipients((), lookup.agencies)

    def _persist(
        self,
        attempt: IntakeAttempt,
        data: bytes,
        document: DocumentRecord,
        plan: Plan,
        recipients: Recipients,
        signer: SignerCertificate | None,
    ) -> Receipt:
        """The one transaction of Intake 7, then the receipt; a taken idempotency key (a retry the lookup did not
        read, or a lost race) answers the holder's receipt as a duplicate (or ``EDXML.DUPLICATE``)."""
        now = document.received_at
        status = replace(plan.status, status_doc_id=document.doc_id) if plan.status is not None else None
        if recipients.new_upstream:
            # Registered only now that every check passed (what `agencies sync-vdxp` would have created).
            self.store.registry.upsert_agencies(list(recipients.new_upstream), now=now)
        audit = accepted(attempt, document, plan)
        try:
            self.store.documents.insert_document(
                NewDocument(
                    document=document, raw=data, recipients=plan.recipients, audit=audit, status=status, signer=signer
                )
            )
        except IdempotencyConflict as conflict:
            return self._duplicate(attempt, conflict.winner, now)
        return self._receipt(document, duplicate=False)

    def _duplicate(self, attempt: IntakeAttempt, existing: DocumentRecord, now: datetime) -> Receipt:
        if existing.sha256 != attempt.sha256:
            raise DuplicateError(
                f"a different package with the same key ({existing.kind} {existing.document_id} from "
                f"{existing.sender}) was already received at {existing.received_at.isoformat()}",
                doc_id=existing.doc_id,
            )
        self.store.audit.add(
            AuditEntry(
                at=now,
                action="intake.duplicate",
                system_id=attempt.system_id,
                doc_id=existing.doc_id,
                organ_id=existing.sender,
                detail={"sha256": attempt.sha256, **attempt.audit_detail()},
            )
        )
        return self._receipt(existing, duplicate=True)

    def _receipt(self, doc: DocumentRecord, *, duplicate: bool) -> Receipt:
        kind = PackageKind(doc.kind)
        return Receipt(
            doc_id=doc.doc_id,
            kind=kind,
            document_id=doc.document_id,
            sha256=doc.sha256,
            received_at=doc.received_at,
            duplicate=duplicate,
            signed_receipt=build_receipt(
                self._key,
                doc_id=doc.doc_id,
                kind=kind,
                document_id=doc.document_id,
                sha256=doc.sha256,
                received_at=doc.received_at,
            ),
        )

    def _audit_refusal(self, attempt: IntakeAttempt, exc: GatewayError, now: datetime) -> None:
        with contextlib.suppress(UnavailableError):  # the refusal itself is what the caller must see
            self.store.audit.add(refused(attempt, exc, now))


# ================================================================================================ helpers


def _may_send_as(lookup: IntakeLookup, sender: str) -> bool:
    """The system may send as ``sender``: a legacy system under its ``legacy_scope`` whatever edge it came through
    (its token is also its Basic / WS-Security secret), every other system under :func:`acts_for`."""
    if lookup.legacy is not None:
        own, scope = lookup.legacy
        return legacy_acts_for(scope, own, lookup.acting or (), sender)
    return acts_for(lookup.acting or (), sender)


def _as_expected(validated: ValidatedPackage, expected: PackageKind | None, declared_sender: str | None) -> None:
    """The kind the edge expects, and the sender a transport names outside the package, match the package."""
    if expected is not None and validated.kind is not expected:
        raise EdxmlStructureError(
            f"expected an {expected.value} package, got a {validated.kind.value} package",
            expected=expected.value,
            kind=validated.kind.value,
        )
    sender = validated.package.sender
    if declared_sender is not None and declared_sender != sender:
        # VDXP sendEdoc names the sender in a signed header (edxml.md §11.1 ``from``): both must agree.
        raise RequestError(
            f"the declared sender {declared_sender} differs from the package's From/OrganId {sender}",
            declared_sender=declared_sender,
            organ_id=sender,
        )


__all__ = ["Intake"]
