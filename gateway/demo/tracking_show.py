"""The demo's tracking step: the Decision-28 report of the demo's traffic, and a "not taken" alert arriving at a
local SMTP sink — both printed, so ``make demo`` shows what an operator and a văn thư would get.

The sink is a real SMTP server (aiosmtpd) on a loopback port of its own, and the round is the real one
(:func:`gateway.worker.alerting.build_alerts`, the worker's). Only the clock is moved: a mailbox delivery is "not
taken" 30 minutes after intake, and a demo does not wait half an hour, so the round judges as of
``not_taken_minutes + 1`` minutes from now — the output says so. The demo's own worker keeps judging at the real
time (and sends no e-mail: the demo settings name no SMTP server).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from gateway.config import Settings
from gateway.db import Store, create_engine
from gateway.services.report_export import to_table
from gateway.services.tracking import Tracking, local_period
from gateway.tracking.calendar import local_date, show
from gateway.tracking.settings import rules_from
from gateway.worker.alerting import build_alerts

Echo = Callable[[str], object]
#: Who gets the operators' summary in the demo.
DEMO_OPERATOR = "truc-van-hanh@demo.example"
_BODY_LINES = 8


class _Sink:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.content  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def show_tracking(settings: Settings, echo: Echo = print) -> None:
    """Print today's report and the e-mails one alert round sends to a local SMTP sink."""
    store = Store(create_engine(settings.effective_database_url))
    try:
        _report(store, settings, echo)
        _alerts(store, settings, echo)
    finally:
        store.engine.dispose()


def _report(store: Store, settings: Settings, echo: Echo) -> None:
    today = local_date(datetime.now(UTC))
    since, until = local_period(today, today)
    report = Tracking(store, rules_from(settings)).report(since, until)
    echo(f"== Decision-28 report for {today} (edoc-gateway report --from {today} --to {today} --format table):")
    for line in to_table(report.to_dict()).splitlines():
        echo("   " + line)


def _alerts(store: Store, settings: Settings, echo: Echo) -> None:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        local = dataclasses.replace(
            settings, smtp_host="127.0.0.1", smtp_port=port, alert_operator_emails=(DEMO_OPERATOR,)
        )
        ahead = timedelta(minutes=settings.not_taken_minutes + 1)
        as_of = datetime.now(UTC) + ahead
        alerts = build_alerts(local, store, clock=lambda: datetime.now(UTC) + ahead)
        result = alerts.run_round("demo")
        echo(
            f"== alerts: one round judged as of {show(as_of)} — the demo moves its clock {ahead.seconds // 60} "
            f"minutes ahead so the {settings.not_taken_minutes}-minute 'not taken' rule can fire; "
            f"{result.raised} alerts raised, {len(sink.messages)} e-mails at the local SMTP sink 127.0.0.1:{port}"
        )
    finally:
        controller.stop()
    for message in sink.messages:
        echo(f"   -- To: {message['To']}")
        echo(f"      Subject: {message['Subject']}")
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        for line in [x for x in text.splitlines() if x.strip()][:_BODY_LINES]:
            echo("      " + line)


__all__ = ["DEMO_OPERATOR", "show_tracking"]
