"""The refusals of a legacy axis, as the client raises them (:mod:`adapters.edocvn.client` classifies them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from adapters.peer_http import Failure
from gateway.edxml.model import StatusPackage
from gateway.errors import GatewayError
from gateway.protocols.edocvn import Report


class EdocvnError(GatewayError):
    """A call to a legacy axis that failed: refused (a Report with ``IsSuccess=false``, an empty Body) or not
    answered. ``report_code``/``report_description`` are Bkav's first error entry; ``failure``, ``sent`` and
    ``retryable`` are for the worker, as for every channel."""

    code: ClassVar[str] = "EDOCVN.ERROR"
    message_vi: ClassVar[str] = "Trục liên thông e-doc.vn từ chối hoặc không liên lạc được"

    def __init__(
        self,
        message: str,
        failure: Failure,
        *,
        sent: bool = True,
        report: Report | None = None,
        http_status: int | None = None,
        answer: str | None = None,
        **detail: Any,
    ) -> None:
        first = report.errors[0] if report is not None and report.errors else None
        super().__init__(
            message,
            report_code=first.code if first else None,
            report_description=first.description[:500] if first else None,
            http_status=http_status,
            **detail,
        )
        self.failure = failure
        self.sent = sent
        self.report = report
        self.retryable = failure is not Failure.REFUSED  # type: ignore[misc]  # per instance
        #: A loggable summary of what the peer answered (never our request, never a token).
        self.answer = answer

    @property
    def report_code(self) -> str | None:
        return self.detail.get("report_code")

    @property
    def report_description(self) -> str | None:
        return self.detail.get("report_description")

    @property
    def http_status(self) -> int | None:
        return self.detail.get("http_status")

    @property
    def already_there(self) -> bool:
        """The axis refused because it already has what we sent: ``M.Exist`` (SendDocument of a DocumentId it
        stored, §6.3 step 5) or "Exist trace on esb" (UpdateTraces of a status it stored, §6.7 step 2)."""
        if self.report_code == "M.Exist":
            return True
        return self.report_code == "M.UpdateTraces" and (self.report_description or "").startswith("Exist trace")


@dataclass(frozen=True)
class Traces:
    """A GetTraces answer: the statuses read, and the ones that could not be read (Bkav's internal ``999`` "send
    failed", a malformed one) as (StatusCode text, reason) — in consume mode they are gone from the axis either way."""

    statuses: tuple[StatusPackage, ...]
    unreadable: tuple[tuple[str, str], ...] = ()


__all__ = ["EdocvnError", "Traces"]
