"""An index for the operators' delivery list across all states and recipients (issue 11 item 7).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

``deliveries list`` (and ``GET /admin/v1/deliveries``) without a state or recipient filter pages by
``(created_at DESC, delivery_id)``. The existing indexes all lead with ``recipient`` or ``state``, so the first page
sorted every delivery (77 ms at 50,000 deliveries on SQLite, growing with the table); with ``created_at`` leading,
a page is an index range scan however large the table and however deep the cursor.

Self-contained (plain ``sa`` types), like 0001–0006.
"""

from __future__ import annotations

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_deliveries_created_at_delivery_id"), "deliveries", ["created_at", "delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_created_at_delivery_id"), table_name="deliveries")
