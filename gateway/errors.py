"""The one exception tree of the gateway.

Every refusal carries a stable machine ``code`` (the wire code in SOAP Faults and JSON errors), a human
message in Vietnamese and English, ``retryable`` (the delivery worker retries only then) and structured
``detail`` so that callers and logs never parse messages (STYLE.md, "Results are values; exceptions are
for errors").
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

#: An unbroken run (no whitespace) longer than this is clipped to its first CLIP_KEEP characters. Every name, path and
#: identifier the gateway itself writes into a message is shorter; a caller's value longer than that is not worth
#: echoing whole.
CLIP_OVER: Final = 100
CLIP_KEEP: Final = 64
_LONG_RUN = re.compile(rf"\S{{{CLIP_OVER + 1},}}")
#: A message longer than this after clipping is cut (many long runs): an error body stays a few KB whatever the
#: input.
MAX_MESSAGE: Final = 2000


def clip(text: str) -> str:
    """``text`` with every unbroken run over :data:`CLIP_OVER` characters cut to ``<first 64>…(N bytes)``.

    N is the run's size in UTF-8 bytes, so the reader learns how big the value was without receiving it. The whole
    result is also bounded (:data:`MAX_MESSAGE` characters).
    """
    if len(text) <= CLIP_OVER:
        return text
    clipped = _LONG_RUN.sub(
        lambda m: f"{m.group()[:CLIP_KEEP]}…({len(m.group().encode('utf-8', 'replace'))} bytes)", text
    )
    return clipped if len(clipped) <= MAX_MESSAGE else clipped[:MAX_MESSAGE] + f"…({len(text)} characters)"


def _clipped(value: Any) -> Any:
    """A detail value with its strings clipped (lists of caller values too: unknown recipients, for one)."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, list | tuple):
        return [clip(v) if isinstance(v, str) else v for v in value[:100]]
    return value


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    code: ClassVar[str] = "GATEWAY.ERROR"
    retryable: ClassVar[bool] = False
    message_vi: ClassVar[str] = "Lỗi cổng trục"

    def __init__(self, message: str, *, path: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}: {self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body shared by the REST edge and the CLI (``--json``)."""
        body: dict[str, Any] = {"code": self.code, "message": clip(self.message), "message_vi": self.message_vi}
        if self.path:
            body["path"] = clip(self.path)
        if self.detail:
            body["detail"] = {k: _clipped(v) for k, v in self.detail.items() if v is not None}
        return body


class SizeLimitError(GatewayError):
    """Input larger than a configured limit; checked before the input is read or expanded."""

    code = "SIZE.LIMIT"
    message_vi = "Dữ liệu vượt quá giới hạn kích thước cho phép"


class EdxmlError(GatewayError):
    """Anything wrong with an edXML package."""

    code = "EDXML.INVALID"
    message_vi = "Gói tin edXML không hợp lệ"


class EdxmlParseError(EdxmlError):
    """Not well-formed XML, or XML the safe parser refuses (DOCTYPE, entities)."""

    code = "EDXML.PARSE"
    message_vi = "Gói tin edXML không đúng cú pháp XML"


class EdxmlForbiddenError(EdxmlParseError):
    """XML constructs refused at the trust boundary: DOCTYPE, entity declarations, external references."""

    code = "EDXML.FORBIDDEN"
    message_vi = "Gói tin chứa khai báo DOCTYPE/thực thể bị cấm"


class EdxmlSchemaError(EdxmlError):
    """The package does not match the edXML XSD in ``xsd/``."""

    code = "EDXML.SCHEMA"
    message_vi = "Gói tin edXML không đúng lược đồ (XSD)"


class EdxmlStructureError(EdxmlError):
    """Well-formed XML that is not an edoc or status package (wrong root, missing required parts)."""

    code = "EDXML.STRUCTURE"
    message_vi = "Gói tin edXML thiếu thành phần bắt buộc hoặc sai cấu trúc"


class EdxmlValueError(EdxmlError):
    """A field value is malformed: a date, a code outside its code list, an agency identifier."""

    code = "EDXML.VALUE"
    message_vi = "Giá trị trường dữ liệu trong gói tin không hợp lệ"


class EdxmlBusinessError(EdxmlError):
    """A rule across fields fails (duplicate recipients, update without the document it updates, ...)."""

    code = "EDXML.BUSINESS"
    message_vi = "Gói tin vi phạm quy tắc nghiệp vụ"


class DocumentIdError(EdxmlBusinessError):
    """A DocumentId that is not the sender's to use (issue 10 finding 9): issued under another agency's OrganId,
    already issued by another agency, or an update/revoke/replace of another agency's document."""

    code = "EDXML.DOCUMENT_ID"
    message_vi = "Mã định danh văn bản không thuộc đơn vị gửi"


class AttachmentError(EdxmlError):
    """Malformed base64, broken zip, manifest/attachment mismatch, or a zip bomb."""

    code = "EDXML.ATTACHMENT"
    message_vi = "Tệp đính kèm không hợp lệ"


class SignatureError(EdxmlError):
    """The XML-DSig signature is missing where required, does not verify, or fails the trust policy."""

    code = "EDXML.SIGNATURE"
    message_vi = "Chữ ký số của gói tin không hợp lệ"


class ConfigError(GatewayError):
    """Configuration is missing or inconsistent; stops start-up."""

    code = "CONFIG.INVALID"
    message_vi = "Cấu hình không hợp lệ"


class DuplicateError(GatewayError):
    """A different package under an idempotency key that is already taken (gateway.md Intake 6)."""

    code = "EDXML.DUPLICATE"
    message_vi = "Gói tin trùng mã với một gói tin khác đã nhận"


class AuthError(GatewayError):
    """Unknown system, wrong secret, bad or missing credentials."""

    code = "AUTH.DENIED"
    message_vi = "Xác thực không thành công"


class ReplayError(AuthError):
    """A WS-Security nonce seen before, or a Created time outside the replay window."""

    code = "AUTH.REPLAY"
    message_vi = "Thông tin xác thực đã được dùng lại hoặc hết hạn"


class StaleError(ReplayError):
    """A signed timestamp outside the accepted window (a VDXP request in ``strict`` mode, issue 10 finding 7).

    A replay of its own kind, with its own code: the usual cause is a system running the stock VNPT SDK, which
    signs ONE timestamp for the life of its client object (edxml.md §11.4) — the operator's fix is that
    system's ``legacy-sdk`` mode with a source binding, which the code lets them see at a glance.
    """

    code = "AUTH.STALE"
    message_vi = "Thời điểm ký của yêu cầu nằm ngoài khoảng thời gian cho phép"


class SourceError(AuthError):
    """A valid credential used from a place its system is not bound to: a source address outside the system's
    allow-list, or a TLS client certificate that is not the one bound to it (issue 10 finding 7).

    An authentication failure (audited and counted as one), with its own code because it is only reachable
    with a valid signature, so it tells an attacker nothing and tells the operator what to look at.
    """

    code = "ACCESS.SOURCE"
    message_vi = "Yêu cầu đến từ địa chỉ hoặc chứng thư không được phép cho hệ thống này"


class AccessError(GatewayError):
    """An authenticated system acting for, or reading the mailbox of, an agency it does not host."""

    code = "ACCESS.DENIED"
    message_vi = "Hệ thống không được phép thao tác cho đơn vị này"


class RouteError(GatewayError):
    """A recipient that is neither registered locally nor reachable upstream."""

    code = "ROUTE.UNKNOWN_RECIPIENT"
    message_vi = "Không tìm thấy đơn vị nhận"


class NotFoundError(GatewayError):
    """No such document, delivery or status history (or not visible to the caller)."""

    code = "NOT_FOUND"
    message_vi = "Không tìm thấy"


class RequestError(GatewayError):
    """A malformed request at the protocol edge (wrong content type, charset, multipart, bad SOAP)."""

    code = "REQUEST.INVALID"
    message_vi = "Yêu cầu không hợp lệ"


class CursorError(RequestError):
    """A paging cursor this gateway did not hand out, or one of another list (issue 11 item 7): the caller must
    start again from the first page rather than be shown a page from a guessed position."""

    code = "REQUEST.CURSOR"
    message_vi = "Con trỏ phân trang không hợp lệ"


class LimitError(GatewayError):
    """A package within the byte limit that asks for more work than the intake policy allows (issue 10 finding 8:
    attachment count, inflated size, recipients, statuses per day). Each kind has its own stable code."""

    code = "LIMIT.EXCEEDED"
    message_vi = "Gói tin vượt quá giới hạn xử lý cho phép"


class AttachmentCountError(LimitError):
    """More attachments in one package than ``max_attachments``."""

    code = "LIMIT.ATTACHMENTS"
    message_vi = "Gói tin có quá nhiều tệp đính kèm"


class InflatedSizeError(LimitError):
    """A zip attachment that inflates beyond ``max_inflated_bytes``, or compresses more than ``max_zip_ratio``."""

    code = "LIMIT.INFLATED"
    message_vi = "Tệp nén đính kèm giải nén vượt quá giới hạn cho phép"


class RecipientCountError(LimitError):
    """More ``To`` than ``max_recipients``."""

    code = "LIMIT.RECIPIENTS"
    message_vi = "Gói tin có quá nhiều đơn vị nhận"


class StatusQuotaError(LimitError):
    """More status packages for one (document, recipient) than allowed per day or in total.

    ``detail.retry_after`` (seconds) says when the daily quota opens again (absent for the total cap)."""

    code = "LIMIT.STATUSES"
    message_vi = "Đã vượt quá số gói tin trạng thái cho phép đối với văn bản này"


class RateLimitedError(GatewayError):
    """Too many requests, or too many failed authentications, from one address or for one system.

    ``retry_after`` is the whole number of seconds after which the same request may succeed; the edges send it
    as ``Retry-After`` (HTTP 429, or the SOAP Fault detail). Not ``retryable`` for the delivery worker: a peer
    gateway that throttles us is retried on the worker's own backoff anyway."""

    code = "RATE.LIMITED"
    message_vi = "Quá nhiều yêu cầu; vui lòng thử lại sau"

    def __init__(self, message: str, *, retry_after: int, **detail: Any) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, retry_after=self.retry_after, **detail)


class UnavailableError(GatewayError):
    """A dependency (database) is down; the client should retry."""

    code = "SERVICE.UNAVAILABLE"
    retryable = True
    message_vi = "Dịch vụ tạm thời không sẵn sàng"


class RequestTimeoutError(RequestError):
    """The request did not arrive in time: its body came slower than the minimum rate (issue 10, finding 1)."""

    code = "REQUEST.TIMEOUT"
    message_vi = "Yêu cầu gửi đến quá chậm, quá thời gian cho phép"
