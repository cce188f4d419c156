"""The lock file is complete and is the one the venv was built with (issue 8, finding 3).

``make`` installs with ``-c constraints.txt``; but a constraint only pins what it names. A dependency added to
pyproject.toml without ``make lock`` would install at whatever version is newest — the failure the lock exists
to prevent — and nothing would say so. So: every distribution that ``edoc-gateway[test,postgres]`` needs,
transitively, must be pinned, at the version installed here.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
EXTRAS = ("test", "postgres")


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line)
            assert match, f"constraints.txt: not a 'name==version' pin: {line!r}"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _needed(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Installed distributions ``root[extras]`` requires, transitively: canonical name -> installed version."""
    found: dict[str, str] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            env_ok = any(req.marker is None or req.marker.evaluate({"extra": e}) for e in ("", *wanted))
            key = canonicalize_name(req.name)
            if env_ok and key not in found:
                found[key] = metadata.version(req.name)
                todo.append((req.name, tuple(req.extras)))
    return found


def test_constraints_pin_every_dependency_at_the_installed_version() -> None:
    pins = _pins()
    needed = _needed("edoc-gateway", EXTRAS)
    unpinned = sorted(set(needed) - set(pins))
    assert unpinned == [], f"not in constraints.txt (run `make lock`, then `make test`): {unpinned}"
    differ = {n: (v, pins[n]) for n, v in needed.items() if pins[n] != v}
    assert differ == {}, f"installed != pinned (rerun `make`, or `make lock`): {differ}"


def test_the_build_backend_is_pinned() -> None:
    """pip's isolated build environment gets setuptools through --build-constraint (Makefile, wheel check)."""
    assert "setuptools" in _pins()
