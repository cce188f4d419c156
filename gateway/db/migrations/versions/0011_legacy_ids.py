"""The e-doc.vn profile's numeric axis document ids (issue 13 item 1).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-11

Legacy clients of the Bkav axis know a document by a decimal ``long`` (legacy-edoc-vn.md §5: MySQL
auto-increment ``edoc_document.document_id``) — SendDocument answers it, GetPendingDocumentIds lists it,
GetDocument and ConfirmReceived take it — and may store it in a ``long`` column. Our documents are known by a
32-character ``doc_id``, so ``legacy_ids`` maps an auto-increment number to it: one number per document
(``doc_id`` UNIQUE, so two web workers allocating at once cannot give one document two numbers), allocated on
first need, never reused (SQLite ``AUTOINCREMENT``; a PostgreSQL sequence never goes back). Nothing else
changes.

Self-contained (plain ``sa`` types), like 0001–0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "legacy_ids",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["doc_id"], ["documents.doc_id"], name=op.f("fk_legacy_ids_doc_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legacy_ids")),
        sa.UniqueConstraint("doc_id", name=op.f("uq_legacy_ids_doc_id")),
        sqlite_autoincrement=True,  # SQLite reuses the highest id once its row is gone; a number names ONE document
    )


def downgrade() -> None:
    op.drop_table("legacy_ids")
