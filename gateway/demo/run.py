"""``edoc-gateway demo``: set up, start the gateway and its companions, send traffic, serve or stop.

The processes are the real ones: gunicorn serving ``gateway.web.wsgi:application`` exactly as
``edoc-gateway serve`` runs it (:func:`gateway.web.launch.gunicorn_argv`), a delivery worker
(``edoc-gateway worker``), and the reference SOAP and REST receivers of the two push agencies. Each logs to a
file in the data directory. Nothing here imports the command line: the CLI calls :func:`run_demo`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gateway.config import load_settings
from gateway.demo.setup import DemoSetup, prepare
from gateway.demo.traffic import next_steps, send_traffic
from gateway.web.launch import gunicorn_argv

Echo = Callable[[str], object]
Processes = list[tuple[str, subprocess.Popen[bytes]]]


def run_demo(
    data_dir: Path,
    samples: Path | None,
    *,
    bind: str = "127.0.0.1:8080",
    wait: bool = True,
    echo: Echo = print,
) -> None:
    """Set up, start the gateway, send traffic, print what to try next; serve until Ctrl-C if ``wait``."""
    data_dir = data_dir.resolve()
    setup = prepare(data_dir, bind, echo)
    procs = start_processes(setup, bind)
    try:
        echo(f"== gateway running at {setup.url}, with a delivery worker and reference SOAP/REST receivers")
        echo(f"   logs: {', '.join(str(data_dir / n) for n in ('gateway.log', 'worker.log'))}")
        send_traffic(setup, samples, echo)
        _print_next_steps(setup, echo)
        if wait:
            echo("== serving; press Ctrl-C to stop")
            procs[0][1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(procs)


def start_processes(setup: DemoSetup, bind: str) -> Processes:
    """The gateway (gunicorn, as ``edoc-gateway serve`` runs it), a delivery worker, and the two reference
    receivers; each logs to a file in the data directory."""
    settings = load_settings(setup.config, env={})
    base = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_")}
    env = {**base, "EDOC_GATEWAY_CONFIG": str(setup.config)}
    d = setup.data_dir
    exe = str(Path(sys.executable).with_name("edoc-gateway"))
    procs = [
        ("gateway", _spawn(gunicorn_argv(settings), env, d / "gateway.log", int(bind.rsplit(":", 1)[1]), "gateway")),
        ("worker", _spawn([exe, "worker"], env, d / "worker.log", 0, "worker")),
        _receiver(
            "SOAP",
            "adapters.soap.receiver",
            setup.soap_port,
            {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-soap")},
            d,
        ),
        _receiver(
            "REST",
            "adapters.rest.receiver",
            setup.rest_port,
            {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-rest"), "EDOC_RECEIVER_HMAC_KEY": setup.rest_key},
            d,
        ),
    ]
    _wait_healthy(bind, d / "gateway.log")
    return procs


def _receiver(
    kind: str, module: str, port: int, env: dict[str, str], data_dir: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    """A reference receiver (``<module>:make_app()``) under one gunicorn worker on 127.0.0.1:``port``."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    what = f"{kind} receiver"
    argv = [gunicorn, "-b", f"127.0.0.1:{port}", "-w", "1", f"{module}:make_app()"]
    return what, _spawn(argv, env, data_dir / f"receiver-{kind.lower()}.log", port, what)


def _spawn(argv: list[str], env: dict[str, str], log: Path, port: int, what: str) -> subprocess.Popen[bytes]:
    """Start a process and wait until it accepts connections on 127.0.0.1:``port`` (if given)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while port:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{what} did not start; see {log}") from None
            time.sleep(0.2)
    return proc


def _wait_healthy(bind: str, log: Path) -> None:
    """The gateway answers /healthz once its workers have booted."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{bind}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not become healthy; see {log}")
        time.sleep(0.2)


def _print_next_steps(setup: DemoSetup, echo: Echo) -> None:
    echo("== try next")
    echo(f"   WSDL:        {setup.url}?wsdl")
    echo("   credentials (WS-Security UsernameToken, PasswordDigest):")
    for sid, secret in setup.secrets.items():
        echo(f"     {sid:<18} {secret}")
    echo("   commands (this run's CLI, interpreter, settings and files; paste them as they are):")
    for line in next_steps(setup):
        echo(f"   {line}")


def _stop(procs: Processes) -> None:
    """SIGTERM in reverse start order, then wait (and kill what does not stop within 30 s)."""
    for _name, proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _name, proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
