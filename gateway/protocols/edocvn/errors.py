"""Refusals of the e-doc.vn profile, carrying Bkav's own code string for the Report (legacy-edoc-vn.md §3, §10).

A legacy client may match ``Report/ErrorList/Error/Code`` against Bkav's strings (``CheckPermission``,
``M.GetDocument`` …), so a refusal that has a Bkav equivalent says it with that string; the gateway's stable code
(``REQUEST.INVALID``) stays the exception's ``code`` for logs and metrics. Refusals Bkav never reports (it answers
an empty Body, §4.3) carry our code in the Report too.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import RequestError


class ProfileError(RequestError):
    """A request the profile refuses; ``report_code`` / ``report_description`` go into the Report."""

    message_vi = "Yêu cầu không đúng giao thức e-doc.vn"

    def __init__(self, message: str, *, report_code: str | None = None, path: str | None = None, **detail: Any):
        super().__init__(message, path=path, **detail)
        self.report_code = report_code or self.code
        self.report_description = message
