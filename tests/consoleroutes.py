"""The console's routes as its page modules declare them, for tests that cover every route (the route × role table
of tests/test_console_security.py) or wait for one (the browser flows of pages written in parallel: a flow is
skipped until its route exists, and runs as soon as the page module is merged).

:func:`declared_routes` builds the console exactly as the app does (:func:`gateway.web.console.build_console` over
real services) on a store that is never opened: installing the pages only registers their routes. :func:`concrete`
turns a rule into a URL with a real id of the seeded history for each converter.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from gateway.config import Settings
from gateway.db import Store, create_engine
from gateway.demo.history_model import HistoryPlan, PlannedDocument
from gateway.services.console import ConsoleServices
from gateway.web.console import build_console
from gateway.web.console.edge import Route

_CONVERTER = re.compile(r"<(?:(?P<kind>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


@cache
def declared_routes() -> tuple[Route, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/never-opened.db")
        store = Store(create_engine(settings))
        try:
            return tuple(build_console(ConsoleServices.over(store, settings), settings).routes)
        finally:
            store.engine.dispose()


def has_route(rule: str, method: str = "GET") -> bool:
    """Whether the console declares ``rule`` (converter names ignored: ``/x/<a>`` matches ``/x/<int:b>``)."""
    shape = _CONVERTER.sub("<>", rule)
    return any(_CONVERTER.sub("<>", r.rule) == shape and method in r.methods for r in declared_routes())


def needs(rule: str, method: str = "GET") -> object:
    """A skip mark until the console has ``rule`` (a page module being written in parallel)."""
    import pytest

    return pytest.mark.skipif(not has_route(rule, method), reason=f"the console has no {method} {rule} yet")


def concrete(rule: str, ids: Mapping[str, str]) -> str:
    """``rule`` with each ``<converter>`` replaced by the id of its kind in ``ids`` (keys: ``doc``, ``delivery``,
    ``organ``, ``system``, ``operator``, ``int``). A converter no key fits fails loudly: the table test must reach
    each route with a real id, not a placeholder that only exercises the 404 page."""

    def one(m: re.Match[str]) -> str:
        name, kind = m["name"].lower(), (m["kind"] or "").lower()
        for key in ("doc", "delivery", "organ", "agency", "recipient", "sender", "system", "operator", "user"):
            if key in name:
                return ids[_ALIAS.get(key, key)]
        if kind == "int" or name in ("n", "page", "id"):
            return ids["int"]
        raise AssertionError(f"{rule}: no plausible id for <{m[0][1:-1]}>; add its kind to consoleroutes.concrete")

    return _CONVERTER.sub(one, rule)


_ALIAS = {"agency": "organ", "recipient": "organ", "sender": "organ", "user": "operator"}


def kinds(rule: str) -> set[str]:
    """The id kinds a rule takes (``doc``, ``delivery``, ``organ`` …), as :func:`concrete` fills them."""
    marker = {k: f"@{k}@" for k in ("doc", "delivery", "organ", "system", "operator", "int")}
    filled = concrete(rule, marker)
    return {k for k, m in marker.items() if m in filled}


def subtree(plan: HistoryPlan, top: str) -> set[str]:
    """``top`` and every agency under it in the seeded history."""
    parent = {a.organ_id: a.parent for a in plan.agencies}

    def under(organ: str | None) -> bool:
        while organ is not None:
            if organ == top:
                return True
            organ = parent.get(organ)
        return False

    return {a for a in parent if under(a)}


def outside(plan: HistoryPlan, top: str) -> list[PlannedDocument]:
    """The documents neither sent by nor addressed to anyone in ``top``'s subtree."""
    inside = subtree(plan, top)
    return [d for d in plan.documents if d.sender not in inside and not inside & {r.recipient for r in d.deliveries}]


__all__ = ["concrete", "declared_routes", "has_route", "kinds", "needs", "outside", "subtree"]
