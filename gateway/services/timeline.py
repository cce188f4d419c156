"""Per-recipient timelines: document lists and stories for operators (``edoc-gateway documents …`` and the admin
API) — :class:`Timelines` meets :class:`gateway.services.tracking_api.DocumentsApi`.

A list is filtered in two stages. SQL (``store.document_queries``) narrows by period, sender, recipient, kind,
delivery state, scope and ASCII text, newest first by keyset. What only the tracking definitions can decide — a
timing rule breached or still open for some visible recipient — is judged here with
:func:`gateway.tracking.facts.assess_delivery` over each scanned batch, the same function the report calls, so a
list filtered on ``late_receipt`` shows exactly the deliveries the report counts as late. Such a filter may have to
read many documents to fill a page: it stops after :data:`SCAN_CAP` and hands back a cursor, so one request never
scans a year of traffic.

Scope (an OrganId subtree, None for everything): a document is listed and told when its sender or one of its
recipients is in scope, and only the recipients in scope are shown (``tracking_api`` contract). Out-of-scope and
unknown ids are the same ``NOT_FOUND``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.db import DeliveryRecord, DocumentRecord, Store
from gateway.db.documents_query import DocumentFilter
from gateway.errors import CursorError, NotFoundError, RequestError
from gateway.services import paging
from gateway.services.timeline_story import assessment_dict, events, header, judgement_dict, related, stamp
from gateway.services.tracking import Tracking
from gateway.services.tracking_api import MAX_PAGE, DocumentQuery
from gateway.tracking.facts import DeliveryFacts, DocumentFacts, assess_delivery, assess_document
from gateway.tracking.rules import Rule, TimingRules

#: Most documents one list request reads while looking for matches of a flag or non-ASCII text filter.
SCAN_CAP = 5000
#: Documents read per SQL round trip while a Python-side filter is active.
_BATCH = 200
OPEN = "open"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_flags(flags: Iterable[str]) -> tuple[tuple[Rule, bool], ...]:
    """``("late_receipt", "not_taken:open")`` → ``((Rule.LATE_RECEIPT, False), (Rule.NOT_TAKEN, True))``."""
    parsed = []
    for flag in flags:
        name, _sep, variant = flag.strip().partition(":")
        try:
            rule = Rule(name)
        except ValueError:
            known = ", ".join(r.value for r in Rule)
            raise RequestError(f"unknown flag {flag!r}: a rule name ({known}), optionally with ':open'") from None
        if variant not in ("", OPEN):
            raise RequestError(f"unknown flag variant {flag!r}: only ':open' is known")
        parsed.append((rule, variant == OPEN))
    return tuple(parsed)


#: The name the cursors of the document list carry (gateway.services.paging).
LISTING = "documents"


def encode_cursor(received_at: datetime, doc_id: str) -> str:
    """The cursor after one document (:func:`gateway.services.paging.encode_cursor`, as every list's)."""
    return paging.encode_cursor(LISTING, (received_at.astimezone(UTC), doc_id))


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The key a document-list cursor carries; REQUEST.CURSOR for anything else."""
    key = paging.decode_cursor(LISTING, cursor)
    if key is None:
        return None
    if len(key) != 2 or not isinstance(key[0], datetime) or not isinstance(key[1], str):
        raise CursorError("the cursor does not fit the document list: start again without it")
    return key[0], key[1]


def _fold(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "").casefold()


def document_facts(doc: DocumentRecord) -> DocumentFacts:
    return DocumentFacts(
        doc_id=doc.doc_id,
        sender=doc.sender,
        document_id=doc.document_id,
        received_at=doc.received_at,
        signature_state=doc.signature_state,
        priority=doc.priority,
        promulgation_date=doc.promulgation_date,
        due_date=doc.due_date,
        code=doc.code,
        subject=doc.subject,
        submitted_by=doc.submitted_by,
    )


@dataclass(frozen=True)
class DocumentItem:
    """One row of a document list: the document, its shown recipients by state, and the rules it trips."""

    doc: DocumentRecord
    recipients: tuple[tuple[str, str], ...]
    breached: tuple[str, ...]
    open: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = self.doc
        return {
            "doc_id": d.doc_id,
            "kind": d.kind,
            "sender": d.sender,
            "document_id": d.document_id,
            "code": d.code,
            "subject": d.subject,
            "status_code": d.status_code,
            "priority": d.priority,
            "signature_state": d.signature_state,
            **stamp("received_at", d.received_at),
            "recipients": len(self.recipients),
            "states": dict(sorted(Counter(state for _r, state in self.recipients).items())),
            "breached": list(self.breached),
            "open": list(self.open),
        }


@dataclass(frozen=True)
class DocumentPage:
    """A page of a document list; ``next_cursor`` is None when nothing is left to read. ``total`` counts every
    matching document when SQL decides every filter; None when a timing-rule flag or a non-ASCII text filter is
    judged here (counting would mean judging every document: ``scanned`` says how many this page read)."""

    items: tuple[DocumentItem, ...]
    next_cursor: str | None
    as_of: datetime
    scanned: int
    total: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [i.to_dict() for i in self.items],
            "total": self.total,
            "next_cursor": self.next_cursor,
            **stamp("as_of", self.as_of),
            "scanned": self.scanned,
        }


@dataclass(frozen=True)
class DocumentStory:
    """A document's header facts, its late-sending judgement, linked documents, and one timeline per recipient."""

    document: dict[str, Any]
    sending: dict[str, Any] | None
    related: list[dict[str, Any]]
    recipients: list[dict[str, Any]]
    as_of: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "late_sending": self.sending,
            "related": self.related,
            "recipients": self.recipients,
            **stamp("as_of", self.as_of),
        }


@dataclass(frozen=True)
class RefusalSummary:
    """Refused intakes of a period, per claimed sending agency and system, by error code."""

    since: datetime
    until: datetime
    rows: tuple[dict[str, Any], ...]

    def by_code(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for row in self.rows:
            counts[row["code"]] += row["count"]
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            **stamp("since", self.since),
            **stamp("until", self.until),
            "rows": list(self.rows),
            "by_code": self.by_code(),
            "total": sum(r["count"] for r in self.rows),
        }


class Timelines:
    """Document lists, stories and refusal counts over one store and one set of timing rules (thread-safe)."""

    def __init__(self, store: Store, rules: TimingRules, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.tracking = Tracking(store, rules, clock=clock)

    # ------------------------------------------------------------------------------------------ lists

    def list_documents(self, query: DocumentQuery, *, scope: str | None = None) -> DocumentPage:
        if not 1 <= query.limit <= MAX_PAGE:
            raise RequestError(f"limit must be between 1 and {MAX_PAGE}")
        if query.kind not in (None, "edoc", "status"):
            raise RequestError(f"unknown kind {query.kind!r}: edoc or status")
        flags = parse_flags(query.flags)
        visible = self.tracking.visible(scope)
        needle = _fold(query.text)
        exact_in_sql = needle.isascii()
        sql = DocumentFilter(
            since=query.since,
            until=query.until,
            sender=query.sender,
            recipient=query.recipient,
            kind=query.kind,
            state=query.state,
            ascii_text=needle if needle and exact_in_sql else None,
            visible=frozenset(visible) if visible is not None else None,
        )
        python_side = bool(flags) or not exact_in_sql
        if query.offset < 0:
            raise RequestError("offset must not be negative", parameter="offset")
        # One row more than a page: whether another page exists is then known without an empty last page.
        batch = max(query.limit + 1, _BATCH) if python_side else query.limit + 1
        as_of = self.clock()
        after = decode_cursor(query.cursor)
        total = None if python_side else self.store.document_queries.count(sql)
        skip = query.offset
        if not python_side and skip:  # every row matches: skip in SQL, by key
            skipped = self.store.document_queries.page(sql, after=after, limit=skip)
            if len(skipped) < skip:
                return DocumentPage((), None, as_of, len(skipped), total)
            after = (skipped[-1].received_at, skipped[-1].doc_id)
            skip = 0
        found: list[DocumentItem] = []
        scanned = 0
        while True:
            rows = self.store.document_queries.page(sql, after=after, limit=batch)
            for index, item in enumerate(self._items(rows, visible, as_of)):
                scanned += 1
                after = (item.doc.received_at, item.doc.doc_id)
                if _matches(item, flags, needle):
                    if skip:
                        skip -= 1
                        continue
                    found.append(item)
                if len(found) == query.limit:
                    more = index < len(rows) - 1 or len(rows) == batch
                    cursor = encode_cursor(*after) if more else None
                    return DocumentPage(tuple(found), cursor, as_of, scanned, total)
            if len(rows) < batch:
                return DocumentPage(tuple(found), None, as_of, scanned, total)
            if scanned >= SCAN_CAP:
                assert after is not None
                return DocumentPage(tuple(found), encode_cursor(*after), as_of, scanned, total)

    def _items(self, rows: list[DocumentRecord], visible: set[str] | None, as_of: datetime) -> list[DocumentItem]:
        """Each row with its shown recipients and the rules breached/open for the document or any of them."""
        states = self.store.document_queries.recipients_of([r.doc_id for r in rows])
        edocs = [r.doc_id for r in rows if r.kind == "edoc"]
        facts: dict[str, list[DeliveryFacts]] = {}
        if edocs:
            for f in self.store.tracking.deliveries(doc_ids=edocs):
                facts.setdefault(f.document.doc_id, []).append(f)
        items = []
        for doc in rows:
            breached: set[str] = set()
            still_open: set[str] = set()
            sending = assess_document(document_facts(doc), self.rules) if doc.kind == "edoc" else None
            if sending is not None and sending.breached:
                breached.add(sending.rule.value)
            for f in facts.get(doc.doc_id, ()):
                if visible is not None and f.recipient not in visible:
                    continue
                for rule, j in assess_delivery(f, self.rules, as_of).judgements.items():
                    if j.breached:
                        breached.add(rule.value)
                    if j.open:
                        still_open.add(rule.value)
            shown = tuple((r, s) for r, s in states.get(doc.doc_id, ()) if visible is None or r in visible)
            items.append(DocumentItem(doc, shown, _in_rule_order(breached), _in_rule_order(still_open)))
        return items

    # ------------------------------------------------------------------------------------------ stories

    def visible_document(self, doc_id: str, visible: set[str] | None) -> tuple[DocumentRecord, list[DeliveryRecord]]:
        """The document and its deliveries shown to a caller who sees ``visible`` (None: everything) — the one
        scope rule of stories and raw downloads; NOT_FOUND alike for unknown and out-of-scope ids."""
        doc = self.store.documents.document(doc_id)
        deliveries = self.store.deliveries.for_document(doc_id) if doc is not None else []
        shown = [d for d in deliveries if visible is None or d.recipient in visible]
        if doc is None or (visible is not None and doc.sender not in visible and not shown):
            raise NotFoundError(f"no document {doc_id} visible here", doc_id=doc_id)
        return doc, shown

    def document_story(self, doc_id: str, *, scope: str | None = None) -> DocumentStory:
        visible = self.tracking.visible(scope)
        doc, shown = self.visible_document(doc_id, visible)
        as_of = self.clock()
        facts: dict[str, DeliveryFacts] = {}
        sending = None
        if doc.kind == "edoc":
            facts = {f.recipient: f for f in self.store.tracking.deliveries(doc_ids=[doc_id])}
            sending = assess_document(document_facts(doc), self.rules)
        attempts = self.store.document_queries.attempts_of([d.delivery_id for d in shown])
        audit = self.store.document_queries.audit_of(doc_id)
        history = self.store.statuses.history(doc_id)
        names = {
            a.organ_id: a.name
            for a in self.store.registry.agencies([doc.sender, *(d.recipient for d in shown)]).values()
        }
        recipients = [
            {
                "recipient": d.recipient,
                "name": names.get(d.recipient),
                "delivery_id": d.delivery_id,
                "channel": d.channel,
                "state": d.state,
                "events": [e.to_dict() for e in events(doc, d, attempts.get(d.delivery_id, []), audit, history)],
                "facts": self._facts(facts.get(d.recipient), as_of),
            }
            for d in shown
        ]
        sender_seen = visible is None or doc.sender in visible
        linked = [
            r for r in self.store.document_queries.related_of(doc) if sender_seen or (visible and r.sender in visible)
        ]
        return DocumentStory(
            document=header(doc, names.get(doc.sender)),
            sending=judgement_dict(sending) if sending is not None else None,
            related=related(doc, linked),
            recipients=recipients,
            as_of=as_of,
        )

    def _facts(self, f: DeliveryFacts | None, as_of: datetime) -> dict[str, Any] | None:
        return assessment_dict(assess_delivery(f, self.rules, as_of)) if f is not None else None

    # ------------------------------------------------------------------------------------------ refusals

    def refusals(self, since: datetime, until: datetime, *, scope: str | None = None) -> RefusalSummary:
        """Refused intakes in [since, until) per claimed sending agency and system, by error code."""
        visible = self.tracking.visible(scope)
        counted = self.store.tracking.refusals(since, until, organ_ids=visible)
        names = {a.organ_id: a.name for a in self.store.registry.agencies(o for o, _s, _c, _n in counted if o).values()}
        rows = tuple(
            {"organ_id": o, "name": names.get(o) if o else None, "system_id": s, "code": c, "count": n}
            for o, s, c, n in counted
        )
        return RefusalSummary(since, until, rows)


def _matches(item: DocumentItem, flags: tuple[tuple[Rule, bool], ...], needle: str) -> bool:
    for rule, want_open in flags:
        if rule.value not in (item.open if want_open else item.breached):
            return False
    return not needle or needle in _fold(item.doc.code) or needle in _fold(item.doc.subject)


def _in_rule_order(names: set[str]) -> tuple[str, ...]:
    return tuple(r.value for r in Rule if r.value in names)


__all__ = [
    "SCAN_CAP",
    "DocumentItem",
    "DocumentPage",
    "DocumentStory",
    "RefusalSummary",
    "Timelines",
    "decode_cursor",
    "encode_cursor",
    "parse_flags",
]
