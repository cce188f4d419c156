"""Certificate watch (issue 9 item 8): the signer certificates each agency signs with, when they expire, whether
today's CRLs revoke them, and how much of each agency's traffic is validly signed (Circular 01/2019 asks for
signed e-documents; the Bkav axis never measured it).

Certificates are recorded by intake for every VALID signature (:mod:`gateway.db.certificates`); this module only
reads them. Revocation is checked again on every call against the CRL files as they are NOW on disk
(``crl_files``, re-read each time: operators replace them by cron), with :func:`gateway.xmlcheck.trust.crl_status`.

A certificate is *renewed* when the same agency has since signed with a certificate that expires later: its
expiry is then nobody's problem, and its ``cert_expiry`` alert resolves. Alerts (:meth:`CertWatch.alert_items`):

* ``cert_expiry`` — not renewed, and expiring within ``cert_expiry_days`` (state ``expiring``), or expired less
  than ``cert_expiry_days`` ago (state ``expired``: the agency can no longer sign validly);
* ``cert_revoked`` — listed in a current CRL while not yet expired.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from gateway.config import Settings
from gateway.db import SignerCertificate, Store
from gateway.errors import GatewayError
from gateway.services.alert_items import CERT_EXPIRY, CERT_REVOKED, AlertItem
from gateway.tracking.calendar import show
from gateway.xmlcheck.trust import TrustStore, crl_status

log = logging.getLogger(__name__)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CertStatus:
    """A recorded certificate judged at ``as_of``."""

    cert: SignerCertificate
    as_of: datetime
    #: ``good``, ``revoked`` or ``unknown`` (no trust store, no fresh CRL of its issuer, unreadable DER).
    revocation: str
    revoked_at: datetime | None
    renewed: bool

    @property
    def days_left(self) -> int | None:
        """Whole days until expiry (negative once expired)."""
        if self.cert.not_after is None:
            return None
        return (self.cert.not_after - self.as_of) // _DAY

    def to_dict(self) -> dict[str, Any]:
        c = self.cert
        return {
            "organ_id": c.organ_id,
            "fingerprint": c.fingerprint,
            "subject": c.subject,
            "issuer": c.issuer,
            "serial": c.serial,
            "not_before": c.not_before.isoformat() if c.not_before else None,
            "not_after": c.not_after.isoformat() if c.not_after else None,
            "days_left": self.days_left,
            "revocation": self.revocation,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "renewed": self.renewed,
            "first_seen_at": c.first_seen_at.isoformat(),
            "last_seen_at": c.last_seen_at.isoformat(),
        }


@dataclass(frozen=True)
class SignedShare:
    """An agency's documents sent in a period, and how many carried a valid signature."""

    organ_id: str
    documents: int
    valid: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.valid / self.documents, 2) if self.documents else None

    def to_dict(self) -> dict[str, Any]:
        return {"organ_id": self.organ_id, "documents": self.documents, "valid": self.valid, "percent": self.percent}


class CertWatch:
    """The watch over one store; ``trust`` loads today's trust store (None when none is configured)."""

    def __init__(
        self,
        store: Store,
        trust: Callable[[], TrustStore | None],
        *,
        expiry_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._trust = trust
        self.expiry_days = expiry_days
        self.clock = clock

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **kw: Any) -> CertWatch:
        return cls(store, lambda: load_trust(settings), expiry_days=settings.cert_expiry_days, **kw)

    def certificates(self, *, days: int | None = None, as_of: datetime | None = None) -> list[CertStatus]:
        """Every recorded certificate (``days``: only those not renewed that expire within ``days``, or are
        revoked), by agency, latest expiry first."""
        as_of = as_of or self.clock()
        trust = self._trust()
        certs = self.store.certificates.list()
        latest: dict[str, datetime] = {}
        for c in certs:
            if c.not_after is not None and c.not_after > latest.get(c.organ_id, c.not_after - _DAY):
                latest[c.organ_id] = c.not_after
        out = []
        for c in certs:
            revocation, revoked_at = _revocation(c, trust, as_of)
            renewed = c.not_after is not None and latest.get(c.organ_id, c.not_after) > c.not_after
            status = CertStatus(c, as_of, revocation, revoked_at, renewed)
            if days is None or revocation == "revoked" or (not renewed and _within(status, days)):
                out.append(status)
        return out

    def signed_shares(self, since: datetime, until: datetime) -> list[SignedShare]:
        """Per sending agency, its edocs taken in during [since, until) and how many were validly signed."""
        total: Counter[str] = Counter()
        valid: Counter[str] = Counter()
        for doc in self.store.tracking.documents(since, until):
            total[doc.sender] += 1
            valid[doc.sender] += doc.signature_state == "valid"
        return [SignedShare(organ, total[organ], valid[organ]) for organ in sorted(total)]

    def alert_items(self, rules: set[str], as_of: datetime) -> list[AlertItem]:
        """The open ``cert_expiry`` / ``cert_revoked`` conditions (module docstring)."""
        if not rules & {CERT_EXPIRY, CERT_REVOKED}:
            return []
        window = timedelta(days=self.expiry_days)
        items = []
        for s in self.certificates(as_of=as_of):
            end = s.cert.not_after
            alive = end is None or end > as_of
            if CERT_REVOKED in rules and s.revocation == "revoked" and alive:
                items.append(
                    _item(CERT_REVOKED, s, "revoked", f"thu hồi lúc {show(s.revoked_at)} (revoked)", s.revoked_at)
                )
            if CERT_EXPIRY not in rules or s.renewed or end is None:
                continue
            if alive and end - as_of <= window:
                why = f"còn {s.days_left} ngày, hết hạn {show(end)} (expires in {s.days_left} d)"
                items.append(_item(CERT_EXPIRY, s, "expiring", why, end - window))
            elif not alive and as_of - end <= window:
                items.append(_item(CERT_EXPIRY, s, "expired", f"đã hết hạn {show(end)} (expired)", end))
        return items


def load_trust(settings: Settings) -> TrustStore | None:
    """Today's trust anchors and CRL files, or None (none configured, or unreadable: logged, revocation unknown)."""
    if settings.trust_store is None:
        return None
    try:
        return TrustStore.from_files(settings.trust_store, settings.crl_files)
    except (GatewayError, OSError, ValueError) as exc:
        log.warning("certificate watch: trust store or CRL files unreadable (%s); revocation unknown", exc)
        return None


def _revocation(c: SignerCertificate, trust: TrustStore | None, as_of: datetime) -> tuple[str, datetime | None]:
    if trust is None or c.der is None:
        return "unknown", None
    try:
        cert = x509.load_der_x509_certificate(c.der)
    except ValueError:
        return "unknown", None
    return crl_status(cert, trust, as_of)


def _within(status: CertStatus, days: int) -> bool:
    left = status.days_left
    return left is not None and left < days


def _item(rule: str, s: CertStatus, state: str, why: str, since: datetime | None) -> AlertItem:
    c = s.cert
    return AlertItem(
        rule=rule,
        subject_key=f"cert:{c.organ_id}:{c.fingerprint}"[:200],
        state_key=state,
        organ_id=c.organ_id,
        reason=f"{why}; serial {c.serial}",
        since=min(since or s.as_of, s.as_of),
        deadline=c.not_after,
        sender=c.organ_id,
        subject=f"{c.subject} (issuer {c.issuer})",
    )


__all__ = ["CertStatus", "CertWatch", "SignedShare", "load_trust"]
