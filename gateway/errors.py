"""The one exception tree of the gateway.

Every refusal carries a stable machine ``code`` (the wire code in SOAP Faults and JSON errors), a human
message in Vietnamese and English, ``retryable`` (the delivery worker retries only then) and structured
``detail`` so that callers and logs never parse messages (STYLE.md, "Results are values; exceptions are
for errors").
"""

from __future__ import annotations

from typing import Any, ClassVar


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
        body: dict[str, Any] = {"code": self.code, "message": self.message, "message_vi": self.message_vi}
        if self.path:
            body["path"] = self.path
        if self.detail:
            body["detail"] = {k: v for k, v in self.detail.items() if v is not None}
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


class UnavailableError(GatewayError):
    """A dependency (database) is down; the client should retry."""

    code = "SERVICE.UNAVAILABLE"
    retryable = True
    message_vi = "Dịch vụ tạm thời không sẵn sàng"


class RequestTimeoutError(RequestError):
    """The request did not arrive in time: its body came slower than the minimum rate (issue 10, finding 1)."""

    code = "REQUEST.TIMEOUT"
    message_vi = "Yêu cầu gửi đến quá chậm, quá thời gian cho phép"


class RateLimitError(GatewayError):
    """Too many requests in progress from one address or one system; the client may retry after a pause."""

    code = "RATE.LIMITED"
    retryable = True
    message_vi = "Quá nhiều yêu cầu đồng thời; vui lòng thử lại sau"
