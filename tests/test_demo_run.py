"""``edoc-gateway demo``'s processes (issue 8 item 5), run as a user runs it:

* a taken port (the gateway's or a receiver's) is one ``CONFIG.INVALID`` line and exit 1, before anything is
  made or sent — nothing reaches whatever listens there;
* the reference receivers have fixed ports (the gateway's + 1 and + 2), so the registry's endpoints are stable;
* SIGTERM stops every child as Ctrl-C does: no gunicorn, worker or receiver outlives the demo.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from consolerig import ConsoleClient, text_of
from gatewayproc import free_ports
from sqlalchemy import select

from gateway.config import load_settings
from gateway.db import Store, create_engine
from gateway.db import tables as t
from gateway.demo.console_demo import DEMO_OPERATORS
from gateway.demo.setup import demo_unit_names, prepare
from gateway.services.console import ConsoleServices
from gateway.services.operators import Operators
from gateway.services.tracking_api import DocumentQuery
from gateway.tracking.calendar import LOCAL_TZ

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}


class Listener:
    """Something else on a port the demo wants: it records every connection made to it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.connections = 0

    def accepted(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                return self.connections
            conn.close()
            self.connections += 1


@pytest.mark.parametrize(
    ("offset", "what"), [(0, "the gateway (--bind)"), (1, "the SOAP receiver"), (2, "the REST receiver")]
)
def test_a_taken_port_is_one_line_and_nothing_is_sent_to_it(tmp_path, offset, what):
    port = free_ports(3)
    listener = Listener(port + offset)
    try:
        proc = subprocess.run(
            [EXE, "demo", "--data-dir", tmp_path / "demo", "--bind", f"127.0.0.1:{port}", "--no-wait"],
            capture_output=True,
            text=True,
            timeout=120,
            env=CLEAN_ENV,
        )
        assert proc.returncode == 1
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"demo: CONFIG.INVALID: 127.0.0.1:{port + offset}, the port of {what}")
        assert "is already in use" in line
        assert proc.stdout == ""
        assert listener.accepted() == 0  # no credentials, no request: nothing was sent there
        assert not (tmp_path / "demo").exists()  # and nothing was made
    finally:
        listener.sock.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    out: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


def read_until(out: queue.Queue[str | None], marker: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = out.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not seen in:\n{''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_child_and_the_receivers_have_fixed_ports(tmp_path, signum):
    port = free_ports(3)
    data_dir = tmp_path / "demo"
    with subprocess.Popen(
        [EXE, "demo", "--data-dir", data_dir, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=CLEAN_ENV,
    ) as proc:
        try:
            out = lines_of(proc)
            text = read_until(out, "== serving", timeout=240)
            receivers = f"receivers: SOAP http://127.0.0.1:{port + 1} (000.00.00.H14), REST http://127.0.0.1:{port + 2}"
            assert receivers in text
            csv = (data_dir / "agencies.csv").read_text(encoding="utf-8")
            assert f"http://127.0.0.1:{port + 1}/receiver" in csv and f"http://127.0.0.1:{port + 2}/inbox" in csv
            children = descendants(proc.pid)
            assert len(children) >= 6  # gateway and receivers (gunicorn masters and workers), the worker
            proc.send_signal(signum)
            rest = read_until(out, "== stopped", timeout=90)
            assert proc.wait(timeout=30) == 0, rest
        finally:
            if proc.poll() is None:
                proc.kill()
    assert [pid for pid in children if alive(pid)] == []
    for p in (port, port + 1, port + 2):
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", p), timeout=1):
            pass


# ------------------------------------------------------------------------------------- the console


DISPLAY_NAMES = {name: display for name, _role, _scope, display in DEMO_OPERATORS}


def banner_logins(text: str) -> dict[str, tuple[str, str]]:
    """user name → (password, "role: scope") from the banner's console block."""
    block = text.split("== operator console: ", 1)[1].split("\n== ", 1)[0]
    found = re.findall(r"^ {5}(\S+) +(\S+) +\((\w+: [^)]*)\)$", block, re.M)
    return {user: (password, what) for user, password, what in found}


def test_the_demo_opens_with_the_console_a_login_and_two_weeks_of_history(tmp_path):
    started = datetime.now(UTC)
    port = free_ports(3)
    data_dir = tmp_path / "demo"
    with subprocess.Popen(
        [EXE, "demo", "--data-dir", data_dir, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=CLEAN_ENV,
    ) as proc:
        try:
            text = read_until(lines_of(proc), "== serving", timeout=240)
            console = f"http://127.0.0.1:{port}/console/"
            assert f"== operator console: {console}\n" in text
            assert f"== serving (operator console {console})" in text
            logins = banner_logins(text)
            assert logins["admin"][1] == "admin: every agency"
            assert logins["vanphong"][1].startswith("viewer: 000.00.01.H53 Văn phòng UBND tỉnh Tây Ninh")
            base = f"http://127.0.0.1:{port}"
            for user, (password, _what) in logins.items():
                assert len(password) >= 12
                client = ConsoleClient(base)
                assert client.login(user, password + "x").status_code != 303  # the password is what counts
                client = ConsoleClient(base)
                assert client.login(user, password).status_code == 303, client.last.text if client.last else ""
                dashboard = client.get("/console/")
                assert dashboard.status_code == 200
                shown = text_of(dashboard.text)
                assert "Tổng quan" in shown and DISPLAY_NAMES[user] in shown  # the dashboard, as this account
                # the cookie works over the demo's plain http: a page after the dashboard is still logged in
                assert client.get("/console/").status_code == 200
            # the passwords are shown only in the banner: no file of the demo holds them (the database the hash)
            for path in data_dir.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert not any(p.encode() in data for p, _ in logins.values()), path
            # the corpus ("accepted NAME: docId …") and the signed round trip ("accepted: docId …", from the
            # Văn phòng UBND tỉnh: in the viewer's scope)
            accepted = set(re.findall(r"accepted(?: \S+)?: docId ([0-9a-f]{32})", text))
            _the_legacy_district_exchanged_with_soap_and_vdxp(text)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=90)
    assert len(accepted) >= 10
    _the_database_holds_history_and_live_traffic(data_dir, started, accepted)


def _the_legacy_district_exchanged_with_soap_and_vdxp(text: str) -> None:
    """The legacy district system (e-doc.vn profile) sent to a SOAP push peer and a VDXP system and got their
    statuses with GetTraces; it took two documents (one from SOAP, one from VDXP) and its statuses reached both."""
    legacy = text[text.index("== a legacy district system") :]
    assert re.search(r"SendDocument \(SwA, 1 attachment\) to .*: axis id \d+", legacy)
    assert "attachment byte-identical: True" in legacy
    assert (
        "district GetTraces: 03 from 000.00.00.G22" in legacy and "district GetTraces: 01 from 000.00.00.H14" in legacy
    )
    assert len(re.findall(r"district GetDocument \d+: .*; ConfirmReceived; UpdateTraces 03", legacy)) == 2
    assert "VPCP (VDXP getReceivedEdocList) got status 01 from the district" in legacy  # emitted on ConfirmReceived
    assert "VPCP (VDXP getReceivedEdocList) got status 03 from the district" in legacy
    assert "provincial office (SOAP) sees 000.00.31.H53: delivered, statuses 01, 03" in legacy


def _the_database_holds_history_and_live_traffic(data_dir: Path, started: datetime, live: set[str]) -> None:
    """Generated documents on at least 7 Vietnam-time days before the run, the live ones of the run, both in
    what the console's services list (the Văn phòng viewer's scope sees its subtree's of both)."""
    settings = load_settings(data_dir / "gateway.toml", env={})
    store = Store(create_engine(settings))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(t.documents.c.doc_id, t.documents.c.received_at, t.documents.c.raw)).all()
        received = {doc_id: _aware(at) for doc_id, at, _raw in rows}
        generated = {doc_id for doc_id, _at, raw in rows if raw.startswith(b"<!-- generated")}
        assert live <= set(received) and not live & generated
        assert all(received[d] >= started for d in live)
        days = {received[d].astimezone(LOCAL_TZ).date() for d in generated}
        assert len(days) >= 7, sorted(days)
        assert all(received[d] < started for d in generated)
        assert min(received[d] for d in generated) >= started - timedelta(days=15)
        services = ConsoleServices.over(store, settings)
        documents = services.admin.documents
        assert documents is not None
        listed = {i["doc_id"] for i in documents.list_documents(DocumentQuery(limit=200)).to_dict()["items"]}
        assert live & listed and generated & listed
        mine = documents.list_documents(DocumentQuery(limit=200), scope="000.00.01.H53").to_dict()["items"]
        assert {i["doc_id"] for i in mine} & live and {i["doc_id"] for i in mine} & generated
        assert all(i["sender"].endswith("H53") or i["sender"].startswith("000.00.00.") for i in mine)
    finally:
        store.engine.dispose()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def test_each_run_has_its_own_passwords_and_the_demo_mailboxes_hold_no_generated_package(tmp_path):
    runs = [prepare(tmp_path / f"demo{n}", f"127.0.0.1:{free_ports(3)}", echo=lambda _m: None) for n in (1, 2)]
    first, second = ({x.username: x.password for x in run.logins} for run in runs)
    assert set(first) == set(second) == {"admin", "vanphong"}
    assert not set(first.values()) & set(second.values())
    settings = load_settings(runs[0].config, env={})
    assert settings.console_cookie_secure is False
    store = Store(create_engine(settings))
    try:
        demo_units = set(demo_unit_names())
        with store.engine.connect() as conn:
            open_there = conn.execute(
                select(t.deliveries.c.recipient, t.deliveries.c.state).where(
                    t.deliveries.c.recipient.in_(demo_units), t.deliveries.c.state != "delivered"
                )
            ).all()
            names = dict(conn.execute(select(t.agencies.c.organ_id, t.agencies.c.name)).all())
        assert open_there == []  # a demo system polling its mailbox is never handed a placeholder
        assert names["000.01.01.H53"] == "Ban Tiếp Công dân"  # the demo's registry wins for its units
        assert names["001.01.01.H53"] == "Phòng Tổng hợp – Ban Tiếp Công dân"  # and names the tree below them
        assert len(set(names.values())) == len(names)  # one province: no unit twice under two ids
        accounts = Operators(store, settings)
        assert accounts.login("admin", first["admin"])[1].principal.scope is None
        assert accounts.login("vanphong", first["vanphong"])[1].principal.scope == "000.00.01.H53"
    finally:
        store.engine.dispose()
