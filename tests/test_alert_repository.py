"""The alert store on SQLite and PostgreSQL: an alert is raised once per (rule, subject, state); raising it again
is not new; a resolved one raised again is re-opened, not raised twice (its notification already went out).

Found by counting statements (issue 14): the "insert or do nothing" answered rowcount -1 on PostgreSQL under
SQLAlchemy 2.1, so every repeat counted as new and a resolved alert was never re-opened there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.db import NewAlert, Store, create_engine

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    yield s
    s.engine.dispose()


def _alerts(at: datetime) -> list[NewAlert]:
    return [NewAlert(rule="dead_letter", subject_key=f"d{i}", state_key="dead", raised_at=at) for i in range(3)]


def test_an_alert_is_raised_once_and_a_resolved_one_is_reopened(store: Store):
    assert store.alerts.raise_alerts(_alerts(T0)) == 3
    assert store.alerts.raise_alerts(_alerts(T0 + timedelta(minutes=5))) == 0  # the same three: nothing new
    opened = store.alerts.open_alerts()
    assert len(opened) == 3
    assert store.alerts.resolve([a.id for a in opened[:2]], T0 + timedelta(minutes=10)) == 2
    assert len(store.alerts.open_alerts()) == 1
    assert store.alerts.raise_alerts(_alerts(T0 + timedelta(minutes=15))) == 0  # re-opened, not raised again
    again = store.alerts.open_alerts()
    assert sorted(a.id for a in again) == sorted(a.id for a in opened)
    assert all(a.raised_at == T0 for a in again)
