"""The console's two languages: Vietnamese by default, English on request (issue 12 item 1).

Templates and views write English message ids (``_("Dead letters")``); this module holds the Vietnamese text of
each, registered by the page modules that use them (:func:`register`), so a page and its words live together.
A message id without a Vietnamese entry shows in English — and ``tests/test_console.py`` fails on every such id
found in the templates, so none ships untranslated.

Dates and times are always shown in Asia/Ho_Chi_Minh, with the zone named once per page, in the order a
Vietnamese reader expects (``dd/mm/yyyy HH:MM``) in both languages: the documents they describe carry Vietnamese
dates, and one format for both avoids two readings of ``03/04``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Final

from gateway.tracking.calendar import local

LANGUAGES: Final = ("vi", "en")
DEFAULT: Final = "vi"
_VI: dict[str, str] = {}


def register(messages: Mapping[str, str]) -> None:
    """Add Vietnamese texts (English id → Vietnamese); a page module calls this at import."""
    for msgid, text in messages.items():
        known = _VI.get(msgid)
        if known is not None and known != text:
            raise ValueError(f"two Vietnamese texts for {msgid!r}: {known!r} and {text!r}")
        _VI[msgid] = text


def translate(msgid: str, lang: str) -> str:
    return _VI.get(msgid, msgid) if lang == "vi" else msgid


def translated(msgid: str) -> bool:
    return msgid in _VI


def when(at: datetime | None) -> str:
    """A time as people read it here: local Vietnam time, ``dd/mm/yyyy HH:MM``."""
    return "" if at is None else local(at).strftime("%d/%m/%Y %H:%M")


def when_exact(at: datetime | None) -> str:
    """To the second, for timelines and audit-like lists."""
    return "" if at is None else local(at).strftime("%d/%m/%Y %H:%M:%S")


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return (local(value).date() if isinstance(value, datetime) else value).strftime("%d/%m/%Y")


def number(value: float | int | None, lang: str, digits: int = 0) -> str:
    """Thousands and decimals the local way (Vietnamese: ``1.234,5``; English: ``1,234.5``)."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


register(
    {
        "Operator console": "Bảng điều khiển vận hành",
        "Dashboard": "Tổng quan",
        "Documents": "Văn bản",
        "Dead letters": "Gửi lỗi",
        "Agencies": "Cơ quan",
        "Systems": "Hệ thống",
        "Report": "Báo cáo",
        "Log in": "Đăng nhập",
        "Log out": "Đăng xuất",
        "User name": "Tên đăng nhập",
        "Password": "Mật khẩu",
        "Wrong user name or password.": "Sai tên đăng nhập hoặc mật khẩu.",
        "Too many failed logins. Try again in {seconds} s.": "Đăng nhập sai quá nhiều lần. Thử lại sau {seconds} giây.",
        "Your session has ended. Please log in again.": "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.",
        "The form has expired. Please try again.": "Biểu mẫu đã hết hạn. Vui lòng thử lại.",
        "Page not found": "Không tìm thấy trang",
        "You may not do this": "Bạn không có quyền thực hiện thao tác này",
        "Something went wrong": "Đã có lỗi xảy ra",
        "Back to the dashboard": "Về trang tổng quan",
        "Times are Vietnam time (UTC+7).": "Thời gian theo giờ Việt Nam (UTC+7).",
        "Signed in as": "Đăng nhập với tên",
        "role": "vai trò",
        "scope": "phạm vi",
        "all agencies": "tất cả cơ quan",
        "viewer": "xem",
        "operator": "vận hành",
        "admin": "quản trị",
        "Language": "Ngôn ngữ",
        "Main menu": "Menu chính",
        "Skip to content": "Bỏ qua đến nội dung",
        "Previous": "Trước",
        "Next": "Sau",
        "of": "trên",
        "No operator account exists yet: create one with": "Chưa có tài khoản vận hành: tạo bằng lệnh",
    }
)

__all__ = ["DEFAULT", "LANGUAGES", "day", "number", "register", "translate", "translated", "when", "when_exact"]
