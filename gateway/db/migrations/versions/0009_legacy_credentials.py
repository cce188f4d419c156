"""Legacy credentials (issue 13 item 2): a system may log in through the e-doc.vn SOAP profile.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10

* ``systems.legacy_organ_id``: the legacy login name, the ``OrganId`` the system authenticates as
  (legacy-edoc-vn.md §3); UNIQUE (one credential per OrganId, as in the axis's ``edoc_dynamiccontact``), NULL
  for every other system. Its legacy ``Token`` is the system's secret — encrypted and hashed like any other.
* ``systems.legacy_scope``: whom it may send as (``From/OrganId`` of SendDocument and UpdateTraces, §16):
  ``strict`` | ``subtree`` | ``explicit``, set exactly when ``legacy_organ_id`` is (CHECK ``legacy_pair``).

Existing systems are not legacy systems (both NULL): nothing changes for them.

Self-contained (plain ``sa`` types), like 0001–0008.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # batch: SQLite adds UNIQUE and CHECK constraints only by rebuilding the table (alembic does it; PostgreSQL alters).
    with op.batch_alter_table("systems") as batch:
        batch.add_column(sa.Column("legacy_organ_id", sa.String(35), nullable=True))
        batch.add_column(sa.Column("legacy_scope", sa.String(16), nullable=True))
        batch.create_unique_constraint(op.f("uq_systems_legacy_organ_id"), ["legacy_organ_id"])
        batch.create_check_constraint(
            op.f("ck_systems_legacy_scope"), sa.text("legacy_scope IN ('strict', 'subtree', 'explicit')")
        )
        batch.create_check_constraint(
            op.f("ck_systems_legacy_pair"), sa.text("(legacy_organ_id IS NULL) = (legacy_scope IS NULL)")
        )


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_constraint(op.f("ck_systems_legacy_pair"), type_="check")
        batch.drop_constraint(op.f("ck_systems_legacy_scope"), type_="check")
        batch.drop_constraint(op.f("uq_systems_legacy_organ_id"), type_="unique")
        batch.drop_column("legacy_scope")
        batch.drop_column("legacy_organ_id")
