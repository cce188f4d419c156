"""``edoc-gateway demo``'s processes (issue 8 item 5), run as a user runs it:

* a taken port (the gateway's or a receiver's) is one ``CONFIG.INVALID`` line and exit 1, before anything is
  made or sent — nothing reaches whatever listens there;
* the reference receivers have fixed ports (the gateway's + 1 and + 2), so the registry's endpoints are stable;
* SIGTERM stops every child as Ctrl-C does: no gunicorn, worker or receiver outlives the demo.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gatewayproc import free_ports

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
