"""VDXP replay protection per system (issue 10 finding 7).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

* ``systems``: ``vdxp_replay`` (``strict`` | ``legacy-sdk``, CHECK), ``vdxp_allow_from`` (JSON list of CIDRs),
  ``vdxp_client_certs`` (JSON list of SHA-256 fingerprints of bound TLS client certificates).
* new table ``vdxp_signatures``: the replay cache of strict systems, one row per accepted signature until its
  signed timestamp leaves the window (``expires_at``, indexed for the purge).

Existing systems become ``strict``, as new ones are: before this revision ``/vdxp`` accepted any signed request
forever, and no setting can say which systems run the stock VNPT SDK (fixed timestamp). Those are refused with
``AUTH.STALE`` after the upgrade until the operator binds them: ``edoc-gateway systems update ID --vdxp-replay
legacy-sdk --allow-from CIDR`` (README, upgrade notes). Secure by default; the refusal names the fix.

Self-contained (plain ``sa`` types), like 0001–0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # batch: SQLite adds a CHECK constraint only by rebuilding the table (alembic does it; PostgreSQL alters).
    with op.batch_alter_table("systems") as batch:
        batch.add_column(sa.Column("vdxp_replay", sa.String(16), server_default="strict", nullable=False))
        batch.add_column(sa.Column("vdxp_allow_from", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("vdxp_client_certs", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_systems_vdxp_replay"), sa.text("vdxp_replay IN ('strict', 'legacy-sdk')")
        )
    op.create_table(
        "vdxp_signatures",
        sa.Column("system_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system_id", "signature", name=op.f("pk_vdxp_signatures")),
    )
    op.create_index(op.f("ix_vdxp_signatures_expires_at"), "vdxp_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_vdxp_signatures_expires_at"), table_name="vdxp_signatures")
    op.drop_table("vdxp_signatures")
    with op.batch_alter_table("systems") as batch:
        batch.drop_constraint(op.f("ck_systems_vdxp_replay"), type_="check")
        for column in ("vdxp_client_certs", "vdxp_allow_from", "vdxp_replay"):
            batch.drop_column(column)
