"""The reference SOAP receiver under a real gunicorn, with fault injection, and delivery worker subprocesses.

gunicorn imports ``soap_receiver:make_app()``: the real :func:`adapters.soap.receiver.make_app` behind a small
middleware that reads ``<dir>/fault`` on every request, so a test switches the receiver's behaviour between
requests without restarting it:

``slow <seconds>``  sleep, then answer normally (the package IS stored: a client that timed out sends it again)
``http500``         HTTP 500 with an HTML page (a broken proxy or framework)
``garbage``         HTTP 200 with bytes that are not XML
``server-fault``    a ``soap:Server`` fault (the receiver's temporary problem)
``client-fault``    a ``soap:Client`` fault (a permanent refusal)
``status <code>``   HTTP <code> with an HTML page (a proxy's 404, 413, 429, 503 …)
(absent)            the real receiver
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def make_app() -> Callable[..., Iterable[bytes]]:
    """gunicorn factory: the reference receiver behind the fault switch."""
    from adapters.soap.receiver import fault_envelope
    from adapters.soap.receiver import make_app as real_app

    app = real_app()
    control = Path(os.environ["EDOC_RECEIVER_DIR"]) / "fault"

    def faulty(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        try:
            mode = control.read_text().split()
        except FileNotFoundError:
            mode = []
        if not mode:
            return app(environ, start_response)
        if mode[0] == "slow":
            time.sleep(float(mode[1]))
            return app(environ, start_response)
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if mode[0] == "http500":
            body, status, ctype = (
                b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                "500 Oops",
                "text/html",
            )
        elif mode[0] == "garbage":
            body, status, ctype = b"\x00\x01 this is not XML at all", "200 OK", "text/xml"
        elif mode[0] == "status":
            body, status, ctype = b"<html><body>proxy says no</body></html>", f"{int(mode[1])} Proxy", "text/html"
        elif mode[0] in ("server-fault", "client-fault"):
            code = "Server" if mode[0] == "server-fault" else "Client"
            body, status, ctype = fault_envelope(code, f"injected {code} fault"), "500 Fault", "text/xml"
        else:
            raise RuntimeError(f"unknown fault mode {mode}")
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    return faulty


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Receiver:
    """A running (or stopped) receiver on a fixed port; ``directory`` is where it stores packages."""

    port: int
    directory: Path
    workers: int = 2
    #: Threads per worker (gunicorn's gthread worker, which keeps connections alive); 0: sync workers, which close
    #: every connection after one request.
    threads: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        return self.directory.parent / f"receiver-{self.port}.log"

    def fault(self, mode: str | None) -> None:
        path = self.directory / "fault"
        if mode is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(mode)

    def store(self) -> Any:
        from adapters.soap.storage import ReceiverStore

        return ReceiverStore(self.directory)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOC_", "GUNICORN_"))}
        env["EDOC_RECEIVER_DIR"] = str(self.directory)
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "--no-control-socket",
                    "-w",
                    str(self.workers),
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "--timeout",
                    "60",
                    *(["-k", "gthread", "--threads", str(self.threads), "--keep-alive", "10"] if self.threads else []),
                    "--pythonpath",
                    str(ROOT / "tests"),
                    "soap_receiver:make_app()",
                ],
                env=env,
                cwd=self.directory.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"receiver did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@contextlib.contextmanager
def running_receiver(tmp: Path, *, workers: int = 2, threads: int = 0) -> Iterator[Receiver]:
    directory = tmp / "received"
    directory.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(free_port(), directory, workers, threads)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


# ------------------------------------------------------------------------------------------ worker processes

WORKER_SCRIPT = """
import logging, sys
from gateway.config import load_settings
from gateway.worker import run_worker
logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
stats = run_worker(load_settings())
print("STATS", stats, flush=True)
"""


def worker_env(database_url: str, data_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a worker process: the database and ``EDOC_GATEWAY_<NAME>`` for each setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}
    env.update({"EDOC_GATEWAY_DATABASE_URL": database_url, "EDOC_GATEWAY_DATA_DIR": str(data_dir)})
    env.update({f"EDOC_GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_worker(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT], env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
