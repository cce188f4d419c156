"""What the console's Documents pages need beyond the admin API's lists and stories (issue 12 item 1): the package
exactly as it was received, the signer certificate the certificate watch recorded for a document's signature, and
a bounded walk over a document list for the CSV export.

Everything goes through :class:`~gateway.services.timeline.Timelines` — the one scope rule
(:meth:`~gateway.services.timeline.Timelines.visible_document`: a document is visible when its sender or one of its
recipients is in the caller's subtree; unknown and out-of-scope ids are the same NOT_FOUND) and the one list
(:meth:`~gateway.services.timeline.Timelines.list_documents`), so a download or an export can never reach a
document the story or the list would not show. Auditing is the caller's: the console writes ``documents.raw`` and
``documents.export`` with the operator's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from gateway.config import Settings
from gateway.db import Store
from gateway.errors import NotFoundError
from gateway.services.timeline import DocumentItem, Timelines
from gateway.services.tracking_api import MAX_PAGE, DocumentQuery
from gateway.tracking.settings import rules_from

#: Most documents one CSV export holds: a month of a busy province fits; a year is narrowed by period first.
EXPORT_MAX_ROWS: Final = 10_000
#: Most documents one export may read while a timing-rule flag (or a non-ASCII text) is judged outside SQL:
#: ten of the list's own scan caps — the export's whole cost stays bounded even when matches are rare.
EXPORT_MAX_READ: Final = 50_000
#: The media type of an edXML package (an XML document, QCVN 102:2016).
EDXML_MEDIA_TYPE: Final = "application/xml"


@dataclass(frozen=True)
class RawPackage:
    """A stored package's bytes as received, with what a download needs to name them."""

    doc_id: str
    kind: str
    document_id: str
    sha256: str
    body: bytes = field(repr=False)
    media_type: str = EDXML_MEDIA_TYPE

    @property
    def filename(self) -> str:
        """``<doc_id>.edxml`` — the gateway's id (hex), safe in any file system and header."""
        return f"{self.doc_id}.edxml"


@dataclass(frozen=True)
class SignerView:
    """The certificate a document was validly signed with, as the certificate watch recorded it at intake."""

    fingerprint: str
    subject: str | None
    issuer: str | None
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    #: Whether the certificate's validity had ended at ``as_of`` (the signature was checked at receipt time).
    expired_now: bool
    as_of: datetime


@dataclass(frozen=True)
class Export:
    """The rows of an export; ``complete`` is False when more documents match than the caps let one file hold
    (the caller refuses such an export rather than hand out a silently cut list)."""

    items: tuple[DocumentItem, ...]
    complete: bool
    read: int
    total: int | None = None
    limits: dict[str, int] = field(default_factory=lambda: {"rows": EXPORT_MAX_ROWS, "read": EXPORT_MAX_READ})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConsoleDocuments:
    """Raw packages, signer certificates and exports over one store, through the timelines' scope rule."""

    def __init__(self, timelines: Timelines, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._timelines = timelines
        self._store = timelines.store
        self._clock = clock

    @classmethod
    def over(cls, store: Store, settings: Settings, documents: object = None) -> ConsoleDocuments:
        """Over the admin API's own :class:`Timelines` when given one (one set of timing rules per process)."""
        if isinstance(documents, Timelines) and documents.store is store:
            return cls(documents)
        return cls(Timelines(store, rules_from(settings)))

    def _visible(self, scope: str | None) -> set[str] | None:
        return self._timelines.tracking.visible(scope)

    def raw(self, doc_id: str, *, scope: str | None = None) -> RawPackage:
        """The package exactly as received; NOT_FOUND for an unknown id and for one outside ``scope``."""
        doc, _shown = self._timelines.visible_document(doc_id, self._visible(scope))
        body = self._store.documents.raw(doc.doc_id)
        if body is None:  # pragma: no cover - intake stores the bytes in the document's own transaction
            raise NotFoundError(f"no package bytes stored for {doc_id}", doc_id=doc_id)
        return RawPackage(doc.doc_id, doc.kind, doc.document_id, doc.sha256, bytes(body))

    def signer(self, doc_id: str, *, scope: str | None = None) -> SignerView | None:
        """The recorded certificate of the document's valid signature (None when it was not validly signed, or
        the database predates the certificate watch); NOT_FOUND as :meth:`raw`."""
        doc, _shown = self._timelines.visible_document(doc_id, self._visible(scope))
        if doc.signer_fingerprint is None:
            return None
        found = [c for c in self._store.certificates.list([doc.sender]) if c.fingerprint == doc.signer_fingerprint]
        if not found:
            return None
        c, now = found[0], self._clock()
        expired = c.not_after is not None and c.not_after <= now
        return SignerView(c.fingerprint, c.subject, c.issuer, c.serial, c.not_before, c.not_after, expired, now)

    def export(
        self, query: DocumentQuery, *, scope: str | None = None,
        max_rows: int = EXPORT_MAX_ROWS, max_read: int = EXPORT_MAX_READ, page_size: int = MAX_PAGE,
    ) -> Export:  # fmt: skip
        """Every document ``query`` selects (its cursor and offset ignored: an export starts at the newest),
        page by page through the list itself, up to ``max_rows`` rows. Reading stops once ``max_read`` documents
        were read and more remain (one list call reads at most its own ``SCAN_CAP`` beyond that)."""
        page_query = replace(query, cursor=None, offset=0, limit=min(page_size, max_rows + 1))
        items: list[DocumentItem] = []
        read = 0
        total: int | None = None
        while True:
            page = self._timelines.list_documents(page_query, scope=scope)
            total = page.total if total is None else total
            if total is not None and total > max_rows:
                return Export((), False, page.scanned, total, {"rows": max_rows, "read": max_read})
            items.extend(page.items)
            read += page.scanned
            if len(items) > max_rows or (page.next_cursor is not None and read >= max_read):
                return Export((), False, read, total, {"rows": max_rows, "read": max_read})
            if page.next_cursor is None:
                return Export(tuple(items), True, read, total, {"rows": max_rows, "read": max_read})
            page_query = replace(page_query, cursor=page.next_cursor)


__all__ = [
    "EDXML_MEDIA_TYPE",
    "EXPORT_MAX_READ",
    "EXPORT_MAX_ROWS",
    "ConsoleDocuments",
    "Export",
    "RawPackage",
    "SignerView",
]
