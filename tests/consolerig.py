"""The operator console's test rig (issue 12): a real gateway under gunicorn over a seeded month of history, with
operator accounts made by the CLI, and a small form-aware HTTP client that logs in like a browser.

One :func:`console_gateway` per test module and database (the fixtures in each test file pick the scope). The
history is :func:`gateway.demo.history_store.generate_history` (seeded: the same agencies and documents every
run, judged late / not taken / dead by the tracking rules), so every page has real rows to show:

* agencies: the province root ``ROOT`` (level 1), departments ``000.00.0d.H53`` (level 2), a district under each
  (level 3) and communes under that (level 4); a few are reached by SOAP/VDXP push to a dead endpoint;
* operators (password ``PASSWORD`` each): ``ada`` admin, ``oscar`` operator, ``vera`` viewer — all three
  unscoped — and ``sam``, a viewer scoped to the department ``DEPT``.

Browser tests (Chromium) drive the same server; :class:`ConsoleClient` is for the many checks that need only HTTP.
"""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from gatewayproc import gateway_env, served

from gateway.config import Settings, load_settings
from gateway.db import Store, create_engine
from gateway.db.migrations import upgrade
from gateway.demo.history_model import HistoryPlan, HistorySpec
from gateway.demo.history_store import generate_history

EXE = Path(sys.executable).with_name("edoc-gateway")
PASSWORD = "mật khẩu đủ dài 123"
ROOT = "000.00.00.H53"
DEPT = "000.00.01.H53"
OTHER_DEPT = "000.00.02.H53"
OPERATORS: Mapping[str, tuple[str, str | None]] = {
    "ada": ("admin", None),
    "oscar": ("operator", None),
    "vera": ("viewer", None),
    "sam": ("viewer", DEPT),
}
_CSRF = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)"')


@dataclasses.dataclass
class ConsoleGateway:
    base: str
    settings: Settings
    env: dict[str, str]
    plan: HistoryPlan
    tmp: Path

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("EDOC_GATEWAY_")}
        return subprocess.run(
            [str(EXE), *args], env={**clean, **self.env}, input=stdin, capture_output=True, text=True, timeout=120
        )

    def store(self) -> Store:
        """A store on the gateway's database (the caller disposes of ``store.engine``)."""
        return Store(create_engine(self.settings))

    def client(self, who: str | None = None) -> ConsoleClient:
        """A fresh browser-like client, logged in as ``who`` when given."""
        c = ConsoleClient(self.base)
        if who is not None:
            c.login(who)
        return c


class ConsoleClient:
    """A cookie-keeping HTTP client that fills in each form's CSRF token from the last page it read."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.csrf = ""
        self.last: requests.Response | None = None

    def get(self, path: str, **kw: Any) -> requests.Response:
        r = self.http.get(self.base + path, allow_redirects=kw.pop("allow_redirects", False), timeout=30, **kw)
        self._remember(r)
        return r

    def post(self, path: str, data: Mapping[str, str] | None = None, *, csrf: str | None = None) -> requests.Response:
        form = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        r = self.http.post(self.base + path, data=form, allow_redirects=False, timeout=30)
        self._remember(r)
        return r

    def login(self, who: str, password: str = PASSWORD) -> requests.Response:
        self.get("/console/login")
        r = self.post("/console/login", {"username": who, "password": password, "next": "/console/"})
        if r.status_code == 303:
            self.get("/console/")  # the dashboard carries the session's CSRF token
        return r

    def _remember(self, r: requests.Response) -> None:
        self.last = r
        if r.headers.get("Content-Type", "").startswith("text/html"):
            found = _CSRF.search(r.text)
            if found:
                self.csrf = html.unescape(found.group(1))


def text_of(page: str) -> str:
    """A page's visible text, tags stripped and whitespace folded (for assertions on what a person reads)."""
    body = re.sub(r"(?s)<(script|style|title)\b.*?</\1>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


HISTORY = HistorySpec(
    seed=20261203,
    since=datetime.now(UTC).replace(microsecond=0) - timedelta(days=30),
    until=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
    now=datetime.now(UTC).replace(microsecond=0),
    documents=240,
    departments=3,
    districts=1,
    communes=2,
)


@contextmanager
def console_gateway(tmp: Path, database_url: str, pki: Any, **extra: str) -> Iterator[ConsoleGateway]:
    """The gateway of the module docstring, served until the block ends."""
    env = gateway_env(tmp, database_url, pki, max_package_bytes=2 * 1024 * 1024, CONSOLE_COOKIE_SECURE="false", **extra)
    settings = load_settings(env=env)
    upgrade(settings)
    store = Store(create_engine(settings))
    try:
        plan = generate_history(store, HISTORY)
    finally:
        store.engine.dispose()
    gw = ConsoleGateway(f"http://{settings.bind}", settings, env, plan, tmp)
    for name, (role, scope) in OPERATORS.items():
        args = ["operators", "add", name, "--role", role, "--password-stdin", *(["--scope", scope] if scope else [])]
        done = gw.cli(*args, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
    with served(settings, env, tmp / "gunicorn.log"):
        yield gw
