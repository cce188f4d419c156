"""Aggregated refusals (issue 10 "Hostile clients"): ``refusal_counts``.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10

One row per (window, source address, claimed system, code) with a count and the first and last time: a flood of
bad logins adds to a counter instead of filling ``audit_log`` (whose row is written once, for the first refusal of
each such key), and the counters are what the authentication throttle reads, shared by every worker.

Self-contained (plain ``sa`` types), like 0001–0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "refusal_counts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _utc("window_start"),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _utc("first_at"),
        _utc("last_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusal_counts")),
        sa.UniqueConstraint(
            "window_start",
            "source",
            "principal",
            "code",
            name=op.f("uq_refusal_counts_window_start_source_principal_code"),
        ),
    )
    op.create_index(op.f("ix_refusal_counts_source_window_start"), "refusal_counts", ["source", "window_start"])
    op.create_index(op.f("ix_refusal_counts_principal_window_start"), "refusal_counts", ["principal", "window_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refusal_counts_principal_window_start"), table_name="refusal_counts")
    op.drop_index(op.f("ix_refusal_counts_source_window_start"), table_name="refusal_counts")
    op.drop_table("refusal_counts")
