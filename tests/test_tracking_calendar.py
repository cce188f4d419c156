"""Working days and the deadline of each timing rule on concrete 2026 dates (Tết, a make-up Saturday, weekends),
and the operator's own days off / make-up days from settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.tracking.calendar import WorkingCalendar
from gateway.tracking.rules import TimingRules
from gateway.tracking.settings import rules_from

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN)


@pytest.fixture(scope="module")
def rules() -> TimingRules:
    return TimingRules(calendar=WorkingCalendar())


def test_tet_2026_has_no_working_day_and_work_resumes_on_monday_23_february(rules: TimingRules) -> None:
    cal = rules.calendar
    assert cal.is_working_day(date(2026, 2, 13))  # Friday before Tết
    assert [d for d in range(14, 23) if cal.is_working_day(date(2026, 2, d))] == []
    assert cal.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)
    assert cal.working_day_on_or_after(date(2026, 2, 17)) == date(2026, 2, 23)
    assert cal.holiday_name(date(2026, 2, 17)) is not None


def test_the_make_up_saturday_is_worked_and_the_day_it_buys_is_off(rules: TimingRules) -> None:
    cal = rules.calendar
    assert cal.is_working_day(date(2026, 8, 22))  # Saturday, worked instead of Monday 31 August
    assert not cal.is_working_day(date(2026, 8, 29))  # an ordinary Saturday
    assert not cal.is_working_day(date(2026, 8, 31))
    assert not cal.is_working_day(date(2026, 9, 1)) and not cal.is_working_day(date(2026, 9, 2))
    assert cal.next_working_day(date(2026, 8, 21)) == date(2026, 8, 22)
    assert cal.next_working_day(date(2026, 8, 28)) == date(2026, 9, 3)


def test_operator_days_off_and_make_up_days_come_from_settings() -> None:
    rules = rules_from(Settings(extra_days_off=("2026-03-09",), make_up_working_days=("2026-03-14",)))
    cal = rules.calendar
    assert not cal.is_working_day(date(2026, 3, 9))  # a Monday the province gave off
    assert cal.holiday_name(date(2026, 3, 9)) == "declared day off"
    assert cal.is_working_day(date(2026, 3, 14))  # the Saturday it is made up on
    assert cal.next_working_day(date(2026, 3, 6)) == date(2026, 3, 10)
    assert cal.next_working_day(date(2026, 3, 13)) == date(2026, 3, 14)
    default = rules_from(Settings()).calendar
    assert default.is_working_day(date(2026, 3, 9)) and not default.is_working_day(date(2026, 3, 14))


@pytest.mark.parametrize(
    ("key", "value"),
    [("extra_days_off", ("2026-02-30",)), ("make_up_working_days", ("14/03/2026",)), ("extra_days_off", ("soon",))],
)
def test_a_malformed_date_in_settings_is_config_invalid(key: str, value: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from(Settings(**{key: value}))
    assert caught.value.code == "CONFIG.INVALID"
    assert key in str(caught.value)


def test_late_sending_deadlines(rules: TimingRules) -> None:
    # A normal document promulgated on the Friday before Tết may leave until noon of the next working day.
    assert rules.send_deadline(date(2026, 2, 13), 0) == vn(2026, 2, 23, 12)
    assert rules.send_deadline(date(2026, 2, 13), None) == vn(2026, 2, 23, 12)
    # Urgent ones (Khẩn … Hỏa tốc hẹn giờ) leave the same day: by its end.
    for priority in (1, 2, 3, 4):
        assert rules.send_deadline(date(2026, 2, 13), priority) == vn(2026, 2, 14)
    # Before the make-up Saturday: Friday's normal document is due Saturday noon.
    assert rules.send_deadline(date(2026, 8, 21), 0) == vn(2026, 8, 22, 12)
    hours = rules_from(Settings(urgent_send_hours=(4, 8, 24, 24)))
    assert hours.send_deadline(date(2026, 3, 2), 1) == vn(2026, 3, 2, 4)
    assert hours.send_deadline(date(2026, 3, 2), 2) == vn(2026, 3, 2, 8)


def test_register_deadlines_across_a_weekend_and_tet(rules: TimingRules) -> None:
    friday_afternoon = vn(2026, 3, 6, 16, 30).astimezone(UTC)
    # Normal: by the end of the next working day — Monday 9 March, 24:00 local.
    assert rules.register_deadline(friday_afternoon, 0) == vn(2026, 3, 10)
    # Urgent: by the end of the day it came, when that is a working day.
    assert rules.register_deadline(friday_afternoon, 3) == vn(2026, 3, 7)
    # Available on Saturday: Monday is both the first working day on or after it (urgent) and the first working
    # day after it (normal) — both by the end of Monday.
    saturday = vn(2026, 3, 7, 9).astimezone(UTC)
    assert rules.register_deadline(saturday, 1) == vn(2026, 3, 10)
    assert rules.register_deadline(saturday, 0) == vn(2026, 3, 10)
    # During Tết, likewise: by the end of Monday 23 February; two working days → the end of Tuesday 24.
    tet = vn(2026, 2, 17, 10).astimezone(UTC)
    assert rules.register_deadline(tet, 2) == vn(2026, 2, 24)
    assert rules.register_deadline(tet, 0) == vn(2026, 2, 24)
    two_days = rules_from(Settings(register_working_days=2))
    assert two_days.register_deadline(tet, 0) == vn(2026, 2, 25)
    assert two_days.register_deadline(friday_afternoon, 0) == vn(2026, 3, 11)
    # The local date counts, not the UTC one: 06:30 local Monday is still Sunday in UTC.
    early_monday = vn(2026, 3, 9, 6, 30).astimezone(UTC)
    assert early_monday.date() == date(2026, 3, 8)
    assert rules.register_deadline(early_monday, 0) == vn(2026, 3, 11)


def test_receipt_taken_and_overdue_deadlines(rules: TimingRules) -> None:
    available = vn(2026, 2, 13, 16, 50).astimezone(UTC)
    assert rules.receipt_deadline(available) == available + timedelta(minutes=60)
    assert rules.taken_deadline(available) == available + timedelta(minutes=30)
    # Overdue: no 06 by the end of the due date, local time (17:00 UTC that same date).
    assert rules.due_deadline(date(2026, 2, 20)) == vn(2026, 2, 21)
    assert rules.due_deadline(date(2026, 2, 20)) == datetime(2026, 2, 20, 17, tzinfo=UTC)


def test_local_date_shortcut_agrees_with_the_zoneinfo_conversion():
    """local_date uses the constant +07:00 after tzdata's last Asia/Ho_Chi_Minh transition: same answers."""
    from datetime import UTC, datetime, timedelta

    from gateway.tracking.calendar import LOCAL_TZ, local_date

    at = datetime(1975, 6, 10, 0, 0, tzinfo=UTC)
    while at.year < 2045:
        for edge in (timedelta(hours=16, minutes=59, seconds=59), timedelta(hours=17)):
            moment = at.replace(hour=0) + edge
            assert local_date(moment) == moment.astimezone(LOCAL_TZ).date(), moment
        at += timedelta(days=11, hours=5)
