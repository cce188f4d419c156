"""Timing rules from settings: the one place that turns configuration text into :class:`TimingRules`."""

from __future__ import annotations

from datetime import date

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.rules import TimingRules


def rules_from(settings: Settings) -> TimingRules:
    """Refuses (``CONFIG.INVALID``) a malformed date or window rather than judging with a silent default."""
    hours = settings.urgent_send_hours
    if len(hours) != 4 or min(hours) <= 0:
        raise ConfigError("urgent_send_hours needs four positive hours, for priorities 1, 2, 3 and 4")
    if not 0 <= settings.send_morning_end_hour <= 24:
        raise ConfigError("send_morning_end_hour must be an hour of the day (0–24)")
    if min(settings.receipt_minutes, settings.not_taken_minutes, settings.register_working_days) < 1:
        raise ConfigError("receipt_minutes, not_taken_minutes and register_working_days must be at least 1")
    calendar = WorkingCalendar(
        extra_days_off=_dates("extra_days_off", settings.extra_days_off),
        make_up_working_days=_dates("make_up_working_days", settings.make_up_working_days),
    )
    return TimingRules(
        calendar=calendar,
        send_morning_end_hour=settings.send_morning_end_hour,
        urgent_send_hours=(hours[0], hours[1], hours[2], hours[3]),
        receipt_minutes=settings.receipt_minutes,
        not_taken_minutes=settings.not_taken_minutes,
        register_working_days=settings.register_working_days,
    )


def _dates(name: str, values: tuple[str, ...]) -> list[date]:
    try:
        return [date.fromisoformat(v) for v in values]
    except ValueError as exc:
        raise ConfigError(f"setting {name!r}: {exc} (dates are YYYY-MM-DD)") from None


__all__ = ["rules_from"]
