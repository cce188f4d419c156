"""A normal (non-editable) install works without the checkout (issue 8, finding 2).

A user who runs ``pip install`` or ``pipx install`` has the wheel and nothing else: no ``xsd/``, ``wsdl/`` or
``deploy/`` beside the code. Before the fix the wheel carried none of them and every intake failed with
``CONFIG.INVALID: cannot read XSD``. This test does what such a user does, as CI: it builds the wheel from a copy
of the source tree (pinned build backend, ``constraints.txt``), checks that the wheel carries every file the code
reads (byte-identical to the committed ones), installs it into a fresh venv in a temporary directory — the current
directory is not the checkout and nothing of the checkout is on ``sys.path`` — and runs ``edoc-gateway demo``
there: migrations, gunicorn with the packaged configuration, XSD validation at intake, the zeep client on the
packaged WSDL, a worker and the reference receivers, all from the installed package.

It takes about a minute (most of it pip installing the dependencies from its cache); ``make wheel-check`` runs it
alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from subprocess import PIPE

import pytest
from gatewayproc import free_ports

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
#: What the code reads besides its modules: path in the wheel -> the committed file it must equal.
PACKAGED = {
    "gateway/resources/xsd/edxml-edoc.xsd": "xsd/edxml-edoc.xsd",
    "gateway/resources/xsd/edxml-status.xsd": "xsd/edxml-status.xsd",
    "gateway/resources/xsd/edxml-package.schema.json": "xsd/edxml-package.schema.json",
    "gateway/resources/wsdl/edoc-gateway.wsdl": "wsdl/edoc-gateway.wsdl",
    "gateway/resources/wsdl/edoc-receiver.wsdl": "wsdl/edoc-receiver.wsdl",
    "gateway/resources/wsdl/edoc-vn-legacy.wsdl": "wsdl/edoc-vn-legacy.wsdl",
    "gateway/resources/deploy/gunicorn.conf.py": "deploy/gunicorn.conf.py",
    "gateway/resources/openapi/admin-v1.json": "docs/openapi/admin-v1.json",
    "gateway/db/migrations/script.py.mako": "gateway/db/migrations/script.py.mako",
    "gateway/db/migrations/env.py": "gateway/db/migrations/env.py",
}
#: Left out of the copy the wheel is built from: what a fresh clone does not have.
_NOT_SOURCE = {".git", ".venv", "build", "dist", "data", "demo-data"}
_GENERATED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*_cache", ".hypothesis")


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str], timeout: float, logs: Path | None = None) -> str:
    """Run one step of the user's path in its own process group (a hung demo takes its gunicorns with it);
    a failure shows the step's output and the ends of the ``*.log`` files in ``logs`` (not the environment,
    which pytest would print for an assert here)."""
    cmd = [str(a) for a in argv]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout:.0f} s:\n{_tails(out + err, logs)}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{_tails(out + err, logs)}", pytrace=False)
    return out


def _tails(output: str, logs: Path | None) -> str:
    parts = [output[-6000:]]
    for log in sorted(logs.glob("*.log")) if logs is not None and logs.is_dir() else []:
        parts.append(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _outside_env(venv: Path) -> dict[str, str]:
    """The caller's environment less anything that points into the checkout or its venv, with the new venv first."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("EDOC_")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(REPO)]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    return env


def _build_wheel(work: Path) -> Path:
    """``pip wheel`` on a copy of the source tree (so the checkout gets no build/ or egg-info)."""
    src = work / "src"
    shutil.copytree(
        REPO,
        src,
        symlinks=True,
        ignore=lambda d, names: (_NOT_SOURCE & set(names) if Path(d) == REPO else set()) | _GENERATED(d, names),
    )
    locked = ["-c", CONSTRAINTS, "--build-constraint", CONSTRAINTS]
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *locked, "-w", work / "dist", src]
    _run(build, work, dict(os.environ), 600)
    (wheel,) = (work / "dist").glob("edoc_gateway-*.whl")
    return wheel


def _assert_carries_the_resources(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = sorted(set(PACKAGED) - names)
        assert missing == [], f"the wheel lacks {missing}"
        differ = [n for n, committed in PACKAGED.items() if zf.read(n) != (REPO / committed).read_bytes()]
        assert differ == [], f"packaged files differ from the committed ones: {differ}"
        versions = {n.rsplit("/", 1)[1] for n in names if n.startswith("gateway/db/migrations/versions/")}
        committed = {p.name for p in (REPO / "gateway/db/migrations/versions").glob("*.py")}
        assert committed <= versions, f"the wheel lacks migrations {sorted(committed - versions)}"
        assert not any(n.startswith(("tests/", "xsd/", "wsdl/", "deploy/")) for n in names), "stray top-level files"


def test_the_wheel_installed_outside_the_checkout_runs_the_demo(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    _assert_carries_the_resources(wheel)

    user = tmp_path / "user"  # the user's directory: not the checkout, and nothing in it
    user.mkdir()
    venv = user / "venv"
    _run([sys.executable, "-m", "venv", venv], user, _outside_env(venv), 120)
    env = _outside_env(venv)
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS, wheel], user, env, 900)

    where = "import gateway, adapters; print(gateway.__file__); print(adapters.__file__)"
    for line in _run([py, "-c", where], user, env, 60).split():
        assert Path(line).resolve().is_relative_to(venv.resolve()), f"imported from outside the new venv: {line}"

    data = user / "demo-data"
    bind = f"127.0.0.1:{free_ports(3)}"  # the demo also takes the next two ports (its receivers)
    demo = [venv / "bin" / "edoc-gateway", "demo", "--bind", bind, "--no-wait", "--data-dir", data]
    out = _run(demo, user, env, 600, logs=data)
    assert "byte-identical: True" in out, out

    # What the traffic left in the store, read back with the installed CLI.
    env["EDOC_GATEWAY_CONFIG"] = str(data / "gateway.toml")
    listed = json.loads(_run([venv / "bin" / "edoc-gateway", "deliveries", "list", "--json"], user, env, 120))["items"]
    delivered = [d for d in listed if d["kind"] == "edoc" and d["state"] == "delivered"]
    statuses = [d for d in listed if d["kind"] == "status"]
    assert len(delivered) >= 2, listed
    assert len(statuses) >= 2, listed
