"""Initial schema: registry, systems, documents, deliveries, status history, outbox, audit, WS-Security nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Self-contained on purpose (plain ``sa`` types, no import of ``gateway.db.tables``): a migration describes
the schema as it was at this revision, whatever the models become later. ``sa.DateTime(timezone=True)`` is
what ``tables.UTCDateTime`` stores.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("organ_id", sa.String(35), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("parent", sa.String(35), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("system_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), server_default="mailbox", nullable=False),
        sa.Column("endpoint", sa.String(1000), nullable=True),
        sa.Column("signature_policy", sa.String(20), server_default="verify-if-present", nullable=False),
        sa.Column("allow_sha1", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("emit_arrived_on_ack", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        sa.CheckConstraint("channel IN ('mailbox', 'soap', 'rest', 'vdxp')", name=op.f("ck_agencies_channel")),
        sa.CheckConstraint(
            "signature_policy IN ('require', 'verify-if-present', 'off')", name=op.f("ck_agencies_signature_policy")
        ),
        sa.PrimaryKeyConstraint("organ_id", name=op.f("pk_agencies")),
    )
    op.create_index(op.f("ix_agencies_parent"), "agencies", ["parent"])

    op.create_table(
        "audit_log",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _utc("at"),
        sa.Column("system_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("doc_id", sa.String(32), nullable=True),
        sa.Column("organ_id", sa.String(35), nullable=True),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_doc_id"), "audit_log", ["doc_id"])

    op.create_table(
        "documents",
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sender", sa.String(35), nullable=False),
        sa.Column("document_id", sa.String(200), nullable=False),
        sa.Column("bussiness_doc_type", sa.SmallInteger(), nullable=True),
        sa.Column("status_code", sa.String(2), nullable=True),
        sa.Column("related_doc_id", sa.String(32), nullable=True),
        sa.Column("idem_key", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        _utc("received_at"),
        sa.Column("submitted_by", sa.String(64), nullable=True),
        sa.Column("emitted_by_gateway", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("signature_state", sa.String(24), nullable=False),
        sa.Column("signer_subject", sa.String(1000), nullable=True),
        sa.Column("signer_fingerprint", sa.String(64), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("code", sa.String(100), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.CheckConstraint("kind IN ('edoc', 'status')", name=op.f("ck_documents_kind")),
        sa.ForeignKeyConstraint(
            ["related_doc_id"], ["documents.doc_id"], name=op.f("fk_documents_related_doc_id_documents")
        ),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_documents")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_documents_idem_key")),
    )
    op.create_index(op.f("ix_documents_document_id_sender"), "documents", ["document_id", "sender"])
    op.create_index(op.f("ix_documents_received_at"), "documents", ["received_at"])
    op.create_index(op.f("ix_documents_related_doc_id"), "documents", ["related_doc_id"])

    op.create_table(
        "systems",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_systems")),
    )

    op.create_table(
        "wss_nonces",
        sa.Column("system_id", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("system_id", "nonce", name=op.f("pk_wss_nonces")),
    )
    op.create_index(op.f("ix_wss_nonces_created_at"), "wss_nonces", ["created_at"])

    op.create_table(
        "agency_certificates",
        sa.Column("organ_id", sa.String(35), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["organ_id"],
            ["agencies.organ_id"],
            name=op.f("fk_agency_certificates_organ_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organ_id", "fingerprint", name=op.f("pk_agency_certificates")),
    )

    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(35), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        _utc("created_at"),
        _utc("fetched_at", nullable=True),
        _utc("acknowledged_at", nullable=True),
        sa.Column("ack_outcome", sa.String(8), nullable=True),
        sa.Column("ack_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'fetched', 'delivered', 'failed', 'dead')", name=op.f("ck_deliveries_state")
        ),
        sa.ForeignKeyConstraint(["doc_id"], ["documents.doc_id"], name=op.f("fk_deliveries_doc_id_documents")),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("doc_id", "recipient", name=op.f("uq_deliveries_doc_id_recipient")),
    )
    op.create_index(
        op.f("ix_deliveries_recipient_state_created_at"), "deliveries", ["recipient", "state", "created_at"]
    )

    op.create_table(
        "status_history",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(35), nullable=False),
        sa.Column("reporter", sa.String(35), nullable=False),
        sa.Column("status_code", sa.String(2), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=True),
        _utc("received_at"),
        sa.Column("status_doc_id", sa.String(32), nullable=True),
        sa.Column("out_of_order", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("emitted_by_gateway", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["doc_id"], ["documents.doc_id"], name=op.f("fk_status_history_doc_id_documents")),
        sa.ForeignKeyConstraint(
            ["status_doc_id"], ["documents.doc_id"], name=op.f("fk_status_history_status_doc_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    op.create_index(op.f("ix_status_history_doc_id_recipient"), "status_history", ["doc_id", "recipient"])

    op.create_table(
        "system_agencies",
        sa.Column("system_id", sa.String(64), nullable=False),
        sa.Column("organ_id", sa.String(35), nullable=False),
        sa.ForeignKeyConstraint(
            ["organ_id"],
            ["agencies.organ_id"],
            name=op.f("fk_system_agencies_organ_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["systems.id"], name=op.f("fk_system_agencies_system_id_systems"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("system_id", "organ_id", name=op.f("pk_system_agencies")),
    )
    op.create_index(op.f("ix_system_agencies_organ_id"), "system_agencies", ["organ_id"])

    op.create_table(
        "outbox",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.delivery_id"], name=op.f("fk_outbox_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_outbox_delivery_id")),
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "system_agencies",
        "status_history",
        "deliveries",
        "agency_certificates",
        "wss_nonces",
        "systems",
        "documents",
        "audit_log",
        "agencies",
    ):
        op.drop_table(table)
