"""Code lists of edXML (edxml.md §5.2, §7) as enums.

Each enum has the wire value as its value. ``parse`` methods are tolerant on input (``"1"`` and ``"01"``
are the same status code) and raise :class:`~gateway.errors.EdxmlValueError` for values outside the
list, because an unknown code cannot be routed or reported.
"""

from __future__ import annotations

from enum import Enum, StrEnum

from gateway.errors import EdxmlValueError


class PackageKind(StrEnum):
    """The two kinds of edXML package (edxml.md §1): a document, or a processing-status feedback."""

    EDOC = "edoc"
    STATUS = "status"


class _IntCode(Enum):
    """An integer code written as a decimal string on the wire."""

    label_vi: str
    label_en: str

    def __new__(cls, value: int, label_vi: str, label_en: str) -> _IntCode:
        obj = object.__new__(cls)
        obj._value_ = value
        obj.label_vi = label_vi
        obj.label_en = label_en
        return obj

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> _IntCode:
        raw = text.strip()
        try:
            return cls(int(raw))
        except ValueError:
            raise EdxmlValueError(
                f"{raw!r} is not a valid {cls.__name__} (allowed: {', '.join(str(m.value) for m in cls)})",
                path=path,
            ) from None

    @property
    def wire(self) -> str:
        return str(self.value)


class Priority(_IntCode):
    """``OtherInfo/Priority`` — độ khẩn (edxml.md §7.1)."""

    NORMAL = (0, "Thường", "normal")
    URGENT = (1, "Khẩn", "urgent")
    VERY_URGENT = (2, "Thượng khẩn", "very urgent")
    FLASH = (3, "Hỏa tốc", "flash")
    FLASH_TIMED = (4, "Hỏa tốc hẹn giờ", "flash, timed")


class SteeringType(_IntCode):
    """``SteeringType`` — loại chỉ đạo (edxml.md §7.2). We emit the 0-based variant."""

    NOT_STEERING = (0, "Không phải văn bản chỉ đạo", "not a directive")
    STEERING = (1, "Văn bản chỉ đạo", "directive")
    STEERING_REPORT = (2, "Báo cáo chỉ đạo", "report on a directive")


class BussinessDocType(_IntCode):
    """``Bussiness/BussinessDocType`` — the business operation (edxml.md §4)."""

    NEW = (0, "Văn bản điện tử mới", "new document")
    REVOKE = (1, "Thu hồi văn bản điện tử", "revocation")
    UPDATE = (2, "Cập nhật văn bản điện tử", "update")
    REPLACE = (3, "Văn bản thay thế", "replacement")


class ReceiverType(_IntCode):
    """``ReceiverList/Receiver/ReceiverType`` in an update (edxml.md §4)."""

    REMOVED = (0, "Bị bỏ khỏi danh sách nhận", "removed from the recipients")
    ADDED = (1, "Được thêm vào danh sách nhận", "added to the recipients")


class StatusCode(StrEnum):
    """The business ``StatusCode`` of a status package (edxml.md §5.2).

    Not to be confused with the transport acknowledgement (done/fail) or our own delivery state.
    """

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    IN_PROGRESS = "05"
    DONE = "06"
    RECALL_REQUESTED = "13"
    CHANGE_ACCEPTED = "15"
    CHANGE_REFUSED = "16"

    @property
    def label_vi(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][1]

    @property
    def sent_by_sender(self) -> bool:
        """13 (recall request) travels from the document's sender to its receiver; all others go back."""
        return self is StatusCode.RECALL_REQUESTED

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> tuple[StatusCode, str | None]:
        """Parse a wire code; returns the code and a warning when the input needed fixing.

        ``"1"`` is read as ``"01"``. ``"14"`` is what the VNPT C# SDK helper writes for "agree to
        update/recall" (edxml.md §5.2 discrepancy): it is read as 15 with a warning.
        """
        raw = text.strip()
        if raw.isdigit() and len(raw) <= 2:
            norm = raw.zfill(2)
            if norm == "14":
                return cls.CHANGE_ACCEPTED, "StatusCode 14 (VNPT C# SDK defect) read as 15"
            try:
                code = cls(norm)
            except ValueError:
                pass
            else:
                return code, (None if norm == raw else f"StatusCode {raw!r} read as {norm!r}")
        raise EdxmlValueError(
            f"{raw!r} is not a known edXML StatusCode (allowed: {', '.join(m.value for m in cls)})",
            path=path,
        )


_STATUS_LABELS: dict[StatusCode, tuple[str, str]] = {
    StatusCode.ARRIVED: ("Đã đến", "arrived"),
    StatusCode.REJECTED: ("Từ chối", "rejected"),
    StatusCode.ACCEPTED: ("Tiếp nhận", "accepted and registered"),
    StatusCode.ASSIGNED: ("Phân công", "assigned"),
    StatusCode.IN_PROGRESS: ("Đang xử lý", "in progress"),
    StatusCode.DONE: ("Hoàn thành", "done"),
    StatusCode.RECALL_REQUESTED: ("Lấy lại", "recall requested"),
    StatusCode.CHANGE_ACCEPTED: ("Đồng ý cập nhật, lấy lại", "update/recall accepted"),
    StatusCode.CHANGE_REFUSED: ("Từ chối cập nhật, lấy lại", "update/recall refused"),
}
