"""Delivery under faults (issue 11): fencing tokens, attempt intents, circuit breakers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

* ``outbox``: ``fence`` (the fencing token, incremented by every claim) and ``read_timeout`` (the longer read
  timeout of the next attempt after an unknown outcome).
* ``delivery_attempts.outcome`` also takes ``sending`` (the intent, written before the network call) and
  ``unknown`` (its worker vanished before recording the answer).
* new table ``peer_circuits``: one circuit breaker per peer, shared by every worker.

Existing leases keep working: rows claimed before the upgrade have ``fence`` 0 and expire as before. Self-contained
(plain ``sa`` types), like 0001–0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_OLD = "outcome IN ('delivered', 'retry', 'dead')"
_NEW = "outcome IN ('delivered', 'retry', 'dead', 'sending', 'unknown')"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("fence", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("read_timeout", sa.Float(), nullable=True))
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_constraint(op.f("ck_delivery_attempts_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_delivery_attempts_outcome"), sa.text(_NEW))
    op.create_table(
        "peer_circuits",
        sa.Column("peer", sa.String(600), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("opens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('closed', 'open', 'probing')", name=op.f("ck_peer_circuits_state")),
        sa.PrimaryKeyConstraint("peer", name=op.f("pk_peer_circuits")),
    )


def downgrade() -> None:
    op.drop_table("peer_circuits")
    op.execute("UPDATE delivery_attempts SET outcome = 'retry' WHERE outcome IN ('sending', 'unknown')")
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_constraint(op.f("ck_delivery_attempts_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_delivery_attempts_outcome"), sa.text(_OLD))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("read_timeout")
        batch.drop_column("fence")
