"""Working days in Vietnam, and the local time every tracking time is shown in.

A working day is Monday–Friday that is not a public holiday, or a make-up working Saturday. The ``holidays``
library knows Vietnam's holidays, including the lunar ones (Tết, Hùng Kings) and the days the Government moves
(``weekend_workdays``: a Saturday worked to bridge a holiday); operators add what a province declares on top
(``extra_days_off``, ``make_up_working_days``). Times are stored in UTC; Vietnam has no daylight saving, but the
zone is still named (Asia/Ho_Chi_Minh), never a bare +7.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
#: From this instant on, Asia/Ho_Chi_Minh is UTC+07:00 without transitions (tzdata); checked by a test.
_CONSTANT_SINCE = datetime(1975, 6, 12, 17, 0, tzinfo=UTC)
_OFFSET = timedelta(hours=7)
#: A working day's length is never needed; a search for the next one stops after this many days (Tết is ≤ 10).
_MAX_SEARCH = 60


def local(at: datetime) -> datetime:
    """``at`` (aware) in Vietnam time."""
    return at.astimezone(LOCAL_TZ)


def local_date(at: datetime) -> date:
    """The Vietnam calendar day of ``at``. Since 1975-06-13 (tzdata's last transition for Asia/Ho_Chi_Minh) the
    offset is a constant +07:00; using it directly is exact and ~10× cheaper than a zoneinfo conversion, which
    matters when a report judges a million deliveries. Earlier times take the zoneinfo path."""
    if at >= _CONSTANT_SINCE:
        return (at.astimezone(UTC) + _OFFSET).date()
    return local(at).date()


def local_start(day: date) -> datetime:
    """00:00 in Vietnam on ``day``, as aware UTC."""
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(UTC)


def local_at(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` in Vietnam on ``day``, as aware UTC."""
    return datetime.combine(day, time(hour, minute), LOCAL_TZ).astimezone(UTC)


def show(at: datetime | None) -> str:
    """How a time is shown to people: local, to the second, with the zone (``2026-02-23 08:15:00 +07``)."""
    if at is None:
        return ""
    return local(at).strftime("%Y-%m-%d %H:%M:%S %z")[:-2]


class WorkingCalendar:
    """Vietnamese working days plus the operator's declared days off and make-up working days.

    Built once per process (the ``holidays`` tables are generated per year, lazily); answers are cached per
    date, so judging a year of deliveries costs a dictionary lookup per delivery.
    """

    def __init__(self, extra_days_off: Iterable[date] = (), make_up_working_days: Iterable[date] = ()) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.make_up_working_days = frozenset(make_up_working_days)
        self._cache: dict[date, bool] = {}

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays("VN")

    def holiday_name(self, day: date) -> str | None:
        """The public holiday on ``day`` (English names from the library), or None."""
        if day in self.extra_days_off:
            return "declared day off"
        return self._holidays.get(day)

    def is_working_day(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            known = self._cache[day] = self._judge(day)
        return known

    def _judge(self, day: date) -> bool:
        if day in self.extra_days_off:
            return False
        if day in self.make_up_working_days:
            return True
        table = self._holidays
        _ = day in table  # makes the library populate the year, and its weekend_workdays with it
        if day in table.weekend_workdays:
            return True
        return day.weekday() < 5 and day not in table

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        for step in range(1, _MAX_SEARCH):
            candidate = day + timedelta(days=step)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_MAX_SEARCH} days after {day}")

    def working_day_on_or_after(self, day: date) -> date:
        return day if self.is_working_day(day) else self.next_working_day(day)


__all__ = ["LOCAL_TZ", "WorkingCalendar", "local", "local_at", "local_date", "local_start", "show"]
