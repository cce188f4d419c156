"""The ``edocvn`` channel (issue 13 item 3): agencies reached through a legacy e-doc.vn axis (Bkav's eDoc), pushed
to by ``adapters.edocvn`` (SendDocument / UpdateTraces).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10

Only the CHECK on ``agencies.channel`` changes (``deliveries.channel`` has none). Downgrading refuses while an
agency is on the channel (the old CHECK would not hold): move those agencies to another channel first.

Self-contained (plain ``sa`` types), like 0001–0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_OLD = "channel IN ('mailbox', 'soap', 'rest', 'vdxp')"
_NEW = "channel IN ('mailbox', 'soap', 'rest', 'vdxp', 'edocvn')"


def _replace(check: str) -> None:
    # batch: SQLite changes a CHECK only by rebuilding the table (alembic does it; PostgreSQL alters).
    with op.batch_alter_table("agencies") as batch:
        batch.drop_constraint(op.f("ck_agencies_channel"), type_="check")
        batch.create_check_constraint(op.f("ck_agencies_channel"), sa.text(check))


def upgrade() -> None:
    _replace(_NEW)


def downgrade() -> None:
    _replace(_OLD)
