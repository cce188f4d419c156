"""Alert rounds (issue 9 item 6): judge, raise, resolve, notify — quiet when nothing is new.

One round (:meth:`Alerts.run_round`):

1. **judge** — every delivery a timing rule is open for (:meth:`gateway.services.tracking.Tracking.open_judgements`,
   the one definition of "late") and every signer certificate expiring or revoked
   (:meth:`gateway.services.certwatch.CertWatch.alert_items`), for the rules in ``alert_rules``;
2. **resolve** — open alerts whose (rule, subject, state) is no longer judged open: the delivery was taken, the
   status came, the certificate was renewed — or the subject changed state, which raises a new alert in step 3;
3. **raise** — a new alert row for each open condition not raised before (``UNIQUE(rule, subject_key,
   state_key)``: one alert per delivery per rule per state, so a condition that persists is told once);
4. **notify** — the open alerts not yet notified: a digest to each concerned agency's ``contact_email``, a summary
   to ``alert_operator_emails``, one JSON POST to ``alert_webhook_url``. An alert is marked notified only when
   every message carrying it went out; a failed channel is logged (never a body or a secret) and its alerts are
   tried again next round (at least once: a channel that did take them may hear of them twice).

Unlike the Bkav axis's Telegram job (every 30 minutes, "all taken" or the whole untaken list again: legacy-edoc-vn.md
§14), a round with nothing new sends nothing.

**One round at a time, cluster-wide.** Every worker runs rounds (:mod:`gateway.worker.alerting`), and an operator
may run ``edoc-gateway alerts run`` beside them. Two guards, both in the database, so they hold across hosts:
raising is an ``INSERT … ON CONFLICT DO NOTHING`` on the UNIQUE key, so two concurrent rounds store each alert once
and resolving twice is harmless; and notifying — the only step that is not idempotent — runs under the round
lease (:meth:`gateway.db.alerts.AlertRepository.acquire_round`, a conditional UPDATE of one reserved row): a round
that cannot take it is skipped, and a lease whose holder died is taken over after ``lease_stale``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gateway.config import Settings
from gateway.db import AlertRecord, Store
from gateway.errors import ConfigError
from gateway.services.alert_items import ALERT_RULES, DELIVERY_RULES, AlertItem, delivery_item
from gateway.services.alert_messages import Entry, Mail, addresses, agency_digest, operator_summary, webhook_payload
from gateway.services.certwatch import CertWatch
from gateway.services.paging import Page, PageRequest, page_of
from gateway.services.tracking import Tracking
from gateway.tracking.settings import rules_from

log = logging.getLogger(__name__)
Key = tuple[str, str, str]


class NotifyError(Exception):
    """A channel did not take a message. Its text is logged: transports put no secret and no body in it."""


class MailTransport(Protocol):
    def send(self, mails: Sequence[Mail]) -> list[str | None]:
        """Send each mail; the error text of each one that failed, None for each one sent."""


class WebhookTransport(Protocol):
    def post(self, payload: Mapping[str, Any]) -> None:
        """POST the JSON document; :class:`NotifyError` when the receiver did not take it."""


@dataclass
class RoundResult:
    """What a round did (logged; ``alerts run --once`` prints it)."""

    skipped: bool = False
    open: int = 0
    raised: int = 0
    resolved: int = 0
    notified: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


#: The name the cursors of the alert list carry (gateway.services.paging).
ALERT_LISTING = "alerts"


def recent_alerts(store: Store, since: datetime, page: PageRequest | None = None) -> Page[AlertRecord]:
    """One page of the alerts raised since ``since`` or still open, newest first (``alerts list``)."""
    page = page or PageRequest()
    found = store.alerts.recent_page(since, after=page.after(ALERT_LISTING, 2), offset=page.offset, limit=page.limit)
    return page_of(ALERT_LISTING, found, lambda a: a)


def alert_rules(settings: Settings) -> tuple[str, ...]:
    """``alert_rules``, refused (``CONFIG.INVALID``) when it names an unknown rule."""
    unknown = sorted(set(settings.alert_rules) - set(ALERT_RULES))
    if unknown:
        raise ConfigError(f"alert_rules: unknown rule(s) {', '.join(unknown)} (known: {', '.join(ALERT_RULES)})")
    return settings.alert_rules


class Alerts:
    """Alert rounds over one store (module docstring). Channels left None are not configured."""

    def __init__(
        self,
        store: Store,
        tracking: Tracking,
        certwatch: CertWatch,
        *,
        rules: Sequence[str],
        mail: MailTransport | None = None,
        operator_emails: Sequence[str] = (),
        webhook: WebhookTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.certwatch = certwatch
        self.rules = set(rules)
        self.mail = mail
        self.operator_emails = tuple(operator_emails)
        self.webhook = webhook
        self.clock = clock

    @classmethod
    def from_settings(
        cls,
        store: Store,
        settings: Settings,
        *,
        mail: MailTransport | None = None,
        webhook: WebhookTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> Alerts:
        return cls(
            store,
            Tracking(store, rules_from(settings), clock=clock),
            CertWatch.from_settings(store, settings, clock=clock),
            rules=alert_rules(settings),
            mail=mail,
            operator_emails=settings.alert_operator_emails,
            webhook=webhook,
            clock=clock,
        )

    def items(self, as_of: datetime) -> dict[Key, AlertItem]:
        """Every open condition of the enabled rules, by alert key."""
        found: dict[Key, AlertItem] = {}
        enabled = {r for r in DELIVERY_RULES if r.value in self.rules}
        if enabled:
            for assessment, rule in self.tracking.open_judgements(as_of=as_of):
                if rule in enabled:
                    item = delivery_item(assessment, rule)
                    found[item.key] = item
        for item in self.certwatch.alert_items(self.rules, as_of):
            found[item.key] = item
        return found

    def run_round(self, holder: str, *, lease_stale: timedelta = timedelta(minutes=10)) -> RoundResult:
        """One round under the round lease; ``skipped`` when another process holds it."""
        taken_at = self.clock()
        if not self.store.alerts.acquire_round(holder, taken_at, lease_stale):
            log.info("alerts: another round is running; skipped")
            return RoundResult(skipped=True)
        try:
            return self._round()
        finally:
            self.store.alerts.release_round(taken_at, self.clock())

    def _round(self) -> RoundResult:
        now = self.clock()
        items = self.items(now)
        before = self.store.alerts.open_alerts()
        cleared = [a.id for a in before if a.key not in items]
        result = RoundResult(resolved=self.store.alerts.resolve(cleared, now))
        known = {a.key for a in before}
        result.raised = self.store.alerts.raise_alerts(i.new_alert(now) for k, i in items.items() if k not in known)
        open_now = [a for a in self.store.alerts.open_alerts() if a.key in items]
        result.open = len(open_now)
        self.notify(open_now, items, now, result)
        if result.raised or result.resolved or result.notified or result.failed:
            log.info(
                "alerts: %d open, %d raised, %d resolved, %d notified, %d to retry",
                result.open,
                result.raised,
                result.resolved,
                result.notified,
                result.failed,
            )
        return result

    def notify(
        self, open_now: list[AlertRecord], items: Mapping[Key, AlertItem], now: datetime, result: RoundResult
    ) -> None:
        """Send what the un-notified alerts need; mark those every message of which went out."""
        entries = [Entry(a.id, items[a.key], a.notified_at is None) for a in open_now]
        new = [e for e in entries if e.new]
        if not new:
            return
        failed: set[int] = set()
        for mail, error in self._mails(entries, now):
            if error is not None:
                failed |= mail.alert_ids
                result.errors.append(f"e-mail to {mail.label}: {error}")
        if self.webhook is not None:
            try:
                self.webhook.post(webhook_payload(new, now))
            except NotifyError as exc:
                failed |= {e.alert_id for e in new}
                result.errors.append(f"webhook: {exc}")
        for error in result.errors:
            log.warning("alerts: notification failed, retried next round: %s", error)
        done = [e.alert_id for e in new if e.alert_id not in failed]
        result.notified = self.store.alerts.mark_notified(done, now)
        result.failed = len(new) - len(done)

    def _mails(self, entries: list[Entry], now: datetime) -> list[tuple[Mail, str | None]]:
        if self.mail is None:
            return []
        by_agency: dict[str, list[Entry]] = {}
        for e in entries:
            if e.item.organ_id is not None:
                by_agency.setdefault(e.item.organ_id, []).append(e)
        agencies = self.store.registry.agencies(by_agency)
        names = {organ: a.name for organ, a in agencies.items()}
        mails = []
        for organ, group in sorted(by_agency.items()):
            to = addresses(agencies[organ].contact_email) if organ in agencies else ()
            if to and any(e.new for e in group):
                mails.append(agency_digest(organ, names[organ], to, group, now))
        if self.operator_emails:
            mails.append(operator_summary(self.operator_emails, [e for e in entries if e.new], names, now))
        if not mails:
            return []
        return list(zip(mails, self.mail.send(mails), strict=True))


__all__ = [
    "ALERT_LISTING",
    "Alerts",
    "MailTransport",
    "NotifyError",
    "RoundResult",
    "WebhookTransport",
    "alert_rules",
    "recent_alerts",
]
