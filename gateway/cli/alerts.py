"""``alerts`` (run rounds, list) and ``certificates`` (the certificate watch) — issue 9 items 6 and 8."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import click

from gateway.cli.common import _db_settings, _page_footer, _page_request, _paging, _reporting


@click.group()
def alerts() -> None:
    """Tracking alerts: e-mail digests and a webhook about late deliveries and signer certificates."""


@alerts.command("run")
@click.option("--once", is_flag=True, help="One round now, then exit (otherwise every alerts_interval_seconds).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the round as JSON.")
def alerts_run(once: bool, as_json: bool) -> None:
    """Run alert rounds in this process (the worker runs them too; rounds are single across processes)."""
    from gateway import logs
    from gateway.worker.alerting import run_alerts

    settings = _db_settings()
    logs.configure(settings.log_level, settings.log_format)
    with _reporting("alerts"):
        results = run_alerts(settings, once=once)
    if not once:
        return
    r = results[0]
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(r), ensure_ascii=False, indent=2))
    elif r.skipped:
        click.echo("alerts: another round is running; nothing done")
    else:
        click.echo(
            f"alerts: {r.open} open, {r.raised} raised, {r.resolved} resolved, {r.notified} notified, "
            f"{r.failed} to retry"
        )
        for error in r.errors:
            click.echo(f"  {error}")


@alerts.command("list")
@click.option("--days", type=int, default=7, show_default=True, help="Alerts raised in the last DAYS, and all open.")
@_paging
@click.option("--json", "as_json", is_flag=True, help='{"items": […], "total": N, "next_cursor": …}')
def alerts_list(days: int, limit: int, offset: int, cursor: str | None, as_json: bool) -> None:
    """Open alerts, and those raised recently, newest first (times in Vietnam time), a page at a time."""
    from gateway.services.alerts import ALERT_LISTING, recent_alerts
    from gateway.services.delivery_admin import open_store
    from gateway.tracking.calendar import show

    request = _page_request(ALERT_LISTING, 2, limit, offset, cursor)
    settings = _db_settings()
    with _reporting("alerts"), open_store(settings) as store:
        page = recent_alerts(store, datetime.now(UTC) - timedelta(days=days), request)
    if as_json:
        out = page.to_dict(dataclasses.asdict)
        click.echo(json.dumps(out, ensure_ascii=False, indent=2, default=datetime.isoformat))
        return
    for a in page.items:
        state = f"resolved {show(a.resolved_at)}" if a.resolved_at else "OPEN"
        told = "notified" if a.notified_at else "not notified"
        reason = (a.detail or {}).get("reason", "")
        click.echo(f"{show(a.raised_at)} {a.rule:<15} {a.organ_id or '-':<16} {state}, {told}: {reason}")
    _page_footer(page, "alerts")


@click.command()
@click.option("--days", type=int, help="Only certificates (not renewed) expiring within DAYS, and revoked ones.")
@click.option("--period-days", type=int, default=30, show_default=True, help="Signed-share period (last N days).")
@click.option("--json", "as_json", is_flag=True)
def certificates(days: int | None, period_days: int, as_json: bool) -> None:
    """Signer certificates seen per agency: expiry, days left, revocation by today's CRLs; and each agency's share
    of validly signed documents over the last --period-days (Circular 01/2019)."""
    from gateway.services.certwatch import CertWatch
    from gateway.services.delivery_admin import open_store
    from gateway.tracking.calendar import show

    settings = _db_settings()
    now = datetime.now(UTC)
    with _reporting("certificates"), open_store(settings) as store:
        watch = CertWatch.from_settings(store, settings)
        certs = watch.certificates(days=days, as_of=now)
        shares = watch.signed_shares(now - timedelta(days=period_days), now)
    if as_json:
        doc = {"certificates": [c.to_dict() for c in certs], "signed_share": [s.to_dict() for s in shares]}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for s in certs:
        c = s.cert
        left = f"{s.days_left} days" if s.days_left is not None else "-"
        renewed = " (renewed)" if s.renewed else ""
        click.echo(
            f"{c.organ_id:<16} {c.fingerprint[:16]} expires {show(c.not_after)} ({left}) "
            f"revocation {s.revocation}{renewed}  {c.subject}"
        )
    click.echo(f"validly signed documents, last {period_days} days:")
    for share in shares:
        pct = f"{share.percent:.2f}%" if share.percent is not None else "-"
        click.echo(f"  {share.organ_id:<16} {share.valid}/{share.documents} {pct}")


COMMANDS: tuple[click.Command, ...] = (alerts, certificates)
