"""Signer certificates seen at intake (``signer_certificates``): the certificate watch's memory (issue 9).

Every package with a VALID signature records its signer certificate under the sending agency, inside intake's one
transaction (:func:`record_signer`, called by :func:`gateway.db.documents.write_document`). The watch
(:mod:`gateway.services.certwatch`) reads them back with :meth:`SignerCertificateRepository.list`.

Cost on the intake hot path: at most ONE statement, and usually none (issue 14). The row is inserted if new, else
``last_seen_at`` is refreshed only when older than ``now - LAST_SEEN_STEP``. The guard is the point: an
unconditional upsert would make every concurrent intake of one signer wait on that one row's lock until the other
transaction commits (PostgreSQL locks the conflicting row even when ``DO UPDATE … WHERE`` skips it). So on
PostgreSQL it is an ``INSERT … ON CONFLICT DO NOTHING`` and a guarded ``UPDATE`` in one statement (data-modifying
CTEs: a guarded UPDATE whose WHERE is false takes no lock); SQLite, with one writer at a time (``BEGIN
IMMEDIATE``), takes an upsert. Either statement answers the row's ``last_seen_at`` after it. So ``last_seen_at``
is exact to ``LAST_SEEN_STEP``.

:class:`SignerMemo` (one per store, process-local) remembers that answer once the transaction COMMITTED, and
intake skips the statement while the remembered value is not stale — when the statement would change nothing:
``last_seen_at`` only ever grows (a refresh sets it to an intake's time more than ``LAST_SEEN_STEP`` after the
value it replaces) and rows are never deleted, so the row holds at least the remembered value, and the guard
``last_seen_at < now - LAST_SEEN_STEP`` is false whenever it is false for that value. The first intake of a
signer in a process, and the first after a step, still run it; exactness stays ``LAST_SEEN_STEP``. (A database
restored from a backup under running processes would break "never deleted": restart them, as after any restore.)
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Insert, Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.records import SignerCertificate, from_row, to_values

_c = t.signer_certificates
#: How stale ``last_seen_at`` may get before an intake refreshes it (see the module docstring).
LAST_SEEN_STEP = timedelta(hours=1)
_KEY = ["organ_id", "fingerprint"]
#: Built once, with bound parameters (issue 14: building and compiling them per intake cost more than running
#: them). Named ``v_<column>`` and ``v_stale_before`` (``now - LAST_SEEN_STEP``): a parameter named after a
#: column would also become a SET of the UPDATE (SQLAlchemy's rule for INSERT/UPDATE execution parameters).
_VALUES = {c.name: bindparam(f"v_{c.name}", type_=c.type) for c in _c.c}
_IS_KEY = (_c.c.organ_id == _VALUES["organ_id"], _c.c.fingerprint == _VALUES["fingerprint"])
_STALE = _c.c.last_seen_at < bindparam("v_stale_before", type_=_c.c.last_seen_at.type)


def _postgresql_statement() -> Any:
    """``WITH inserted AS (INSERT … ON CONFLICT DO NOTHING RETURNING), refreshed AS (UPDATE … WHERE stale
    RETURNING) SELECT coalesce(inserted, refreshed, the row as the statement found it)``. All three see the
    snapshot taken before the statement: the UPDATE touches only a row that already existed, and only a stale
    one (no lock otherwise); the last read is NULL only for a row a concurrent transaction inserted meanwhile."""
    inserted = (
        postgresql.insert(_c).values(_VALUES).on_conflict_do_nothing(index_elements=_KEY).returning(_c.c.last_seen_at)
    )
    refreshed = (
        update(_c).where(*_IS_KEY, _STALE).values(last_seen_at=_VALUES["last_seen_at"]).returning(_c.c.last_seen_at)
    )
    ins, ref = inserted.cte("inserted"), refreshed.cte("refreshed")
    found = select(_c.c.last_seen_at).where(*_IS_KEY).scalar_subquery()
    return select(
        func.coalesce(select(ins.c.last_seen_at).scalar_subquery(), select(ref.c.last_seen_at).scalar_subquery(), found)
    )


def _sqlite_statement() -> Any:
    """An upsert that keeps ``last_seen_at`` unless stale, and answers it (``RETURNING``, SQLite ≥ 3.35)."""
    upsert = sqlite.insert(_c).values(_VALUES)
    keep_unless_stale = case((_STALE, upsert.excluded.last_seen_at), else_=_c.c.last_seen_at)
    return upsert.on_conflict_do_update(index_elements=_KEY, set_={"last_seen_at": keep_unless_stale}).returning(
        _c.c.last_seen_at
    )


_RECORD: Final = {"postgresql": _postgresql_statement(), "sqlite": _sqlite_statement()}


def insert_ignoring_duplicates(conn: Connection, table: Table, index: list[str]) -> Insert:
    """``INSERT … ON CONFLICT (index) DO NOTHING`` in the connection's dialect (SQLite or PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=index)


def record_signer(conn: Connection, cert: SignerCertificate) -> datetime | None:
    """Insert the certificate, or refresh its ``last_seen_at`` when older than :data:`LAST_SEEN_STEP` — ONE
    statement on either dialect (module docstring: never a row lock for a refresh that does not happen).

    Returns the row's ``last_seen_at`` after the statement (None when PostgreSQL could not tell: a concurrent
    transaction inserted the row meanwhile), for :class:`SignerMemo` once the transaction has committed."""
    values = to_values(cert)
    values["subject"] = (cert.subject or "")[:1000] or None
    values["issuer"] = (cert.issuer or "")[:1000] or None
    values["stale_before"] = cert.last_seen_at - LAST_SEEN_STEP
    values = {f"v_{name}": value for name, value in values.items()}
    seen: datetime | None = conn.execute(_RECORD[conn.dialect.name], values).scalar()
    return seen


class SignerMemo:
    """The ``last_seen_at`` this process knows each (agency, certificate) row holds at least (module docstring).

    Bounded (a full memo is emptied: the next intake of each signer runs its statement again) and thread-safe.
    Only :meth:`remember` values read back by a COMMITTED :func:`record_signer`: a rolled-back row was never there.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], datetime] = {}

    def fresh(self, cert: SignerCertificate) -> bool:
        """True when :func:`record_signer` would change nothing: the row exists and is not stale at
        ``cert.last_seen_at``."""
        with self._lock:
            seen = self._seen.get((cert.organ_id, cert.fingerprint))
        return seen is not None and not seen < cert.last_seen_at - LAST_SEEN_STEP

    def remember(self, cert: SignerCertificate, seen: datetime | None) -> None:
        if seen is None:
            return
        key = (cert.organ_id, cert.fingerprint)
        with self._lock:
            if len(self._seen) >= self._size and key not in self._seen:
                self._seen.clear()
            if key not in self._seen or self._seen[key] < seen:
                self._seen[key] = seen


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


__all__ = [
    "LAST_SEEN_STEP",
    "SignerCertificate",
    "SignerCertificateRepository",
    "SignerMemo",
    "insert_ignoring_duplicates",
    "record_signer",
]
