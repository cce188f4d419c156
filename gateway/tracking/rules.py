"""The timing rules, their configurable windows, and the deadline each one sets (edxml.md §13).

Sources of the defaults (README "Tracking rules" repeats them for operators):

* late sending — Decision 28/2018/QĐ-TTg: an e-document is sent on the day it is signed, at the latest in the
  morning of the next working day. PromulgationDate is the signing date (no time of day), so the deadline of a
  normal document is ``send_morning_end_hour`` (12:00) of the next working day. Urgent documents (Khẩn,
  Thượng khẩn, Hỏa tốc, Hỏa tốc hẹn giờ) do not get the next-morning grace: by default they must leave on the
  promulgation day itself (``urgent_send_hours`` counted from its 00:00, one value per priority 1–4).
* late receipt — Circular 01/2019/TT-BNV: the receiving organisation notifies the sender *immediately* that it
  received the document (status 01). "Immediately" needs a number: ``receipt_minutes`` after the package became
  available to the recipient (default 60).
* not taken — the Bkav axis's operational rule (legacy-edoc-vn.md §14), kept: a delivery not taken (mailbox
  acknowledged, or push accepted by the peer) within ``not_taken_minutes`` (30) of intake.
* not registered — Circular 01/2019 (every incoming document is registered) with Decree 30/2020 (presented the
  same day or the next working day; Khẩn/Thượng khẩn/Hỏa tốc immediately): a 03 (or a 02 refusal) by the end of
  the ``register_working_days``-th working day after the day it became available — for urgent documents by the
  end of the first working day on or after that day.
* overdue — MessageHeader/DueDate: no 06 by the end of that day (not judged for refused or recalled documents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from gateway.tracking.calendar import WorkingCalendar, local_at, local_date, local_start


class Rule(StrEnum):
    """A timing rule. The values are the stable names used by the report, the API, metrics and alerts."""

    LATE_SENDING = "late_sending"
    LATE_RECEIPT = "late_receipt"
    NOT_TAKEN = "not_taken"
    NOT_REGISTERED = "not_registered"
    OVERDUE = "overdue"

    @property
    def label_vi(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]


_LABELS = {
    Rule.LATE_SENDING: ("Gửi muộn", "late sending"),
    Rule.LATE_RECEIPT: ("Chậm báo đã nhận", "late receipt"),
    Rule.NOT_TAKEN: ("Chưa nhận về", "not taken"),
    Rule.NOT_REGISTERED: ("Chưa vào sổ", "not registered"),
    Rule.OVERDUE: ("Quá hạn xử lý", "overdue"),
}

#: Most (day, urgency) deadlines one TimingRules keeps: ten years of days, twice.
_CACHE_DAYS = 7400
#: Priorities 1–4 (Khẩn, Thượng khẩn, Hỏa tốc, Hỏa tốc hẹn giờ): urgent, no next-morning grace.
URGENT_PRIORITIES = (1, 2, 3, 4)


@dataclass(frozen=True)
class TimingRules:
    """The windows of the rules above; :meth:`gateway.tracking.settings.rules_from` builds them from settings."""

    calendar: WorkingCalendar
    send_morning_end_hour: int = 12
    #: Hours after 00:00 of the promulgation day, for priorities 1, 2, 3, 4.
    urgent_send_hours: tuple[int, int, int, int] = (24, 24, 24, 24)
    receipt_minutes: int = 60
    not_taken_minutes: int = 30
    register_working_days: int = 1
    #: Deadline of registration per (local day of availability, urgent): a report judges ~10^6 deliveries that
    #: became available on a few hundred days. Keyed by dates the store holds, bounded by _CACHE_DAYS.
    _register_ends: dict[tuple[date, bool], datetime] = field(default_factory=dict, compare=False, repr=False)

    def send_deadline(self, promulgation_date: date, priority: int | None) -> datetime:
        if priority in URGENT_PRIORITIES:
            return local_start(promulgation_date) + timedelta(hours=self.urgent_send_hours[priority - 1])
        return local_at(self.calendar.next_working_day(promulgation_date), self.send_morning_end_hour)

    def receipt_deadline(self, available_at: datetime) -> datetime:
        return available_at + timedelta(minutes=self.receipt_minutes)

    def taken_deadline(self, created_at: datetime) -> datetime:
        return created_at + timedelta(minutes=self.not_taken_minutes)

    def register_deadline(self, available_at: datetime, priority: int | None) -> datetime:
        key = (local_date(available_at), priority in URGENT_PRIORITIES)
        end = self._register_ends.get(key)
        if end is None:
            day, urgent = key
            if urgent:
                day = self.calendar.working_day_on_or_after(day)
            else:
                for _ in range(self.register_working_days):
                    day = self.calendar.next_working_day(day)
            end = local_start(day + timedelta(days=1))
            if len(self._register_ends) < _CACHE_DAYS:
                self._register_ends[key] = end
        return end

    @staticmethod
    def due_deadline(due_date: date) -> datetime:
        return local_start(due_date + timedelta(days=1))


__all__ = ["URGENT_PRIORITIES", "Rule", "TimingRules"]
