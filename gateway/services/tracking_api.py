"""The contract between the tracking use cases and their edges (CLI, admin API, console): queries and pages.

:class:`DocumentQuery` is what ``edoc-gateway documents list`` and ``GET /admin/v1/documents`` accept;
:class:`DocumentsApi` is what they call (met by :class:`gateway.services.timeline.Timelines`). Values answer
``to_dict()`` with JSON values (ISO 8601 UTC times plus ``*_local`` Vietnam-time strings for people).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

#: Flags a document list can filter on: the rule names of :class:`gateway.tracking.rules.Rule` (breached for
#: any recipient), plus ``open`` variants (``not_taken:open`` — the deadline passed and it is still missing).
MAX_PAGE = 500


@dataclass(frozen=True)
class DocumentQuery:
    """Filters of a document list; every field optional. ``since``/``until`` bound the intake time."""

    since: datetime | None = None
    until: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    kind: str | None = None  # edoc | status
    state: str | None = None  # a DeliveryState value: some delivery of the document is in it
    flags: tuple[str, ...] = ()  # e.g. ("late_receipt", "not_taken:open", "overdue")
    text: str | None = None  # case-insensitive substring of Code or Subject
    cursor: str | None = None  # opaque, from the previous page's next_cursor
    limit: int = 50
    offset: int = 0  # matching documents skipped first (after the cursor's position when both are given)


class JsonValue(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class DocumentsApi(Protocol):
    """Document lists and stories, limited to a caller's scope (an OrganId subtree; None = everything).

    A document is in scope when its sender or one of its recipients is; a story shows only the recipients in
    scope. Out-of-scope and unknown ids both raise ``NotFoundError`` (no probing by id).
    """

    def list_documents(self, query: DocumentQuery, *, scope: str | None = None) -> JsonValue: ...

    def document_story(self, doc_id: str, *, scope: str | None = None) -> JsonValue: ...


__all__ = ["MAX_PAGE", "DocumentQuery", "DocumentsApi", "JsonValue"]
