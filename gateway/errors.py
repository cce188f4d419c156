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
