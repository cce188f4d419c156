"""The signer certificate's row at intake and the process-local memo that skips its statement (issue 14).

:func:`gateway.db.certificates.record_signer` inserts the row or refreshes ``last_seen_at`` once
``LAST_SEEN_STEP`` has passed; :class:`~gateway.db.certificates.SignerMemo` leaves the statement out while it
would change nothing. Real databases (SQLite and PostgreSQL); a second :class:`Store` on the same database is a
second gateway process (its own memo).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from test_store import NOW, new_doc

from gateway.db import AgencyRecord, NewDocument, SignerCertificate, Store, create_engine
from gateway.db.certificates import LAST_SEEN_STEP
from gateway.db.statement_log import StatementLog

A = "000.00.01.H53"
FINGERPRINT = "ab" * 32


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    s.registry.upsert_agencies(
        [AgencyRecord(organ_id=o, name=o) for o in ("000.00.00.H53", A, "000.00.00.G22")], now=NOW
    )
    yield s
    s.engine.dispose()


def _signed(at: datetime) -> NewDocument:
    signer = SignerCertificate(
        organ_id=A,
        fingerprint=FINGERPRINT,
        subject="CN=Văn thư",
        issuer="CN=CA",
        serial="1f",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=700),
        first_seen_at=at,
        last_seen_at=at,
        der=b"\x30\x00",
    )
    return dataclasses.replace(new_doc(at=at), signer=signer)


def _insert(store: Store, at: datetime) -> int:
    """Store a signed document received at ``at``; the number of statements that touched the signer's row."""
    with StatementLog(store.engine) as log:
        store.documents.insert_document(_signed(at))
    return sum("signer_certificates" in entry for entry in log.entries)


def _row(store: Store) -> SignerCertificate:
    [row] = store.certificates.list([A])
    return row


def test_the_statement_runs_once_per_step(store: Store):
    assert _insert(store, NOW) == 1  # new: inserted
    assert _row(store).last_seen_at == NOW
    assert _insert(store, NOW + timedelta(minutes=1)) == 0
    assert _insert(store, NOW + LAST_SEEN_STEP) == 0  # not older than now - step: the guard is false
    assert _row(store).last_seen_at == NOW
    later = NOW + LAST_SEEN_STEP + timedelta(microseconds=1)
    assert _insert(store, later) == 1  # stale: refreshed
    row = _row(store)
    assert (row.first_seen_at, row.last_seen_at) == (NOW, later)
    assert _insert(store, later + timedelta(minutes=30)) == 0


def test_another_process_refreshing_the_row_is_read_back_not_overwritten(store: Store):
    other = Store(store.engine)  # a second gateway process: its own memo
    assert _insert(store, NOW) == 1
    t1 = NOW + LAST_SEEN_STEP + timedelta(minutes=1)
    assert _insert(other, t1) == 1  # the other process refreshes it
    t2 = t1 + timedelta(minutes=1)
    assert _insert(store, t2) == 1  # this memo is stale: the statement runs, finds the row fresh, changes nothing
    assert _row(store).last_seen_at == t1
    assert _insert(store, t2 + timedelta(minutes=1)) == 0  # and now knows the row holds t1
    assert _insert(store, t1 + LAST_SEEN_STEP + timedelta(minutes=1)) == 1  # a step after t1: refreshed
    assert _row(store).last_seen_at == t1 + LAST_SEEN_STEP + timedelta(minutes=1)


def test_a_rolled_back_transaction_is_not_remembered(store: Store):
    """The signer's statement runs, then the audit row breaks a NOT NULL constraint: the whole transaction rolls
    back, so the row is not there, and the next intake must insert it (a memo filled before COMMIT would skip)."""
    broken = _signed(NOW)
    broken = dataclasses.replace(broken, audit=dataclasses.replace(broken.audit, action=None))
    with StatementLog(store.engine) as log, pytest.raises(IntegrityError):
        store.documents.insert_document(broken)
    assert sum("signer_certificates" in e for e in log.entries) == 1 and "ROLLBACK" in log.entries
    assert store.certificates.list([A]) == []
    assert _insert(store, NOW + timedelta(seconds=1)) == 1
    assert _row(store).last_seen_at == NOW + timedelta(seconds=1)
