"""What the demo's operator console shows: two weeks of generated history of the demo's province, and operator
accounts with passwords made for this run (issue 12 item 4).

**One registry, one province.** The history generator (:mod:`gateway.demo.history`) plans the province Tây Ninh
(``000.00.00.H53``) with departments ``000.00.0d.H53``, level-3 units under each and level-4 units under those, and
the same partner agencies (VPCP, Nghệ An, Bộ Xây dựng) and systems as the demo's own registry — so the two are
merged, not set side by side: the demo's registry (:data:`gateway.demo.setup.DEMO_AGENCIES_CSV`) is the truth for
the units it lists (their names, channels, push endpoints, signature policies), and the history adds the rest of
the province around them. The generated units are named after their place in the tree (``Văn phòng Sở Y tế Tây
Ninh``, ``Phòng Tổng hợp – Ban Tiếp Công dân``), so a person reading the console's tree sees one axis.

**The demo's own mailboxes stay the live traffic's.** Generated documents are metadata with a placeholder body
(:mod:`gateway.demo.history_store`), so no system of the demo may be handed one: a generated delivery to one of
the demo's registry units is kept only when it ended delivered; one still waiting, refused by its recipient or
dead-lettered there is left out (a re-drive or a GetPendingDocuments of the demo's systems would otherwise hand
out the placeholder), and a document left with no delivery is left out too. The late / not-taken / dead cases
therefore sit with the generated units, whose push endpoints are a closed port (a re-drive there fails again,
truthfully).

**Accounts.** An unscoped admin and a viewer scoped to the Văn phòng UBND tỉnh subtree, each with a password from
:mod:`secrets` made for this run only: printed once in the demo's banner, stored only as argon2 hashes.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config import Settings
from gateway.db import Store, create_engine
from gateway.demo.history import plan_history
from gateway.demo.history_model import HistorySpec, PlannedAgency, PlannedDocument
from gateway.demo.history_store import write_agencies, write_documents, write_refusals
from gateway.services.admin_roles import Role
from gateway.services.operators import Operators
from gateway.tracking.calendar import local_date, local_start

#: Days of history before the demo starts (today included, up to a few minutes before start-up).
HISTORY_DAYS = 14
#: Documents in those days (≈ 30 a day: every page has rows, and generating them stays well under a second).
HISTORY_DOCUMENTS = 420
HISTORY_SEED = 20260412
#: The generated tree: 6 departments, 2 level-3 units under each, 2 level-4 units under those (43 units).
_TREE = {"departments": 6, "districts": 2, "communes": 2}
#: Names of the generated departments 2..n (1 is the demo's Văn phòng UBND tỉnh); none repeats a demo unit's.
_DEPARTMENTS = (
    "Sở Nội vụ",
    "Sở Xây dựng",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Nông nghiệp và Môi trường",
    "Sở Công Thương",
    "Sở Tư pháp",
)
_LEVEL3 = ("Văn phòng", "Thanh tra", "Trung tâm Dữ liệu")
_LEVEL4 = ("Phòng Tổng hợp", "Phòng Nghiệp vụ", "Phòng Hành chính")
_PROVINCE = "Tây Ninh"
#: The demo's accounts: (user name, role, scope, display name). The viewer sees the Văn phòng subtree only.
DEMO_OPERATORS: tuple[tuple[str, Role, str | None, str], ...] = (
    ("admin", Role.ADMIN, None, "Quản trị hệ thống (demo)"),
    ("vanphong", Role.VIEWER, "000.00.01.H53", "Văn thư Văn phòng UBND tỉnh (demo)"),
)


@dataclass(frozen=True)
class DemoHistory:
    """What was generated, for the banner."""

    since: datetime
    until: datetime
    agencies: int
    documents: int
    deliveries: int


@dataclass(frozen=True)
class DemoLogin:
    """One console account of this run (the password exists only in memory and in the banner)."""

    username: str
    password: str = dataclasses.field(repr=False)  # never in a repr that a log line or traceback might show
    role: Role
    scope: str | None
    scope_name: str | None


def add_history(settings: Settings, demo_units: Mapping[str, str], now: datetime) -> DemoHistory:
    """Generate :data:`HISTORY_DAYS` days of the province's traffic up to 5 minutes before ``now`` into the
    demo's database, whose registry already holds ``demo_units`` (OrganId → name)."""
    spec = HistorySpec(
        seed=HISTORY_SEED,
        since=local_start(local_date(now) - timedelta(days=HISTORY_DAYS - 1)),
        until=now - timedelta(minutes=5),
        now=now,
        documents=HISTORY_DOCUMENTS,
        **_TREE,
    )
    plan = plan_history(spec)
    units = named_units(plan.agencies, demo_units)
    documents = [d for d in (_for_live_mailboxes(doc, demo_units) for doc in plan.documents) if d is not None]
    store = Store(create_engine(settings.effective_database_url))
    try:
        write_agencies(store, [u for u in units if u.organ_id not in demo_units], now=spec.since)
        _docs, deliveries, _statuses = write_documents(store, documents)
        write_refusals(store, plan.refusals)
    finally:
        store.engine.dispose()
    generated = sum(1 for u in units if u.organ_id not in demo_units)
    return DemoHistory(spec.since, spec.until, generated, len(documents), deliveries)


def named_units(units: tuple[PlannedAgency, ...], demo_units: Mapping[str, str]) -> list[PlannedAgency]:
    """The planned units named after their place in the tree; a demo unit keeps its registry name (and its
    children are named after it). Planned order is parents first, so a parent's final name is known."""
    names: dict[str, str] = {}
    out = []
    for u in units:
        kkk, mm, nn = (int(part) for part in u.organ_id.split(".")[:3])
        if u.organ_id in demo_units:
            name = demo_units[u.organ_id]
        elif u.level == 1:
            name = f"UBND tỉnh {_PROVINCE}"
        elif u.level == 2:
            base = _DEPARTMENTS[nn - 2] if 2 <= nn < len(_DEPARTMENTS) + 2 else f"Ban ngành số {nn}"
            name = f"{base} {_PROVINCE}"
        elif u.level == 3:
            name = f"{_LEVEL3[mm - 1] if mm <= len(_LEVEL3) else f'Đơn vị số {mm}'} {names[str(u.parent)]}"
        else:
            name = f"{_LEVEL4[kkk - 1] if kkk <= len(_LEVEL4) else f'Tổ số {kkk}'} – {names[str(u.parent)]}"
        names[u.organ_id] = name
        out.append(dataclasses.replace(u, name=name))
    return out


def _for_live_mailboxes(doc: PlannedDocument, demo_units: Mapping[str, str]) -> PlannedDocument | None:
    """``doc`` without the deliveries to demo units that did not end delivered (module docstring); None when
    nothing is left."""
    kept = tuple(d for d in doc.deliveries if d.recipient not in demo_units or d.state == "delivered")
    if not kept:
        return None
    return doc if len(kept) == len(doc.deliveries) else dataclasses.replace(doc, deliveries=kept)


def add_operators(settings: Settings, unit_names: Mapping[str, str]) -> tuple[DemoLogin, ...]:
    """The accounts of :data:`DEMO_OPERATORS`, each with a new random password."""
    logins = []
    store = Store(create_engine(settings.effective_database_url))
    try:
        accounts = Operators(store, settings)
        for username, role, scope, display in DEMO_OPERATORS:
            password = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
            accounts.add(username, password, role, scope=scope, display_name=display)
            logins.append(DemoLogin(username, password, role, scope, unit_names.get(scope) if scope else None))
    finally:
        store.engine.dispose()
    return tuple(logins)


__all__ = ["DEMO_OPERATORS", "HISTORY_DAYS", "DemoHistory", "DemoLogin", "add_history", "add_operators"]
