"""``edoc-gateway demo``: set up, start the gateway and its companions, send traffic, serve or stop.

The processes are the real ones: gunicorn serving ``gateway.web.wsgi:application`` exactly as
``edoc-gateway serve`` runs it (:func:`gateway.web.launch.gunicorn_argv`), a delivery worker
(``edoc-gateway worker``), and the reference SOAP and REST receivers of the two push agencies. Each logs to a
file in the data directory. Nothing here imports the command line: the CLI calls :func:`run_demo`.

Ports: the gateway's (``--bind``) and the receivers' — fixed, the gateway's port + 1 (SOAP) and + 2 (REST)
unless given — are checked free before anything is made or started: a demo that found its port taken used to
send its generated credentials to whatever listened there, then end in a traceback.

Stopping: every child runs in its own process group (gunicorn's master with its workers), so one signal reaches
a whole server. Ctrl-C, SIGTERM and SIGHUP all stop the demo the same way: SIGTERM to each group in reverse start
order, a grace period, then SIGKILL to whatever is left in the groups — nothing outlives the demo. Ctrl-C in a
terminal reaches only the demo process (the children are not in the terminal's foreground group), which then
stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from gateway.config import load_settings
from gateway.demo.legacy_demo import run_legacy_district
from gateway.demo.setup import REST_AGENCY, SOAP_AGENCY, DemoSetup, default_receiver_ports, prepare
from gateway.demo.tracking_show import show_tracking
from gateway.demo.traffic import next_steps, send_traffic
from gateway.errors import ConfigError, UnavailableError
from gateway.tracking.calendar import local_date
from gateway.web.launch import gunicorn_argv

Echo = Callable[[str], object]
Processes = list[tuple[str, subprocess.Popen[bytes]]]
#: Signals that stop the demo like Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long the children get to stop after SIGTERM (gunicorn's graceful_timeout is 30 s) before SIGKILL.
STOP_GRACE_SECONDS = 35.0


def run_demo(
    data_dir: Path,
    samples: Path | None,
    *,
    bind: str = "127.0.0.1:8080",
    wait: bool = True,
    echo: Echo = print,
    soap_port: int | None = None,
    rest_port: int | None = None,
) -> None:
    """Set up, start the gateway, send traffic, print what to try next; serve until Ctrl-C/SIGTERM if ``wait``.

    Interrupted before it serves, the demo stops its children and re-raises :class:`KeyboardInterrupt` (the run
    did not finish); stopped while serving, it returns normally.
    """
    data_dir = data_dir.resolve()
    ports = check_ports_free(bind, soap_port, rest_port)
    procs: Processes = []
    serving = False
    with _stop_signals_interrupt():
        try:
            setup = prepare(data_dir, bind, echo, receiver_ports=ports)
            start_processes(setup, bind, procs)
            host = bind.rsplit(":", 1)[0]
            echo(f"== gateway running at {setup.url}, with a delivery worker and reference SOAP/REST receivers")
            echo(
                f"   receivers: SOAP http://{host}:{setup.soap_port} ({SOAP_AGENCY}), REST http://{host}:"
                f"{setup.rest_port} ({REST_AGENCY}) — the gateway's port + 1 and + 2 unless given"
            )
            echo(f"   logs: {', '.join(str(data_dir / n) for n in ('gateway.log', 'worker.log'))}")
            send_traffic(setup, samples, echo)
            run_legacy_district(setup, echo)
            show_tracking(load_settings(setup.config), echo)
            _print_console(setup, echo)
            _print_next_steps(setup, echo)
            if wait:
                serving = True  # before the line that tells the user (and scripts) a stop is now normal
                echo(f"== serving (operator console {setup.console_url}); press Ctrl-C (or send SIGTERM) to stop")
                _serve(procs, data_dir)
        except KeyboardInterrupt:
            if not serving:
                raise
        finally:
            _stop_surely(procs)
    if serving:
        echo("== stopped")


def check_ports_free(bind: str, soap_port: int | None = None, rest_port: int | None = None) -> tuple[int, int]:
    """The receivers' ports (given, or :func:`~gateway.demo.setup.default_receiver_ports`), after checking that
    every port the demo needs is valid and free: ``CONFIG.INVALID``, one line, before anything starts."""
    host, _sep, port_text = bind.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT") from None
    default_soap, default_rest = default_receiver_ports(bind)
    receiver_ports = (soap_port or default_soap, rest_port or default_rest)
    needed = {
        port: "the gateway (--bind)",
        receiver_ports[0]: "the SOAP receiver (--soap-receiver-port; default: the gateway's port + 1)",
        receiver_ports[1]: "the REST receiver (--rest-receiver-port; default: the gateway's port + 2)",
    }
    if len(needed) < 3:
        raise ConfigError(f"the gateway and the two receivers need three different ports, not {port}, {receiver_ports}")
    for number, what in needed.items():
        if not 0 < number < 65536:
            raise ConfigError(f"port {number} for {what} is not a TCP port")
        if _in_use(host, number):
            raise ConfigError(
                f"{host}:{number}, the port of {what}, is already in use: stop what listens there or choose other "
                "ports (nothing was sent to it)",
                port=number,
            )
    return receiver_ports


def _in_use(host: str, port: int) -> bool:
    """Whether a server could not bind ``host:port`` now (gunicorn binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def start_processes(setup: DemoSetup, bind: str, procs: Processes) -> None:
    """The gateway (gunicorn, as ``edoc-gateway serve`` runs it), a delivery worker, and the two reference
    receivers, each appended to ``procs`` as soon as it exists (so a failure later stops those already running);
    each logs to a file in the data directory."""
    settings = load_settings(setup.config, env={})
    base = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_")}
    env = {**base, "EDOC_GATEWAY_CONFIG": str(setup.config)}
    d = setup.data_dir
    exe = str(Path(sys.executable).with_name("edoc-gateway"))
    port = int(bind.rsplit(":", 1)[1])
    _spawn(procs, "gateway", gunicorn_argv(settings), env, d / "gateway.log", port)
    _spawn(procs, "worker", [exe, "--config", str(setup.config), "worker"], env, d / "worker.log", 0)
    soap_env = {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-soap")}
    _receiver(procs, "SOAP", "adapters.soap.receiver", setup.soap_port, soap_env, d)
    rest_env = {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-rest"), "EDOC_RECEIVER_HMAC_KEY": setup.rest_key}
    _receiver(procs, "REST", "adapters.rest.receiver", setup.rest_port, rest_env, d)
    _wait_healthy(bind, procs[0][1], d / "gateway.log")


def _receiver(procs: Processes, kind: str, module: str, port: int, env: dict[str, str], data_dir: Path) -> None:
    """A reference receiver (``<module>:make_app()``) under one gunicorn worker on 127.0.0.1:``port``."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "-b", f"127.0.0.1:{port}", "-w", "1", f"{module}:make_app()"]
    _spawn(procs, f"{kind} receiver", argv, env, data_dir / f"receiver-{kind.lower()}.log", port)


def _spawn(procs: Processes, what: str, argv: list[str], env: dict[str, str], log: Path, port: int) -> None:
    """Start a process in its own process group, add it to ``procs``, and wait until it accepts connections on
    127.0.0.1:``port`` (if given). A process that exits first is ``SERVICE.UNAVAILABLE`` naming its log."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0)
    procs.append((what, proc))
    deadline = time.monotonic() + 60
    while port:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise UnavailableError(f"the demo's {what} did not start; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)


def _wait_healthy(bind: str, gateway: subprocess.Popen[bytes], log: Path) -> None:
    """The gateway answers /healthz once its workers have booted (and it is our gunicorn that answers)."""
    deadline = time.monotonic() + 60
    while True:
        if gateway.poll() is not None:
            raise UnavailableError(f"the demo gateway exited with status {gateway.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://{bind}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise UnavailableError(f"the demo gateway did not become healthy; see {log}")
        time.sleep(0.2)


def _serve(procs: Processes, data_dir: Path) -> None:
    """Until a stop signal (KeyboardInterrupt) — or until a child exits, which ends the demo with its log named."""
    while True:
        for what, proc in procs:
            if proc.poll() is not None:
                raise UnavailableError(
                    f"the demo's {what} exited with status {proc.returncode}; logs in {data_dir}; stopping the demo"
                )
        time.sleep(0.5)


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so one path stops every child."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _print_console(setup: DemoSetup, echo: Echo) -> None:
    """The console's address and this run's logins — the passwords exist nowhere else (only their hashes)."""
    echo(f"== operator console: {setup.console_url}")
    echo("   log in with (passwords made for this run, shown only here):")
    width = max((len(login.username) for login in setup.logins), default=0)
    for login in setup.logins:
        named = f" {login.scope_name}" if login.scope_name else ""
        scope = f"{login.scope}{named} and the units below it" if login.scope else "every agency"
        echo(f"     {login.username:<{width}}  {login.password}   ({login.role.value}: {scope})")
    if setup.history is not None:
        h = setup.history
        echo(
            f"   it shows {h.documents} generated documents of the province since {local_date(h.since):%d/%m/%Y} "
            "and this run's traffic"
        )


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
    """SIGTERM to each child's process group in reverse start order, wait up to :data:`STOP_GRACE_SECONDS`, then
    SIGKILL whatever is left in the groups (a gunicorn worker whose master died, a child that hangs). Further
    stop signals are ignored meanwhile, so a second Ctrl-C cannot leave orphans behind."""
    if not procs:
        return
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS} if main else {}
    try:
        for _what, proc in reversed(procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _what, proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _what, proc in procs:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_surely(procs: Processes) -> None:
    """:func:`_stop`, again if a stop signal lands before it has started ignoring them (it is idempotent)."""
    while True:
        try:
            _stop(procs)
            return
        except KeyboardInterrupt:
            continue


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the process group the child leads (its pid: ``process_group=0``), if anything is left in it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)
