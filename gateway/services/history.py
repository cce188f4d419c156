"""Document history: what a system may see of the documents its agencies sent or received.

:meth:`DocumentHistory.document_view` answers ``GetStatusHistory`` (per recipient: delivery state and business
status history), :meth:`DocumentHistory.sent_list` the VDXP ``getSentEdocList``. The sender's systems see every
recipient; a recipient's systems see only their own agencies' rows. A document the system may not see is
``NOT_FOUND``, like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from gateway.db import DocumentRecord, Store
from gateway.edxml import PackageKind
from gateway.errors import NotFoundError, RequestError
from gateway.services.access import acting_for, acts_for
from gateway.services.api import DeliveryState, DocumentView, RecipientView, SentItem
from gateway.services.values import sent_item, status_entry

#: Most (document, recipient) rows one sent-list answer carries.
MAX_SENT: Final = 5000


class DocumentHistory:
    """The history views of :class:`gateway.services.api.GatewayApi` (thread-safe)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def document_view(
        self, system_id: str, *, document_id: str | None = None, doc_id: str | None = None
    ) -> DocumentView:
        acting = acting_for(self.store, system_id)
        if (document_id is None) == (doc_id is None):
            raise RequestError("give exactly one of document_id and doc_id")
        doc = self._by_doc_id(acting, doc_id) if doc_id is not None else self._by_document_id(acting, document_id)
        if doc is None:
            raise NotFoundError("no such document visible to this system", document_id=document_id, doc_id=doc_id)
        sender_side = acts_for(acting, doc.sender)
        history = self.store.statuses.history(doc.doc_id)
        views = [
            RecipientView(
                recipient=d.recipient,
                delivery_id=d.delivery_id,
                state=DeliveryState(d.state),
                fetched_at=d.fetched_at,
                acknowledged_at=d.acknowledged_at,
                ack_reason=d.ack_reason,
                statuses=tuple(status_entry(h) for h in history if h.recipient == d.recipient),
            )
            for d in self.store.deliveries.for_document(doc.doc_id)
            if sender_side or acts_for(acting, d.recipient)
        ]
        return DocumentView(
            doc_id=doc.doc_id,
            document_id=doc.document_id,
            sender=doc.sender,
            received_at=doc.received_at,
            recipients=tuple(views),
        )

    def sent_list(
        self,
        system_id: str,
        kind: PackageKind,
        *,
        doc_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_SENT,
    ) -> list[SentItem]:
        """Documents whose sender the system acts for, like :meth:`document_view`'s sender side."""
        acting = acting_for(self.store, system_id)
        rows = self.store.deliveries.sent_in_scope(
            acting,
            PackageKind(kind).value,
            doc_id=doc_id,
            since=since,
            until=until,
            limit=max(1, min(limit, MAX_SENT)),
        )
        return [sent_item(r) for r in rows if acts_for(acting, r.sender)]

    def _by_doc_id(self, acting: Sequence[str], doc_id: str) -> DocumentRecord | None:
        doc = self.store.documents.document(doc_id)
        if doc is not None and doc.kind == PackageKind.STATUS.value and doc.related_doc_id:
            doc = self.store.documents.document(doc.related_doc_id)  # a status id shows the document it is about
        if doc is not None and not self._visible(acting, doc):
            return None
        return doc

    def _by_document_id(self, acting: Sequence[str], document_id: str | None) -> DocumentRecord | None:
        assert document_id is not None
        for candidate, recipients in self.store.documents.edocs_with_recipients(document_id):
            if acts_for(acting, candidate.sender) or any(acts_for(acting, r) for r in recipients):
                return candidate
        return None

    def _visible(self, acting: Sequence[str], doc: DocumentRecord) -> bool:
        if acts_for(acting, doc.sender):
            return True
        return any(acts_for(acting, d.recipient) for d in self.store.deliveries.for_document(doc.doc_id))


__all__ = ["MAX_SENT", "DocumentHistory"]
