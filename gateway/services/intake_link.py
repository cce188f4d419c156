"""Intake stage 7, **link** (:mod:`gateway.services.intake`): what an accepted package is linked to and who gets a
delivery — an edoc through :func:`~gateway.services.routing.plan_edoc`, a status through
:func:`~gateway.services.status_relay.plan_status` — reusing what intake's one lookup already read (the agencies
it names, an edoc's DocumentId rows) so that the stage adds as few statements as it can (issue 14).
"""

from __future__ import annotations

from datetime import datetime

from gateway.config import Settings
from gateway.db import IntakeLookup, Store
from gateway.edxml import EdocPackage, Package
from gateway.errors import RouteError
from gateway.services.intake_records import IntakeAttempt
from gateway.services.routing import Plan, Recipients, plan_edoc
from gateway.services.status_relay import plan_status


def link(
    store: Store,
    settings: Settings,
    attempt: IntakeAttempt,
    pkg: Package,
    lookup: IntakeLookup,
    recipients: Recipients,
    now: datetime,
) -> Plan:
    """The plan of ``pkg``; a package polled from an axis is checked against whom the axis holds it for."""
    if isinstance(pkg, EdocPackage):
        policy = "warn" if attempt.upstream and settings.document_id_policy != "off" else None
        ids = policy or settings.document_id_policy
        return plan_edoc(store, pkg, recipients, document_ids=ids, stored=lookup.same_document_id)
    plan = plan_status(
        store,
        pkg,
        now,
        upstream=attempt.upstream,
        max_per_day=settings.max_statuses_per_day,
        max_total=settings.max_statuses_total,
        agencies=lookup.agencies,
    )
    status_to = plan.recipients[0][0]
    if attempt.for_recipient is not None and attempt.for_recipient != status_to:
        raise RouteError(
            f"the axis holds this status for {attempt.for_recipient}, but it goes to {status_to}",
            recipients=[attempt.for_recipient, status_to],
        )
    return plan


__all__ = ["link"]
