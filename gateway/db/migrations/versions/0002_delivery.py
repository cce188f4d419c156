"""Delivery engine (issue 4): the outbox becomes a leased work queue; attempts and worker heartbeats are recorded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

* ``outbox``: ``next_attempt_at`` (due time), ``attempts`` (in the current retry budget), ``claimed_by`` and
  ``lease_until`` (a worker's lease). Rows already waiting are due at once (``next_attempt_at = created_at``);
  rows of deliveries that are already final (a push agency that acknowledged through its mailbox) are removed.
* ``deliveries``: ``attempts``, ``last_attempt_at``, ``last_error``, ``peer_reference``; an index for listing
  by state.
* new tables ``delivery_attempts`` and ``worker_heartbeats``.

Self-contained (plain ``sa`` types), like 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("outbox", _utc("next_attempt_at", nullable=True))
    op.add_column("outbox", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("outbox", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.add_column("outbox", _utc("lease_until", nullable=True))
    op.execute("UPDATE outbox SET next_attempt_at = created_at")
    op.execute(
        "DELETE FROM outbox WHERE delivery_id IN "
        "(SELECT delivery_id FROM deliveries WHERE state NOT IN ('queued', 'fetched'))"
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("next_attempt_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index(op.f("ix_outbox_next_attempt_at"), "outbox", ["next_attempt_at"])

    op.add_column("deliveries", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("deliveries", _utc("last_attempt_at", nullable=True))
    op.add_column("deliveries", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column("deliveries", sa.Column("peer_reference", sa.String(200), nullable=True))
    op.create_index(op.f("ix_deliveries_state_created_at"), "deliveries", ["state", "created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=True),
        _utc("started_at"),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("error_code", sa.String(60), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("peer_answer", sa.Text(), nullable=True),
        sa.Column("peer_reference", sa.String(200), nullable=True),
        _utc("next_attempt_at", nullable=True),
        sa.CheckConstraint("outcome IN ('delivered', 'retry', 'dead')", name=op.f("ck_delivery_attempts_outcome")),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.delivery_id"], name=op.f("fk_delivery_attempts_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts", ["delivery_id"])

    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _utc("started_at"),
        _utc("seen_at"),
        _utc("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_index(op.f("ix_delivery_attempts_delivery_id"), table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index(op.f("ix_deliveries_state_created_at"), table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        for column in ("peer_reference", "last_error", "last_attempt_at", "attempts"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_outbox_next_attempt_at"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        for column in ("lease_until", "claimed_by", "attempts", "next_attempt_at"):
            batch.drop_column(column)
