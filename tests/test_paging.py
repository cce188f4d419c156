"""Paging of the operators' lists (issue 11 item 7: ``deliveries list`` stopped at 1000 rows with exit 0).

On SQLite and PostgreSQL: a keyset walk returns every delivery exactly once, in order, even while deliveries are
queued between pages; every page counts all matches; ``offset`` skips; a cursor that is not the list's own is
REQUEST.CURSOR. Then the command line as a user runs it (a real subprocess on a migrated database): the footer says
how many and how to go on, ``--json`` carries ``total`` and ``next_cursor``, a bad cursor is exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_store import new_doc

from gateway.config import load_settings
from gateway.db import AgencyRecord, Store, create_engine
from gateway.db.migrations import upgrade
from gateway.errors import CursorError, RequestError
from gateway.services.admin_auth import AdminAuth
from gateway.services.delivery_admin import DeliveryAdmin, list_deliveries
from gateway.services.paging import MAX_LIMIT, PageRequest, decode_cursor, encode_cursor

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
A, B, C = "000.00.00.H53", "000.00.01.H53", "000.00.00.G22"
EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    s.registry.upsert_agencies([AgencyRecord(organ_id=o, name=o) for o in (A, B, C)], now=T0)
    yield s
    s.engine.dispose()


def _queue(store: Store, count: int, *, start: datetime, ties: int = 3) -> None:
    """``count`` documents to two recipients each; every ``ties`` documents share one intake time (the order
    must then fall back on the delivery id)."""
    for i in range(count):
        store.documents.insert_document(new_doc(recipients=(A, C), at=start + timedelta(seconds=i // ties)))


def test_a_keyset_walk_returns_every_delivery_once_in_order_while_more_are_queued(store):
    _queue(store, 20, start=T0)
    expected = [d.delivery_id for d in list_deliveries(store, page=PageRequest(limit=MAX_LIMIT)).items]
    assert len(expected) == 40
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_deliveries(store, page=PageRequest(limit=7, cursor=cursor))
        pages += 1
        # Newer deliveries queued between pages land before page one: the walk neither repeats nor skips.
        _queue(store, 1, start=T0 + timedelta(hours=1, minutes=pages))
        assert page.total == 40 + 2 * (pages - 1)  # every page counts what matches now
        seen.extend(d.delivery_id for d in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    assert pages == 6  # 7+7+7+7+7+5: the last page says it is the last (no empty extra page)


def test_offset_filters_and_scope_count_the_same_rows(store):
    _queue(store, 5, start=T0)
    everything = list_deliveries(store, page=PageRequest(limit=MAX_LIMIT)).items
    skipped = list_deliveries(store, page=PageRequest(limit=3, offset=4))
    assert [d.delivery_id for d in skipped.items] == [d.delivery_id for d in everything[4:7]]
    assert skipped.total == 10 and skipped.next_cursor is not None
    to_a = list_deliveries(store, recipient=A, page=PageRequest(limit=2))
    assert to_a.total == 5 and {d.recipient for d in to_a.items} == {A}
    # After a cursor, offset counts from the cursor's position.
    after = list_deliveries(store, page=PageRequest(limit=2, offset=1, cursor=to_a.next_cursor), recipient=A)
    assert [d.delivery_id for d in after.items] == [d.delivery_id for d in everything if d.recipient == A][3:5]
    scoped = DeliveryAdmin(store, lambda scope: {C}).list_deliveries(page=PageRequest(limit=1), scope=C)
    assert scoped.total == 5 and scoped.items[0].recipient == C
    assert scoped.to_dict()["total"] == 5 and set(scoped.to_dict()) == {"items", "total", "next_cursor"}


def test_a_cursor_that_is_not_the_lists_own_is_refused(store):
    _queue(store, 2, start=T0)
    AdminAuth(store).create("ops-1", "viewer")
    AdminAuth(store).create("ops-2", "viewer")
    tokens = AdminAuth(store).list_tokens(PageRequest(limit=1))
    assert (tokens.total, [t.name for t in tokens.items]) == (2, ["ops-1"])
    assert [t.name for t in AdminAuth(store).list_tokens(PageRequest(cursor=tokens.next_cursor)).items] == ["ops-2"]
    assert tokens.next_cursor is not None
    for bad in ("garbage!", "e30", tokens.next_cursor, encode_cursor("deliveries", ["only-one-value"])):
        with pytest.raises(CursorError) as info:
            list_deliveries(store, page=PageRequest(cursor=bad))
        assert info.value.code == "REQUEST.CURSOR" and isinstance(info.value, RequestError)
    for limit, offset in ((0, 0), (MAX_LIMIT + 1, 0), (10, -1)):
        with pytest.raises(RequestError) as refused:
            PageRequest(limit=limit, offset=offset)
        assert refused.value.code == "REQUEST.INVALID"


def test_the_cursor_codec_keeps_times_aware_and_names_its_list():
    at = datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=UTC)
    cursor = encode_cursor("deliveries", [at, "abc"])
    assert decode_cursor("deliveries", cursor) == (at, "abc")
    assert "=" not in cursor and decode_cursor("deliveries", None) is None
    with pytest.raises(CursorError, match="another list"):
        decode_cursor("admin-tokens", cursor)
    naive = encode_cursor("deliveries", [at.replace(tzinfo=None), "abc"])
    with pytest.raises(CursorError):
        decode_cursor("deliveries", naive)


# ================================================================================================ command line


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    return subprocess.run(
        [EXE, "--config", str(config), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_the_cli_says_how_many_and_how_to_go_on(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    settings = load_settings(config)
    upgrade(settings)
    engine = create_engine(settings)
    try:
        store = Store(engine)
        store.registry.upsert_agencies([AgencyRecord(organ_id=o, name=o) for o in (A, B, C)], now=T0)
        _queue(store, 3, start=T0)
    finally:
        engine.dispose()

    first = _cli(config, "deliveries", "list", "--limit", "4")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 4  # standard output: one line per row, nothing else
    footer = first.stderr.strip()
    assert footer.startswith("4 of 6 deliveries; more: use --cursor "), footer
    cursor = footer.rsplit(" ", 1)[1]
    rest = _cli(config, "deliveries", "list", "--limit", "4", "--cursor", cursor)
    assert (rest.returncode, rest.stderr.strip()) == (0, "2 of 6 deliveries")
    shown = [line.split()[0] for line in first.stdout.splitlines() + rest.stdout.splitlines()]
    as_json = json.loads(_cli(config, "deliveries", "list", "--json", "--limit", "5", "--offset", "1").stdout)
    assert as_json["total"] == 6 and as_json["next_cursor"] is None
    assert [d["delivery_id"] for d in as_json["items"]] == shown[1:]
    assert len(set(shown)) == 6

    bad = _cli(config, "deliveries", "list", "--cursor", "not-a-cursor")
    assert bad.returncode == 2 and "REQUEST.CURSOR" in bad.stderr and "--cursor" in bad.stderr
    assert _cli(config, "deliveries", "list", "--limit", str(MAX_LIMIT + 1)).returncode == 2
    tokens = _cli(config, "admin-tokens", "list", "--cursor", cursor)  # a deliveries cursor
    assert tokens.returncode == 2 and "another list" in tokens.stderr

    documents = _cli(config, "documents", "list", "--cursor", cursor)  # a deliveries cursor
    assert documents.returncode == 2 and "REQUEST.CURSOR" in documents.stderr
    listed = _cli(config, "documents", "list", "--limit", "2", "--offset", "1")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 3  # 2 rows and the count: the last page
    assert "2 of 3 document(s)" in listed.stdout and "--cursor " not in listed.stdout
    assert "--cursor " in _cli(config, "documents", "list", "--limit", "2").stdout

    agencies = _cli(config, "agencies", "list", "--limit", "2")
    assert [line.split()[0] for line in agencies.stdout.splitlines()] == [C, A]
    assert agencies.stderr.startswith("2 of 3 agencies; more: use --cursor ")
    last = _cli(config, "agencies", "list", "--cursor", agencies.stderr.split()[-1])
    assert ([line.split()[0] for line in last.stdout.splitlines()], last.stderr) == ([B], "1 of 3 agencies\n")
    for listing in (["systems", "list"], ["alerts", "list"], ["admin-tokens", "list"]):
        empty = _cli(config, *listing)
        assert (empty.returncode, empty.stdout, empty.stderr.split()[:3]) == (0, "", ["0", "of", "0"]), listing


def test_registry_and_alert_lists_page_the_same_way(store):
    from gateway.db import NewAlert
    from gateway.services.alerts import recent_alerts
    from gateway.services.registry import Registry

    registry = Registry(store, load_settings(env={"EDOC_GATEWAY_SECRET_KEY": "s" * 24}))
    first = registry.agencies_page(page=PageRequest(limit=2))
    assert ([a.organ_id for a in first.items], first.total) == ([C, A], 3)  # by OrganId
    rest = registry.agencies_page(page=PageRequest(limit=2, cursor=first.next_cursor))
    assert ([a.organ_id for a in rest.items], rest.next_cursor) == ([B], None)
    with pytest.raises(CursorError):
        registry.systems_page(PageRequest(cursor=first.next_cursor))  # an agencies cursor
    for name in ("sys-b", "sys-a", "sys-c"):
        registry.add_system(name, [A])
    systems = registry.systems_page(PageRequest(limit=2, offset=1))
    assert ([s.id for s in systems.items], systems.total, systems.next_cursor) == (["sys-b", "sys-c"], 3, None)
    assert systems.items[0].agencies == (A,)

    fresh = [
        NewAlert(rule="dead_letter", subject_key=f"k{i}", state_key="dead", raised_at=T0 + timedelta(minutes=i // 2))
        for i in range(5)
    ]
    assert store.alerts.raise_alerts(fresh) == 5
    walked, cursor = [], None
    while True:
        page = recent_alerts(store, T0 - timedelta(days=1), PageRequest(limit=2, cursor=cursor))
        assert page.total == 5
        walked += [(a.raised_at, a.id) for a in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert walked == sorted(walked, reverse=True) and len(set(walked)) == 5  # newest first, ties by id
