"""Writing a planned history (:mod:`gateway.demo.history`) into a gateway database, fast enough for a national year.

Bulk inserts with SQLAlchemy Core (``executemany`` per table, one transaction per batch of documents), not the
intake path: a year of 500 000 deliveries through intake would take hours and measure intake, not the report.

The stored package bytes are a short placeholder, not edXML: nothing on the tracking/report path reads
``documents.raw`` (:mod:`gateway.db.tracking` selects metadata columns only), and the generated deliveries have no
outbox rows, so no worker pushes them. Do not point a recipient's real system at a generated mailbox: GetEdoc
would hand it the placeholder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from gateway.db import AgencyRecord, Store
from gateway.db import tables as t
from gateway.demo.history import iter_documents, plan_agencies, plan_history, plan_refusals
from gateway.demo.history_model import HistoryPlan, HistorySpec, PlannedAgency, PlannedDocument, PlannedRefusal
from gateway.tracking.calendar import LOCAL_TZ

_BATCH = 2000
_PLACEHOLDER = b"<!-- generated tracking history: metadata only, no edXML package -->"
#: What the gateway records as the acknowledgement outcome per final state (mailbox ack, push accept, dead letter).
_ACK_OUTCOMES = {"delivered": "done", "failed": "fail", "dead": "fail"}
_ENDPOINTS = {"soap": "http://127.0.0.1:9/soap", "vdxp": "http://127.0.0.1:9/vdxp"}


@dataclass(frozen=True)
class HistoryCounts:
    agencies: int
    documents: int
    deliveries: int
    statuses: int
    refusals: int


def generate_history(store: Store, spec: HistorySpec) -> HistoryPlan:
    """Plan and store a history; returns the whole plan (tests compute their expectations from it)."""
    plan = plan_history(spec)
    write_agencies(store, plan.agencies, now=spec.since)
    write_documents(store, plan.documents)
    write_refusals(store, plan.refusals)
    return plan


def stream_history(store: Store, spec: HistorySpec) -> HistoryCounts:
    """Plan and store a history without keeping it (national volumes); returns what was written."""
    agencies = plan_agencies(spec)
    write_agencies(store, agencies, now=spec.since)
    documents, deliveries, statuses = write_documents(store, iter_documents(spec, agencies))
    refusals = plan_refusals(spec, agencies)
    write_refusals(store, refusals)
    return HistoryCounts(len(agencies), documents, deliveries, statuses, len(refusals))


def write_agencies(store: Store, agencies: Iterable[PlannedAgency], *, now: datetime) -> None:
    records = [
        AgencyRecord(
            organ_id=a.organ_id,
            name=a.name,
            parent=a.parent,
            level=a.level,
            channel=a.channel,
            endpoint=_ENDPOINTS.get(a.channel),
            emit_arrived_on_ack=a.emits_01_on_ack,
        )
        for a in agencies
    ]
    store.registry.upsert_agencies(records, now=now)


def write_documents(store: Store, documents: Iterable[PlannedDocument]) -> tuple[int, int, int]:
    """Insert in batches of documents; returns (documents, deliveries, status rows)."""
    totals = [0, 0, 0]
    batch: list[PlannedDocument] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) >= _BATCH:
            _write_batch(store, batch, totals)
            batch = []
    if batch:
        _write_batch(store, batch, totals)
    return totals[0], totals[1], totals[2]


def _write_batch(store: Store, batch: list[PlannedDocument], totals: list[int]) -> None:
    docs, deliveries, statuses = [], [], []
    for doc in batch:
        docs.append(_document_row(doc))
        for d in doc.deliveries:
            deliveries.append(
                {
                    "delivery_id": d.delivery_id,
                    "doc_id": doc.doc_id,
                    "recipient": d.recipient,
                    "state": d.state,
                    "created_at": d.created_at,
                    "fetched_at": d.fetched_at,
                    "acknowledged_at": d.acknowledged_at,
                    "ack_outcome": _ACK_OUTCOMES.get(d.state),
                    "attempts": 0 if d.channel == "mailbox" else 1 + (d.state == "dead") * 9,
                    "channel": d.channel,
                }
            )
            statuses += [
                {
                    "doc_id": doc.doc_id,
                    "recipient": d.recipient,
                    "reporter": d.recipient,
                    "status_code": s.code,
                    "timestamp": s.at.astimezone(LOCAL_TZ).replace(tzinfo=None, microsecond=0),
                    "received_at": s.at,
                    "emitted_by_gateway": s.by_gateway,
                }
                for s in d.statuses
            ]
    with store.engine.begin() as conn:
        conn.execute(insert(t.documents), docs)
        conn.execute(insert(t.deliveries), deliveries)
        if statuses:
            conn.execute(insert(t.status_history), statuses)
    totals[0] += len(docs)
    totals[1] += len(deliveries)
    totals[2] += len(statuses)


def _document_row(doc: PlannedDocument) -> dict[str, Any]:
    meta = {
        "priority": doc.priority,
        "promulgation_date": doc.promulgation_date.isoformat() if doc.promulgation_date else None,
        "due_date": doc.due_date.isoformat() if doc.due_date else None,
        "generated": True,
    }
    return {
        "doc_id": doc.doc_id,
        "kind": "edoc",
        "sender": doc.sender,
        "document_id": doc.document_id,
        "bussiness_doc_type": 0,
        "idem_key": hashlib.sha256(f"history:{doc.doc_id}".encode()).hexdigest(),
        "sha256": hashlib.sha256(_PLACEHOLDER + doc.doc_id.encode()).hexdigest(),
        "size": len(_PLACEHOLDER),
        "raw": _PLACEHOLDER,
        "received_at": doc.received_at,
        "submitted_by": doc.submitted_by,
        "signature_state": doc.signature_state,
        "subject": f"Văn bản {doc.document_id.split(',')[-1]}",
        "code": doc.document_id.split(",")[-1],
        "meta": meta,
        "priority": doc.priority,
        "promulgation_date": doc.promulgation_date,
        "due_date": doc.due_date,
    }


def write_refusals(store: Store, refusals: Iterable[PlannedRefusal]) -> None:
    rows = [
        {
            "at": r.at,
            "system_id": r.system_id,
            "action": "intake.refused",
            "organ_id": r.organ_id,
            "outcome": r.code,
            "detail": {"generated": True},
        }
        for r in refusals
    ]
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(t.audit_log), rows)


__all__ = ["HistoryCounts", "generate_history", "stream_history", "write_agencies", "write_documents"]
