"""Signer certificates seen at intake (``signer_certificates``): the certificate watch's memory (issue 9).

Every package with a VALID signature records its signer certificate under the sending agency, inside intake's one
transaction (:func:`record_signer`, called by :func:`gateway.db.documents.write_document`). The watch
(:mod:`gateway.services.certwatch`) reads them back with :meth:`SignerCertificateRepository.list`.

Cost on the intake hot path: ONE statement (issue 14). The row is inserted if new, else ``last_seen_at`` is
refreshed only when older than ``now - LAST_SEEN_STEP``. The guard is the point: an unconditional upsert would make
every concurrent intake of one signer wait on that one row's lock until the other transaction commits (PostgreSQL
locks the conflicting row even when ``DO UPDATE … WHERE`` skips it). So on PostgreSQL it is an ``INSERT … ON
CONFLICT DO NOTHING`` and a guarded ``UPDATE`` in one statement (a data-modifying CTE: a guarded UPDATE whose
WHERE is false takes no lock); SQLite, with one writer at a time, takes ``ON CONFLICT DO UPDATE … WHERE``. So
``last_seen_at`` is exact to ``LAST_SEEN_STEP``. (Before issue 14 these were two statements, and on PostgreSQL the
UPDATE never ran: the INSERT's ``rowcount`` read -1 there, not 0.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.records import SignerCertificate, from_row, to_values

_c = t.signer_certificates
#: How stale ``last_seen_at`` may get before an intake refreshes it (see the module docstring).
LAST_SEEN_STEP = timedelta(hours=1)
_KEY = ["organ_id", "fingerprint"]


def insert_ignoring_duplicates(conn: Connection, table: Table, index: list[str]) -> Insert:
    """``INSERT … ON CONFLICT (index) DO NOTHING`` in the connection's dialect (SQLite or PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=index)


def record_signer(conn: Connection, cert: SignerCertificate) -> None:
    """Insert the certificate, or refresh its ``last_seen_at`` when older than :data:`LAST_SEEN_STEP` — ONE
    statement on either dialect (module docstring: never a row lock for a refresh that does not happen)."""
    values = to_values(cert)
    values["subject"] = (cert.subject or "")[:1000] or None
    values["issuer"] = (cert.issuer or "")[:1000] or None
    stale = _c.c.last_seen_at < cert.last_seen_at - LAST_SEEN_STEP
    if conn.dialect.name == "postgresql":
        # The INSERT … DO NOTHING and a guarded UPDATE in one statement: both see the snapshot taken before the
        # insert, so the UPDATE touches only a row that already existed, and only a stale one (no lock otherwise).
        inserted = postgresql.insert(_c).values(**values).on_conflict_do_nothing(index_elements=_KEY)
        refresh = update(_c).where(*_key(cert), stale).values(last_seen_at=cert.last_seen_at)
        conn.execute(refresh.add_cte(inserted.returning(_c.c.organ_id).cte("inserted")))
        return
    # SQLite has one writer at a time (BEGIN IMMEDIATE): a conditional upsert locks nothing more than that.
    upsert = sqlite.insert(_c).values(**values)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=_KEY, set_={"last_seen_at": upsert.excluded.last_seen_at}, where=stale
        )
    )


def _key(cert: SignerCertificate) -> tuple[ColumnElement[bool], ...]:
    return (_c.c.organ_id == cert.organ_id, _c.c.fingerprint == cert.fingerprint)


class SignerCertificateRepository(Repository):
    """``store.certificates``."""

    def list(self, organ_ids: list[str] | None = None) -> list[SignerCertificate]:
        """Every recorded signer certificate (optionally of some agencies), by agency, newest expiry first."""
        query = select(_c).order_by(_c.c.organ_id, _c.c.not_after.desc(), _c.c.fingerprint)
        if organ_ids is not None:
            query = query.where(_c.c.organ_id.in_(sorted(organ_ids)))
        with self._db.read() as conn:
            return [_certificate(row) for row in conn.execute(query).mappings()]


def _certificate(row: Any) -> SignerCertificate:
    der = row["der"]
    return from_row(SignerCertificate, row, der=bytes(der) if der is not None else None)


__all__ = ["LAST_SEEN_STEP", "SignerCertificate", "SignerCertificateRepository", "insert_ignoring_duplicates"]
