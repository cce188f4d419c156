"""Tracking and the Decision-28 report (issue 9).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

* ``documents``: ``priority``, ``promulgation_date``, ``due_date`` (backfilled from ``meta``), and an index by
  (sender, received_at) for per-agency reports.
* ``deliveries``: ``channel`` (backfilled from the registry: how the recipient is reached today is the best
  knowledge of how it was reached), and an index by (recipient, created_at).
* ``agencies``: ``contact_email`` for alert digests.
* new tables ``signer_certificates`` (certificate watch), ``alerts`` (de-duplicated alert record) and
  ``admin_tokens`` (role- and subtree-scoped admin API tokens).

Self-contained (plain ``sa`` types), like 0001/0002.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 2000


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("documents", sa.Column("priority", sa.SmallInteger(), nullable=True))
    op.add_column("documents", sa.Column("promulgation_date", sa.Date(), nullable=True))
    op.add_column("documents", sa.Column("due_date", sa.Date(), nullable=True))
    op.create_index(op.f("ix_documents_sender_received_at"), "documents", ["sender", "received_at"])
    _backfill_documents()

    op.add_column("deliveries", sa.Column("channel", sa.String(16), nullable=True))
    op.execute(
        "UPDATE deliveries SET channel = "
        "(SELECT agencies.channel FROM agencies WHERE agencies.organ_id = deliveries.recipient)"
    )
    op.create_index(op.f("ix_deliveries_recipient_created_at"), "deliveries", ["recipient", "created_at"])

    op.add_column("agencies", sa.Column("contact_email", sa.String(320), nullable=True))

    op.create_table(
        "signer_certificates",
        sa.Column("organ_id", sa.String(35), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(1000), nullable=True),
        sa.Column("issuer", sa.String(1000), nullable=True),
        sa.Column("serial", sa.String(80), nullable=True),
        _utc("not_before", nullable=True),
        _utc("not_after", nullable=True),
        _utc("first_seen_at"),
        _utc("last_seen_at"),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("organ_id", "fingerprint", name=op.f("pk_signer_certificates")),
    )
    op.create_index(op.f("ix_signer_certificates_not_after"), "signer_certificates", ["not_after"])
    _create_alerts()
    op.create_table(
        "admin_tokens",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(35), nullable=True),
        _utc("created_at"),
        _utc("revoked_at", nullable=True),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name=op.f("ck_admin_tokens_role")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_tokens_token_hash")),
    )


def _create_alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(24), nullable=False),
        sa.Column("subject_key", sa.String(200), nullable=False),
        sa.Column("state_key", sa.String(64), nullable=False),
        sa.Column("organ_id", sa.String(35), nullable=True),
        sa.Column("doc_id", sa.String(32), nullable=True),
        sa.Column("delivery_id", sa.String(32), nullable=True),
        _utc("raised_at"),
        _utc("notified_at", nullable=True),
        _utc("resolved_at", nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("rule", "subject_key", "state_key", name=op.f("uq_alerts_rule_subject_key_state_key")),
    )
    op.create_index(op.f("ix_alerts_resolved_at_rule"), "alerts", ["resolved_at", "rule"])


def _backfill_documents() -> None:
    """Copy priority and the two dates out of each edoc's ``meta`` (ISO strings written by routing.plan_edoc)."""
    conn = op.get_bind()
    docs = sa.table(
        "documents",
        sa.column("doc_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("meta", sa.JSON),
        sa.column("priority", sa.SmallInteger),
        sa.column("promulgation_date", sa.Date),
        sa.column("due_date", sa.Date),
    )
    last = ""
    while True:
        rows = conn.execute(
            sa.select(docs.c.doc_id, docs.c.meta)
            .where(docs.c.kind == "edoc", docs.c.doc_id > last)
            .order_by(docs.c.doc_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for doc_id, meta in rows:
            values = _facts(meta)
            if values:
                conn.execute(sa.update(docs).where(docs.c.doc_id == doc_id).values(**values))
        last = rows[-1][0]


def _facts(meta: Any) -> dict[str, Any]:
    if isinstance(meta, str):
        meta = json.loads(meta)
    if not isinstance(meta, dict):
        return {}
    values: dict[str, Any] = {}
    if isinstance(meta.get("priority"), int):
        values["priority"] = meta["priority"]
    for name in ("promulgation_date", "due_date"):
        raw = meta.get(name)
        if isinstance(raw, str) and raw:
            with contextlib.suppress(ValueError):
                values[name] = date.fromisoformat(raw[:10])
    return values


def downgrade() -> None:
    op.drop_table("admin_tokens")
    op.drop_index(op.f("ix_alerts_resolved_at_rule"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_signer_certificates_not_after"), table_name="signer_certificates")
    op.drop_table("signer_certificates")
    with op.batch_alter_table("agencies") as batch:
        batch.drop_column("contact_email")
    op.drop_index(op.f("ix_deliveries_recipient_created_at"), table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("channel")
    op.drop_index(op.f("ix_documents_sender_received_at"), table_name="documents")
    with op.batch_alter_table("documents") as batch:
        for column in ("due_date", "promulgation_date", "priority"):
            batch.drop_column(column)
