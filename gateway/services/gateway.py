"""The gateway's use cases: :class:`GatewayService` implements :class:`gateway.services.api.GatewayApi`.

Intake (gateway.md "Intake" 1–8), in this order, every step able to refuse with a stable code:

1. safe parse, classify, XSD, tolerant read, business checks — :func:`gateway.validation.validate_package`
   (size limit first; the package is parsed ONCE, and that tree is reused by the signature check);
2. the authenticated system must act for ``From/OrganId`` (its agencies and their level-2/3/4 children,
   :meth:`OrganId.is_within`; other identifiers match exactly) and the sender must be registered and active;
3. every ``To`` must be a registered, active agency (``ROUTE.UNKNOWN_RECIPIENT``). Forwarding unknown
   recipients to an upstream VDXP axis is issue 4; until then they are refused;
4. the SENDING agency's signature policy: ``require`` (an xmldsig signature that verifies, chains to the
   trust store, passes CRL checks, and whose signer certificate is bound to the agency — a fingerprint in
   ``agency_certificates``, or when none is bound, the agency's OrganId in the certificate subject),
   ``verify-if-present`` (the same checks whenever a real xmldsig signature is present; the legacy
   placeholder of the official samples counts as unsigned) or ``off``. After verification only the content
   the signature covers (``SignatureCheck.signed_root``) is read, and its routing fields must equal those the
   access checks used;
5. idempotency (Intake 6): see :func:`idempotency_key`. The same key and the same bytes answer the original
   receipt and store nothing; the same key and other bytes → ``EDXML.DUPLICATE``. Concurrent identical
   submissions collide on the UNIQUE key and the loser answers as a duplicate;
6. linking and routing: an update/revoke/replace must name a document of the same sender that the gateway
   knows (``related_doc_id``); a status must concern a known document (``NOT_FOUND`` otherwise — a status that
   overtakes its document, edxml.md §13, is refused for now; a parked-status queue would be the improvement);
7. ONE transaction: raw bytes + metadata, one delivery per recipient (an outbox row for push channels), the
   status-history row for a status package, the audit entry;
8. a receipt signed with the gateway key.

Packages polled from the upstream VDXP axis (:meth:`GatewayService.ingest_upstream`) take the same steps under the
internal identity :data:`UPSTREAM_SYSTEM`, which acts only for agencies on the ``vdxp`` channel; their documents get
deliveries only for the recipients hosted here, and their statuses must go to an agency hosted here (nothing polled
goes back up). Their audit rows carry the source and the upstream's item id.

Every refusal writes one ``intake.refused`` audit row (code, system, sending agency, digest and size — never
the body) in its own transaction and stores nothing else.

Status routing (edxml.md §5.1): 01–06/15/16 come from a RECIPIENT of the document (``ResponseFor/OrganId`` =
the document's sender) and are delivered to the sender; 13 (recall request) comes from the SENDER and names the
receiver in ``ResponseFor/OrganId``, and is delivered to that receiver, who answers 15/16. History is kept per
(document, recipient) and never forced monotonic: a status ranked below the highest already recorded for the
pair (01 < 02 < 03 < 04 < 05 < 06; 13/15/16 unranked) is stored with ``out_of_order``.

Access to deliveries: a system sees the mailbox of an agency it acts for. A delivery id that does not exist
and a delivery id of an agency the system does not act for get the same ``NOT_FOUND`` (no existence oracle).
A VDXP client authenticates as a system, not as an agency, so :meth:`GatewayService.pending_for_system` and
:meth:`GatewayService.sent_list` cover every agency the system acts for at once (``gateway.db.queries_vdxp``),
under the same ``acts_for`` rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, TypeVar
from uuid import uuid4

from lxml import etree

from gateway.config import Settings
from gateway.db import (
    AgencyRecord,
    AuditEntry,
    DocumentRecord,
    Engine,
    IdempotencyConflict,
    NewDocument,
    StatusRecord,
    Store,
    create_engine,
    head_revision,
)
from gateway.db.queries_vdxp import VdxpQueries
from gateway.edxml import (
    BussinessDocType,
    EdocPackage,
    Organization,
    Package,
    PackageKind,
    ResponseFor,
    StatusCode,
    StatusPackage,
    read_tree,
    render,
)
from gateway.edxml.dates import VN_TZ, format_timestamp
from gateway.edxml.organ import OrganId
from gateway.errors import (
    AccessError,
    AuthError,
    DuplicateError,
    EdxmlStructureError,
    GatewayError,
    NotFoundError,
    RequestError,
    RouteError,
    SignatureError,
    UnavailableError,
)
from gateway.services.api import (
    AckOutcome,
    AgencyInfo,
    DeliveryState,
    DocumentView,
    PendingItem,
    Receipt,
    RecipientView,
    SentItem,
    StatusEntry,
)
from gateway.services.auth import Authenticator
from gateway.services.receipt import build_receipt
from gateway.services.registry import Registry
from gateway.validation import validate_package
from gateway.xmlcheck.signature import (
    SignatureCheck,
    SignatureState,
    VerifyPolicy,
    inspect_signature,
    verify_package,
)
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

#: Rank of the receiver-side processing statuses, for the out-of-order flag (gateway.md "Status feedback").
STATUS_RANK: dict[StatusCode, int] = {
    StatusCode.ARRIVED: 1,
    StatusCode.REJECTED: 2,
    StatusCode.ACCEPTED: 3,
    StatusCode.ASSIGNED: 4,
    StatusCode.IN_PROGRESS: 5,
    StatusCode.DONE: 6,
}
MAX_PENDING = 1000
#: Most (document, recipient) rows one sent-list answer carries.
MAX_SENT = 5000
_MAX_REASON = 2000
_MAX_WARNINGS_KEPT = 20
_PUSH = frozenset({"soap", "rest", "vdxp"})
#: The acting identity of packages polled from the upstream axis (:meth:`GatewayService.ingest_upstream`), in
#: ``submitted_by`` and the audit log. No registered system can carry it (a system id starts with a letter or a
#: digit), so no client can borrow the upstream's rights.
UPSTREAM_SYSTEM = "@upstream"
#: The channel of the agencies reached through the upstream axis: the only senders the upstream may act for.
UPSTREAM_CHANNEL = "vdxp"
T = TypeVar("T")
_EMITTED_01_DESCRIPTION = "Đã đến - cổng trục phát thay đơn vị nhận khi hệ thống của đơn vị xác nhận đã nhận văn bản"
_RELATED_WHAT = {
    BussinessDocType.REVOKE: "revocation",
    BussinessDocType.UPDATE: "update",
    BussinessDocType.REPLACE: "replacement",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


@lru_cache(maxsize=4096)
def _organ(value: str) -> OrganId | None:
    return OrganId(value) if OrganId.is_valid(value) else None


def acts_for(acting: Sequence[str], organ_id: str) -> bool:
    """True if a system acting for ``acting`` may act for ``organ_id`` (itself or a level-2/3/4 descendant)."""
    if organ_id in acting:
        return True
    organ = _organ(organ_id)
    if organ is None or not organ.is_qcvn:
        return False
    for a in acting:
        ancestor = _organ(a)
        if ancestor is not None and organ.is_within(ancestor):
            return True
    return False


@dataclass
class _Attempt:
    """What is known about a submission so far: the refusal audit row is written from it."""

    system_id: str
    sha256: str
    size: int
    sender: str | None = None
    kind: str | None = None
    document_id: str | None = None
    #: Set for a package polled from the upstream axis (:meth:`GatewayService.ingest_upstream`): where from.
    source: str | None = None
    #: The upstream's id of the polled item, and the agency it holds the item for (when it says).
    reference: str | None = None
    for_recipient: str | None = None

    @property
    def upstream(self) -> bool:
        return self.source is not None

    def audit_detail(self) -> dict[str, str]:
        """What marks an upstream package's audit rows: its source, the upstream's item id and recipient."""
        if self.source is None:
            return {}
        detail = {"source": self.source[:200]}
        if self.reference:
            detail["peer_reference"] = self.reference[:100]
        if self.for_recipient:
            detail["for_recipient"] = self.for_recipient[:35]
        return detail


@dataclass(frozen=True)
class _Plan:
    """The routing outcome of a package: who gets a delivery, what it is linked to, the history row."""

    recipients: tuple[tuple[str, bool], ...]
    related_doc_id: str | None = None
    status: StatusRecord | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class GatewayService:
    """The one implementation of :class:`gateway.services.api.GatewayApi` (thread-safe; one per process)."""

    def __init__(
        self,
        engine: Engine,
        signing_key: SigningKey,
        trust: TrustStore,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store = Store(engine)
        self._key = signing_key
        self._trust = trust
        self._clock = clock or _utcnow
        self.auth = Authenticator(self.store, settings, self._clock)
        self.queries = VdxpQueries(engine)
        self.registry = Registry(self.store, settings, clock=self._clock)
        upstream = settings.extra.get("vdxp")
        #: An upstream national axis is configured: unknown recipients are forwarded to it (gateway.md Routing).
        self._upstream_configured = isinstance(upstream, Mapping) and bool(upstream.get("endpoint"))

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> GatewayService:
        """Load the gateway key, the trust store and the engine ONCE (composition root of the service).

        The gateway certificate file may carry its chain after the certificate (SigningKey.from_files).
        """
        settings.require_service()
        assert settings.gateway_key is not None and settings.gateway_cert is not None
        assert settings.trust_store is not None
        key = SigningKey.from_files(settings.gateway_key, settings.gateway_cert)
        trust = TrustStore.from_files(settings.trust_store, settings.crl_files)
        engine = create_engine(settings)
        service = cls(engine, key, trust, settings, clock=clock)
        weakref.finalize(service, engine.dispose)  # no connection left open if close() is forgotten
        return service

    def close(self) -> None:
        """Release the connection pool (tests, orderly shutdown)."""
        self.store.engine.dispose()

    def __enter__(self) -> GatewayService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def readiness(self) -> dict[str, bool]:
        """For ``/readyz``: the database answers and its schema is the one this code expects."""
        database = self.store.ping()
        return {"database": database, "schema": database and self.store.schema_revision() == head_revision()}

    # ================================================================================= authentication

    def authenticate_basic(self, username: str, password: str) -> str:
        return self.auth.basic(username, password)

    def authenticate_digest(self, username: str, digest_b64: str, nonce_b64: str, created: str) -> str:
        return self.auth.digest(username, digest_b64, nonce_b64, created)

    def authenticate_hmac(self, system_id: str, verify: Callable[[str], T]) -> T:
        return self.auth.hmac_request(system_id, verify)

    def system_secret(self, system_id: str) -> str:
        return self.auth.secret_for(system_id)

    # ================================================================================= intake

    def submit(
        self, system_id: str, data: bytes, expected: PackageKind | None = None, *, declared_sender: str | None = None
    ) -> Receipt:
        attempt = _Attempt(system_id=system_id, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        return self._intake(attempt, data, expected, declared_sender)

    def ingest_upstream(
        self, data: bytes, *, source: str, reference: str | None = None, recipient: str | None = None
    ) -> Receipt:
        """Take in a package polled from the upstream VDXP axis (the worker's poller, issue 4 "two gateways").

        Its ``From`` is an agency reached through the upstream, for which no local system acts; so it enters the
        SAME pipeline as :meth:`submit` under the internal identity :data:`UPSTREAM_SYSTEM`, which may act only
        for registered agencies on the :data:`UPSTREAM_CHANNEL` channel — never for a local one (a forged package
        from the upstream cannot speak for our own agencies). The sending agency's signature policy applies as
        registered. Routing differs in one way: the upstream delivers to the recipients it hosts itself, so only
        the ``To`` hosted HERE (registered on another channel) get a delivery, and unknown ones are left to it —
        nothing polled goes back up, which would loop. ``recipient`` (the agency the upstream holds the item for)
        must be one of ours, or the item is refused rather than acknowledged and dropped. Idempotent like
        :meth:`submit`: polling the same package again answers a duplicate receipt. Audit rows carry ``source``
        and ``reference`` (the upstream's item id).
        """
        attempt = _Attempt(
            system_id=UPSTREAM_SYSTEM,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            source=source,
            reference=reference,
            for_recipient=recipient,
        )
        return self._intake(attempt, data, None, None)

    def _intake(
        self, attempt: _Attempt, data: bytes, expected: PackageKind | None, declared_sender: str | None
    ) -> Receipt:
        """The one intake pipeline (module docstring), with its refusal audit row."""
        now = self._clock()
        try:
            return self._submit(attempt, data, expected, now, declared_sender)
        except UnavailableError:
            raise
        except GatewayError as exc:
            self._audit_refusal(attempt, exc, now)
            raise

    def _submit(
        self,
        attempt: _Attempt,
        data: bytes,
        expected: PackageKind | None,
        now: datetime,
        declared_sender: str | None = None,
    ) -> Receipt:
        validated = validate_package(
            data, max_bytes=self.settings.max_package_bytes, today=now.astimezone(VN_TZ).date()
        )
        pkg = validated.package
        attempt.kind, attempt.sender, attempt.document_id = validated.kind.value, pkg.sender, pkg.document_id
        if expected is not None and validated.kind is not expected:
            raise EdxmlStructureError(
                f"expected an {expected.value} package, got a {validated.kind.value} package",
                expected=expected.value,
                kind=validated.kind.value,
            )
        sender = pkg.sender
        if declared_sender is not None and declared_sender != sender:
            # VDXP sendEdoc names the sender in a signed header (edxml.md §11.1 ``from``): both must agree.
            raise RequestError(
                f"the declared sender {declared_sender} differs from the package's From/OrganId {sender}",
                declared_sender=declared_sender,
                organ_id=sender,
            )
        key = idempotency_key(pkg)
        named = {sender, *pkg.recipients} if isinstance(pkg, EdocPackage) else {sender}
        if attempt.for_recipient:
            named.add(attempt.for_recipient)
        # One round trip for every read the decisions below need (acting-for, agencies, idempotency).
        lookup = self.store.intake_lookup(attempt.system_id, named, key)
        if not attempt.upstream:
            if lookup.acting is None:
                raise AuthError("system unknown or not active", system_id=attempt.system_id)
            if not acts_for(lookup.acting, sender):
                raise AccessError(
                    f"system {attempt.system_id} may not act for {sender}",
                    system_id=attempt.system_id,
                    organ_id=sender,
                )
        agencies = lookup.agencies
        sender_agency = agencies.get(sender)
        if sender_agency is None or not sender_agency.active:
            raise AccessError(f"the sending agency {sender} is not registered or not active", organ_id=sender)
        if attempt.upstream and sender_agency.channel != UPSTREAM_CHANNEL:
            raise AccessError(
                f"the upstream axis may act only for agencies reached through it (channel {UPSTREAM_CHANNEL}); "
                f"{sender} is hosted by this gateway",
                system_id=attempt.system_id,
                organ_id=sender,
            )
        deliver_to: tuple[str, ...] = ()
        new_upstream: dict[str, AgencyRecord] = {}
        if isinstance(pkg, EdocPackage):
            if attempt.upstream:
                deliver_to = _upstream_targets(pkg.recipients, agencies, attempt.for_recipient)
            else:
                unknown = [r for r in pkg.recipients if r not in agencies or not agencies[r].active]
                # gateway.md Routing: unknown locally and an upstream VDXP configured → forward upstream.
                # Inactive agencies are known and stay refused; unknown ones become upstream agencies.
                if unknown and self._upstream_configured and all(r not in agencies for r in unknown):
                    names = {o.organ_id: o.organ_name for o in pkg.message_header.to}
                    for r in unknown:
                        new_upstream[r] = AgencyRecord(r, names.get(r) or r, channel=UPSTREAM_CHANNEL)
                    agencies = {**agencies, **new_upstream}
                elif unknown:
                    raise RouteError(f"unknown or inactive recipient(s): {', '.join(unknown)}", recipients=unknown)
                deliver_to = pkg.recipients
        elif attempt.for_recipient is not None and not _hosted_here(agencies.get(attempt.for_recipient)):
            raise RouteError(
                f"the upstream holds this status for {attempt.for_recipient}, which this gateway does not host",
                recipients=[attempt.for_recipient],
            )

        check = self._check_signature(validated.tree, sender_agency, now)
        if check.signed_root is not None:
            signed = read_tree(check.signed_root)
            if _routing(signed) != _routing(pkg):
                raise SignatureError(
                    "the signed content differs from the content checked for routing", reason="wrapping"
                )
            pkg = signed  # from here on only what the signature covers; its key fields equal the checked ones

        if lookup.existing is not None:
            return self._duplicate(attempt, lookup.existing, now)

        if isinstance(pkg, EdocPackage):
            plan = self._plan_edoc(pkg, agencies, deliver_to)
        else:
            plan = self._plan_status(pkg, now, upstream=attempt.upstream)
            status_to = plan.recipients[0][0]
            if attempt.for_recipient is not None and attempt.for_recipient != status_to:
                raise RouteError(
                    f"the upstream holds this status for {attempt.for_recipient}, but it goes to {status_to}",
                    recipients=[attempt.for_recipient, status_to],
                )

        doc_id = uuid4().hex
        document = DocumentRecord(
            doc_id=doc_id,
            kind=pkg.kind.value,
            sender=sender,
            document_id=pkg.document_id,
            sha256=attempt.sha256,
            size=attempt.size,
            received_at=now,
            signature_state=check.state.value,
            idem_key=key,
            bussiness_doc_type=pkg.bussiness_doc_type.value if isinstance(pkg, EdocPackage) else None,
            status_code=pkg.status_code.value if isinstance(pkg, StatusPackage) else None,
            related_doc_id=plan.related_doc_id,
            submitted_by=attempt.system_id,
            signer_subject=check.signer_subject,
            signer_fingerprint=check.signer_fingerprint,
            subject=pkg.message_header.subject if isinstance(pkg, EdocPackage) else pkg.description,
            code=str(pkg.message_header.code) if isinstance(pkg, EdocPackage) else pkg.response_for.code,
            meta={**plan.meta, **_signature_meta(check), **_warnings_meta(validated.report.warnings)},
        )
        status = None
        if plan.status is not None:
            status = replace(plan.status, status_doc_id=doc_id)
        audit = AuditEntry(
            at=now,
            action="intake.accepted",
            system_id=attempt.system_id,
            doc_id=doc_id,
            organ_id=sender,
            detail={
                "kind": document.kind,
                "document_id": document.document_id,
                "sha256": attempt.sha256,
                "size": attempt.size,
                "signature": check.state.value,
                "recipients": [r for r, _push in plan.recipients],
                **attempt.audit_detail(),
            },
        )
        if new_upstream:
            # Registered only now that every check passed (what `agencies sync-vdxp` would have created).
            self.store.upsert_agencies(list(new_upstream.values()), now=now)
        try:
            self.store.insert_document(
                NewDocument(document=document, raw=data, recipients=plan.recipients, audit=audit, status=status)
            )
        except IdempotencyConflict:
            winner = self.store.document_by_idem_key(key)
            if winner is None:  # pragma: no cover - the store only raises after seeing the row
                raise UnavailableError("idempotency conflict without a stored document; retry") from None
            return self._duplicate(attempt, winner, now)
        return self._receipt(document, duplicate=False)

    def _acting_for(self, system_id: str) -> tuple[str, ...]:
        acting = self.store.active_system_agencies(system_id)
        if acting is None:
            raise AuthError("system unknown or not active", system_id=system_id)
        return acting

    def _check_signature(self, tree: etree._ElementTree, agency: AgencyRecord, now: datetime) -> SignatureCheck:
        """The sending agency's policy (Intake 5). Binding is enforced whenever a signature is verified."""
        state = inspect_signature(tree)
        if agency.signature_policy == "off" or (
            agency.signature_policy == "verify-if-present" and state is not SignatureState.PRESENT
        ):
            return SignatureCheck(state=state)
        policy = VerifyPolicy(
            allow_sha1=agency.allow_sha1,
            at=now,
            crl_soft_fail=self.settings.crl_soft_fail,
            require_signature=True,
        )
        check = verify_package(tree, self._trust, policy, max_bytes=self.settings.max_package_bytes)
        if agency.cert_fingerprints:
            bound = check.signer_fingerprint in agency.cert_fingerprints
        else:
            bound = check.is_bound_to(agency.organ_id)
        if not bound:
            raise SignatureError(
                f"the signer certificate ({check.signer_subject}) is not bound to the sending agency {agency.organ_id}",
                reason="not-bound",
                signer=check.signer_subject,
                fingerprint=check.signer_fingerprint,
            )
        return check

    def _plan_edoc(self, pkg: EdocPackage, agencies: dict[str, AgencyRecord], deliver_to: Sequence[str]) -> _Plan:
        h = pkg.message_header
        b = pkg.trace_header_list.bussiness
        kind = pkg.bussiness_doc_type
        meta: dict[str, Any] = {
            "promulgation_date": _iso(h.promulgation_info.promulgation_date),
            "type_name": h.document_type.type_name or None,
            "due_date": _iso(h.due_date),
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
            related = self._find_related(pkg.sender, targets, kind)
            meta["related_document_ids"] = targets
        recipients = tuple((r, agencies[r].channel in _PUSH) for r in deliver_to)
        return _Plan(recipients=recipients, related_doc_id=related, meta=meta)

    def _find_related(self, sender: str, targets: list[str], kind: BussinessDocType) -> str:
        """The original document a revoke/update/replace concerns: same sender, preferring a new (type 0)."""
        for target in targets:
            candidates = self.store.edocs_with_recipients(target, sender)
            if candidates:
                originals = [d for d, _ in candidates if d.bussiness_doc_type == BussinessDocType.NEW.value]
                return (originals or [candidates[0][0]])[0].doc_id
        what = _RELATED_WHAT[kind]
        raise NotFoundError(
            f"the {what} concerns document(s) {', '.join(targets) or '(none named)'} of {sender}, "
            "which the gateway does not know",
            document_ids=targets,
        )

    def _plan_status(self, pkg: StatusPackage, now: datetime, *, upstream: bool = False) -> _Plan:
        rf = pkg.response_for
        code = pkg.status_code
        if code.sent_by_sender:
            # 13: From = the document's sender, ResponseFor/OrganId = the receiver asked to give it back.
            candidates = self.store.edocs_with_recipients(pkg.document_id, pkg.sender)
            if not candidates:
                raise self._unknown_document(pkg)
            doc = next((d for d, recipients in candidates if rf.organ_id in recipients), None)
            if doc is None:
                raise RouteError(
                    f"recall (13) must name a receiver of {pkg.document_id} in ResponseFor/OrganId "
                    f"(got {rf.organ_id or 'nothing'})",
                    recipients=[rf.organ_id],
                )
            deliver_to = recipient = rf.organ_id
        else:
            candidates = self.store.edocs_with_recipients(pkg.document_id, rf.organ_id or None)
            if not candidates:
                raise self._unknown_document(pkg)
            doc = next((d for d, recipients in candidates if pkg.sender in recipients), None)
            if doc is None:
                raise AccessError(
                    f"{pkg.sender} is not a recipient of {pkg.document_id}; only recipients report its status",
                    organ_id=pkg.sender,
                )
            deliver_to, recipient = doc.sender, pkg.sender
        target = self.store.agencies([deliver_to]).get(deliver_to)
        if target is None:
            raise RouteError(f"the status recipient {deliver_to} is not registered", recipients=[deliver_to])
        if upstream and not _hosted_here(target):
            # The upstream routes statuses between the agencies it reaches itself: sending one back up would loop.
            raise RouteError(
                f"a status from the upstream axis for {deliver_to}, which this gateway does not host",
                recipients=[deliver_to],
            )
        rank = STATUS_RANK.get(code)
        out_of_order = False
        if rank is not None:
            seen = [STATUS_RANK.get(_status_code(c), 0) for c in self.store.status_codes(doc.doc_id, recipient)]
            out_of_order = bool(seen) and rank < max(seen)
        status = StatusRecord(
            doc_id=doc.doc_id,
            recipient=recipient,
            reporter=pkg.sender,
            status_code=code.value,
            received_at=now,
            description=pkg.description,
            timestamp=pkg.timestamp,
            out_of_order=out_of_order,
        )
        meta = {"response_for_organ_id": rf.organ_id, "timestamp": _iso(pkg.timestamp), "out_of_order": out_of_order}
        return _Plan(
            recipients=((deliver_to, target.channel in _PUSH),), related_doc_id=doc.doc_id, status=status, meta=meta
        )

    @staticmethod
    def _unknown_document(pkg: StatusPackage) -> NotFoundError:
        # edxml.md §13: a status may overtake its document; parking it for a retry is a possible improvement.
        return NotFoundError(
            f"status {pkg.status_code.value} concerns {pkg.document_id}, which the gateway does not know",
            document_id=pkg.document_id,
        )

    def _duplicate(self, attempt: _Attempt, existing: DocumentRecord, now: datetime) -> Receipt:
        if existing.sha256 != attempt.sha256:
            raise DuplicateError(
                f"a different package with the same key ({existing.kind} {existing.document_id} from "
                f"{existing.sender}) was already received at {existing.received_at.isoformat()}",
                doc_id=existing.doc_id,
            )
        self.store.audit(
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

    def _audit_refusal(self, attempt: _Attempt, exc: GatewayError, now: datetime) -> None:
        detail: dict[str, Any] = {
            "message": exc.message[:500],
            "sha256": attempt.sha256,
            "size": attempt.size,
        }
        for name in ("path", "kind", "document_id"):
            value = exc.path if name == "path" else getattr(attempt, name)
            if value:
                detail[name] = str(value)[:300]
        reason = exc.detail.get("reason")
        if isinstance(reason, str):
            detail["reason"] = reason
        detail.update(attempt.audit_detail())
        with contextlib.suppress(UnavailableError):  # the refusal itself is what the caller must see
            self.store.audit(
                AuditEntry(
                    at=now,
                    action="intake.refused",
                    outcome=exc.code,
                    system_id=attempt.system_id,
                    organ_id=attempt.sender[:35] if attempt.sender else None,
                    detail=detail,
                )
            )

    # ================================================================================= mailbox

    def pending(self, system_id: str, organ_id: str, kind: PackageKind, limit: int = 100) -> list[PendingItem]:
        acting = self._acting_for(system_id)
        if not acts_for(acting, organ_id):
            raise AccessError(f"system {system_id} may not read the mailbox of {organ_id}", organ_id=organ_id)
        rows = self.store.pending(organ_id, PackageKind(kind).value, max(1, min(limit, MAX_PENDING)))
        return [_pending_item(r) for r in rows]

    def pending_for_system(
        self,
        system_id: str,
        kind: PackageKind,
        limit: int = 100,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PendingItem]:
        """Every mailbox of the system at once: a VDXP client authenticates as a system, not as an agency."""
        acting = self._acting_for(system_id)
        rows = self.queries.mailbox(
            acting, PackageKind(kind).value, limit=max(1, min(limit, MAX_PENDING)), since=since, until=until
        )
        # The SQL scope may over-match (queries_vdxp docstring): every row is checked against the system again.
        return [_pending_item(r) for r in rows if acts_for(acting, r.recipient)]

    def delivery_state(self, system_id: str, delivery_id: str) -> DeliveryState:
        delivery, _doc = self._own_delivery(system_id, delivery_id)
        return DeliveryState(delivery.state)

    def sent_list(
        self,
        system_id: str,
        kind: PackageKind,
        *,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_SENT,
    ) -> list[SentItem]:
        """Documents whose sender the system acts for, like :meth:`document_view`'s sender side."""
        acting = self._acting_for(system_id)
        rows = self.queries.sent(
            acting,
            PackageKind(kind).value,
            doc_id=doc_id,
            since=since,
            until=until,
            limit=max(1, min(limit, MAX_SENT)),
        )
        return [
            SentItem(
                doc_id=r.doc_id,
                kind=PackageKind(r.kind),
                sender=r.sender,
                document_id=r.document_id,
                subject=r.subject,
                code=r.code,
                received_at=r.received_at,
                recipient=r.recipient,
                delivery_id=r.delivery_id,
                state=DeliveryState(r.state),
                fetched_at=r.fetched_at,
                acknowledged_at=r.acknowledged_at,
                ack_reason=r.ack_reason,
                status_code=_status_code(r.status_code) if r.status_code else None,
            )
            for r in rows
            if acts_for(acting, r.sender)
        ]

    def fetch(self, system_id: str, delivery_id: str) -> bytes:
        delivery, _doc = self._own_delivery(system_id, delivery_id)
        now = self._clock()
        raw = self.store.fetch(
            delivery_id,
            now,
            AuditEntry(
                at=now,
                action="delivery.fetch",
                system_id=system_id,
                doc_id=delivery.doc_id,
                organ_id=delivery.recipient,
                detail={"delivery_id": delivery_id},
            ),
        )
        if raw is None:  # pragma: no cover - deliveries are never deleted
            raise NotFoundError("no such delivery", delivery_id=delivery_id)
        return raw

    def acknowledge(self, system_id: str, delivery_id: str, outcome: AckOutcome, reason: str | None = None) -> None:
        delivery, doc = self._own_delivery(system_id, delivery_id)
        outcome = AckOutcome(outcome)
        now = self._clock()
        state = DeliveryState.DELIVERED if outcome is AckOutcome.DONE else DeliveryState.FAILED
        emit = None
        if outcome is AckOutcome.DONE and doc.kind == PackageKind.EDOC.value:
            parties = self.store.agencies([delivery.recipient, doc.sender])
            receiver = parties.get(delivery.recipient)
            if receiver is not None and receiver.emit_arrived_on_ack:
                emit = self._arrived_for(doc, receiver, parties.get(doc.sender), delivery_id, now)
        result = self.store.acknowledge(
            delivery_id,
            state=state.value,
            outcome=outcome.value,
            reason=reason[:_MAX_REASON] if reason else None,
            at=now,
            audit=AuditEntry(
                at=now,
                action="delivery.ack",
                outcome="ok",
                system_id=system_id,
                doc_id=delivery.doc_id,
                organ_id=delivery.recipient,
                detail={"delivery_id": delivery_id, "outcome": outcome.value},
            ),
            emit=emit,
        )
        if not result.changed and result.state != state.value:
            raise RequestError(
                f"delivery {delivery_id} is already {result.state}; it cannot become {state.value}",
                delivery_id=delivery_id,
                state=result.state,
            )

    def _own_delivery(self, system_id: str, delivery_id: str) -> tuple[Any, DocumentRecord]:
        acting = self._acting_for(system_id)
        found = self.store.delivery(delivery_id) if delivery_id else None
        if found is None or not acts_for(acting, found[0].recipient):
            raise NotFoundError("no such delivery in the mailboxes of this system", delivery_id=delivery_id)
        return found

    def _arrived_for(
        self,
        doc: DocumentRecord,
        receiver: AgencyRecord,
        sender: AgencyRecord | None,
        delivery_id: str,
        now: datetime,
    ) -> NewDocument:
        """Status 01 "Đã đến" from the receiver to the sender, built and rendered by the gateway."""
        local = now.astimezone(VN_TZ).replace(tzinfo=None, microsecond=0)
        promulgation = doc.meta.get("promulgation_date")
        pkg = StatusPackage(
            from_=Organization(organ_id=receiver.organ_id, organ_name=receiver.name),
            response_for=ResponseFor(
                organ_id=doc.sender,
                code=doc.code or "",
                promulgation_date=date.fromisoformat(promulgation) if promulgation else None,
                document_id=doc.document_id,
            ),
            status_code=StatusCode.ARRIVED,
            timestamp=local,
            description=_EMITTED_01_DESCRIPTION,
        )
        raw = render(pkg)
        doc_id = uuid4().hex
        # One emitted 01 per delivery: the key cannot collide with a package the receiver sends itself.
        key = hashlib.sha256(f"emitted-01\x1f{delivery_id}".encode()).hexdigest()
        document = DocumentRecord(
            doc_id=doc_id,
            kind=PackageKind.STATUS.value,
            sender=receiver.organ_id,
            document_id=doc.document_id,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            received_at=now,
            signature_state=SignatureState.UNSIGNED.value,
            idem_key=key,
            status_code=StatusCode.ARRIVED.value,
            related_doc_id=doc.doc_id,
            submitted_by=None,
            emitted_by_gateway=True,
            subject=_EMITTED_01_DESCRIPTION,
            code=doc.code,
            meta={"response_for_organ_id": doc.sender, "timestamp": local.isoformat(), "out_of_order": False},
        )
        status = StatusRecord(
            doc_id=doc.doc_id,
            recipient=receiver.organ_id,
            reporter=receiver.organ_id,
            status_code=StatusCode.ARRIVED.value,
            received_at=now,
            description=_EMITTED_01_DESCRIPTION,
            timestamp=local,
            status_doc_id=doc_id,
            emitted_by_gateway=True,
        )
        push = sender is not None and sender.channel in _PUSH
        return NewDocument(
            document=document,
            raw=raw,
            recipients=((doc.sender, push),),
            audit=AuditEntry(
                at=now,
                action="status.emitted",
                doc_id=doc_id,
                organ_id=receiver.organ_id,
                detail={"status_code": "01", "about": doc.doc_id, "delivery_id": delivery_id},
            ),
            status=status,
        )

    # ================================================================================= views

    def document_view(
        self, system_id: str, *, document_id: str | None = None, doc_id: str | None = None
    ) -> DocumentView:
        acting = self._acting_for(system_id)
        if (document_id is None) == (doc_id is None):
            raise RequestError("give exactly one of document_id and doc_id")
        doc: DocumentRecord | None = None
        if doc_id is not None:
            doc = self.store.document(doc_id)
            if doc is not None and doc.kind == PackageKind.STATUS.value and doc.related_doc_id:
                doc = self.store.document(doc.related_doc_id)  # a status id shows the document it is about
            if doc is not None and not self._visible(acting, doc):
                doc = None
        else:
            assert document_id is not None
            for candidate, recipients in self.store.edocs_with_recipients(document_id):
                if acts_for(acting, candidate.sender) or any(acts_for(acting, r) for r in recipients):
                    doc = candidate
                    break
        if doc is None:
            raise NotFoundError("no such document visible to this system", document_id=document_id, doc_id=doc_id)
        sender_side = acts_for(acting, doc.sender)
        history = self.store.history(doc.doc_id)
        views = []
        for d in self.store.deliveries(doc.doc_id):
            if not sender_side and not acts_for(acting, d.recipient):
                continue
            views.append(
                RecipientView(
                    recipient=d.recipient,
                    delivery_id=d.delivery_id,
                    state=DeliveryState(d.state),
                    fetched_at=d.fetched_at,
                    acknowledged_at=d.acknowledged_at,
                    ack_reason=d.ack_reason,
                    statuses=tuple(_entry(h) for h in history if h.recipient == d.recipient),
                )
            )
        return DocumentView(
            doc_id=doc.doc_id,
            document_id=doc.document_id,
            sender=doc.sender,
            received_at=doc.received_at,
            recipients=tuple(views),
        )

    def _visible(self, acting: Sequence[str], doc: DocumentRecord) -> bool:
        if acts_for(acting, doc.sender):
            return True
        return any(acts_for(acting, d.recipient) for d in self.store.deliveries(doc.doc_id))

    def agencies(self, parent: str | None = None) -> list[AgencyInfo]:
        return [
            AgencyInfo(
                organ_id=a.organ_id, name=a.name, parent=a.parent, level=a.level, channel=a.channel, active=a.active
            )
            for a in self.store.list_agencies(parent)
        ]


# ================================================================================================ helpers


def _routing(pkg: Package) -> tuple[Any, ...]:
    """What the access, route and idempotency decisions were made on."""
    if isinstance(pkg, StatusPackage):
        rf = pkg.response_for
        return ("status", pkg.sender, rf.organ_id, rf.document_id, pkg.status_code, pkg.timestamp)
    return ("edoc", pkg.sender, pkg.recipients, pkg.document_id, pkg.bussiness_doc_type)


def _hosted_here(agency: AgencyRecord | None) -> bool:
    """A registered, active agency this gateway delivers to itself (any channel but the upstream's)."""
    return agency is not None and agency.active and agency.channel != UPSTREAM_CHANNEL


def _upstream_targets(
    recipients: Sequence[str], agencies: dict[str, AgencyRecord], for_recipient: str | None
) -> tuple[str, ...]:
    """The ``To`` of an upstream edoc that get a delivery here: those hosted here (see ``ingest_upstream``).

    A local recipient that is switched off refuses the package, as :meth:`GatewayService.submit` does; the
    others (unknown here, or reached through the upstream) are the upstream's to deliver.
    """
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


def _status_code(value: str) -> StatusCode | None:
    try:
        return StatusCode(value)
    except ValueError:
        return None


def _pending_item(r: Any) -> PendingItem:
    """A mailbox row (from the store or the VDXP queries) as the contract's value."""
    return PendingItem(
        delivery_id=r.delivery_id,
        doc_id=r.doc_id,
        kind=PackageKind(r.kind),
        sender=r.sender,
        recipient=r.recipient,
        document_id=r.document_id,
        received_at=r.received_at,
        size=r.size,
        state=DeliveryState(r.state),
        fetched_at=getattr(r, "fetched_at", None),
    )


def _entry(h: StatusRecord) -> StatusEntry:
    return StatusEntry(
        document_doc_id=h.doc_id,
        recipient=h.recipient,
        reporter=h.reporter,
        status_code=StatusCode(h.status_code),
        description=h.description,
        timestamp=h.timestamp,
        received_at=h.received_at,
        out_of_order=h.out_of_order,
        emitted_by_gateway=h.emitted_by_gateway,
    )


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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


__all__ = ["STATUS_RANK", "UPSTREAM_CHANNEL", "UPSTREAM_SYSTEM", "GatewayService", "acts_for", "idempotency_key"]
