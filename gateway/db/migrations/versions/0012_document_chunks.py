"""Big packages stored in pieces (issue 14): ``document_chunks`` and ``documents.raw_chunks``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

A package above 1 MiB is no longer one ``documents.raw`` value (which the database driver receives and returns
whole, so a 20 MB package cost its size several times over in a worker): its bytes are rows of
``document_chunks`` (``doc_id``, ``seq`` 0…n-1, ``data`` of 1 MiB), written in the intake transaction, and
``documents.raw_chunks`` says how many (0: the bytes are ``raw``, as before — every existing row). The design and
its measurements are in :mod:`gateway.db.chunks`. Existing rows are not rewritten: readers take both forms.

Self-contained (plain ``sa`` types), like 0001–0011.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("raw_chunks", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "document_chunks",
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["doc_id"], ["documents.doc_id"], name=op.f("fk_document_chunks_doc_id_documents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("doc_id", "seq", name=op.f("pk_document_chunks")),
    )


def downgrade() -> None:
    # A downgrade would leave chunked documents without their bytes: refuse while any exists.
    bind = op.get_bind()
    chunked = bind.execute(sa.text("SELECT count(*) FROM documents WHERE raw_chunks > 0")).scalar()
    if chunked:
        raise RuntimeError(
            f"{chunked} documents keep their bytes in document_chunks; downgrading below 0012 would lose them"
        )
    op.drop_table("document_chunks")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("raw_chunks")
