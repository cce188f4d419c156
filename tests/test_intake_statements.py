"""What one intake asks of the database (issue 14, "fewer statements per intake"), on SQLite and PostgreSQL.

The five cases of ``bench/intake_cases.py`` (signed ~10 KB packages from A, steady state: the signer already seen,
the pool warm), counted by :class:`gateway.db.statement_log.StatementLog` — every statement, BEGIN, COMMIT,
ROLLBACK and (PostgreSQL) pool pre-ping the database receives. Before → after issue 14:

=====================  ====================  ================
case                   SQLite                PostgreSQL
=====================  ====================  ================
edoc, 1 recipient      15 → 11 → 10 → 8      13 → 11 → 10
edoc, 5 recipients     16 → 12 → 11 → 9      14 → 12 → 11
status 01              28 → 17 → 11          23 → 15
duplicate retry         8 → 8 → 6             8 → 8
refusal                 8 → 8 → 6             8 → 8
=====================  ====================  ================

What went: the idempotency key's own SELECT (an edoc's key is answered by the DocumentId rows the document-id
policy reads anyway, in the same lookup; a status's by the UNIQUE constraint at insert), the separate connection
for the DocumentId check, the UPDATE after every known signer's INSERT (one statement now), the status stage's six
reads in five connections (one joined read of the document and its recipients, one aggregate of the pair's
history; the status recipient comes from the lookup). The bounds below are the new counts: the old code fails
them (on PostgreSQL the old edoc counts even lack the signer's UPDATE, which never ran there: with it they were 14
and 15). A duplicate retry and a refusal keep their count (the lookup, then the audit row in its own transaction).
Then the signer's statement went from the steady state: a signer this process recorded within LAST_SEEN_STEP is
not asked about again (:class:`gateway.db.certificates.SignerMemo`); B's first status still records B's.
Then SQLite's reads went without BEGIN/ROLLBACK (:func:`gateway.db.engine.reader`, as PostgreSQL's autocommit
reads): two commands fewer per read connection — the status stage's reads ran in three of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # the cases the bench prints, too
from intake_cases import CASES, Rig

from gateway.db.statement_log import StatementLog
from gateway.demo.pki import DemoPki

#: Upper bounds per case: (SQLite, PostgreSQL).
BOUNDS = {
    CASES[0]: (8, 10),
    CASES[1]: (9, 11),
    CASES[2]: (11, 15),
    CASES[3]: (6, 8),
    CASES[4]: (6, 8),
}


@pytest.fixture
def rig(database_url: str, tmp_path: Path, pki: DemoPki):
    rig = Rig.create(database_url, tmp_path, pki)
    yield rig
    rig.close()


def test_statements_per_intake(rig: Rig):
    engine = rig.svc.store.engine
    column = 1 if engine.dialect.name == "postgresql" else 0
    seen: dict[str, list[str]] = {}
    for case, _system, intake in rig.cases():
        before = rig.svc.store.counts()
        with StatementLog(engine) as log:
            result = intake()
        seen[case] = log.entries
        after = rig.svc.store.counts()
        grown = {table: after[table] - before[table] for table in after if after[table] != before[table]}
        writes = [e for e in log.entries if e.startswith(("INSERT", "UPDATE", "WITH"))]
        # One statement per table written, never an executemany (psycopg 3 runs those row by row).
        assert len(writes) == len(set(writes)) and not any("executemany" in e for e in log.entries), log.entries
        if case in (CASES[0], CASES[1]):  # A's signer was recorded by the warm-up intake: no statement
            assert not any("signer_certificates" in e for e in log.entries), log.entries
        if case == CASES[1]:  # five deliveries, two of them pushed: still one INSERT each
            assert grown == {"documents": 1, "deliveries": 5, "outbox": 2, "audit_log": 1}, grown
        if case == CASES[2]:  # B's first signed package: its certificate is recorded too
            assert grown == {
                "documents": 1,
                "deliveries": 1,
                "status_history": 1,
                "signer_certificates": 1,
                "audit_log": 1,
            }, grown
        if case in (CASES[3], CASES[4]):  # the audit row only, in its own transaction
            assert grown == {"audit_log": 1}, grown
        if case == CASES[4]:
            assert result == "ROUTE.UNKNOWN_RECIPIENT"
    over = {case: entries for case, entries in seen.items() if len(entries) > BOUNDS[case][column]}
    assert not over, "\n".join(
        f"{case}: {len(e)} > {BOUNDS[case][column]}: {' · '.join(e)}" for case, e in over.items()
    )


def test_a_known_signer_costs_no_statement_until_its_step_has_passed(database_url: str, tmp_path: Path, pki: DemoPki):
    """The signer's row is refreshed once LAST_SEEN_STEP has passed (before issue 14 the refresh never ran on
    PostgreSQL: the INSERT … DO NOTHING's rowcount read -1 there) in ONE statement, and within the step this
    process does not even ask (gateway.db.certificates.SignerMemo): time is the service's clock, moved here."""
    from datetime import UTC, datetime, timedelta

    from gateway.db.certificates import LAST_SEEN_STEP

    now = [datetime.now(UTC)]
    rig = Rig.create(database_url, tmp_path, pki, clock=lambda: now[0])
    try:

        def signer_statements() -> int:
            with StatementLog(rig.svc.store.engine) as log:
                rig.svc.submit("sys-a", rig.edoc())
            return sum("signer_certificates" in e for e in log.entries)

        def row():
            [cert] = [c for c in rig.svc.store.certificates.list() if c.organ_id == "000.00.01.H53"]
            return cert

        first = now[0]
        assert signer_statements() == 1  # a new signer: inserted
        now[0] = first + LAST_SEEN_STEP - timedelta(minutes=1)
        assert signer_statements() == 0
        assert row().last_seen_at == first
        now[0] = first + LAST_SEEN_STEP + timedelta(minutes=1)
        assert signer_statements() == 1  # stale: refreshed
        refreshed = row()
        assert refreshed.last_seen_at == now[0] and refreshed.first_seen_at == first
        now[0] += timedelta(minutes=5)
        assert signer_statements() == 0  # within the step: not touched again
        assert row().last_seen_at == refreshed.last_seen_at
    finally:
        rig.close()
