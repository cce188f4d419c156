"""The README's command line, error-code and configuration text against what the code does (issue 8 item 5).

The README said "otherwise 1" while click exits 2 on a usage error, and its code table lacked codes the command
line prints (IO.ERROR, CONFIG.INVALID, SERVICE.UNAVAILABLE, VDXP.ERROR). These tests read the README and the
code, so the next drift fails here.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

from gateway.errors import GatewayError

README = Path(__file__).resolve().parents[1] / "README.md"
#: Abstract bases: never raised as such.
_BASES = {"GATEWAY.ERROR", "EDXML.INVALID"}
#: Modules that define GatewayError subclasses the command line or the wire can show.
_MODULES = (
    "gateway.errors",
    "gateway.ports",
    "gateway.services.registry",
    "adapters.vdxp.client",
    "adapters.edocvn.client",
)


def section(title: str, *, words: bool = False) -> str:
    """A README section; with ``words``, its text with line breaks and runs of spaces as single spaces."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    found = text[start : end if end != -1 else len(text)]
    return " ".join(found.split()) if words else found


def all_codes() -> set[str]:
    for name in _MODULES:
        importlib.import_module(name)
    found: set[str] = set()
    todo = [GatewayError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return (found - _BASES) | {"IO.ERROR", "GATEWAY.INTERNAL"}


def listed(code: str, table: str) -> bool:
    """In the table as `CODE`, or as a `.SUFFIX` shorthand on a row that names its family (`DELIVERY.…`)."""
    if f"`{code}`" in table:
        return True
    family, _dot, suffix = code.partition(".")
    return any(f"`{family}." in row and f"`.{suffix}`" in row for row in table.splitlines())


def test_every_error_code_is_in_the_readme_table():
    table = section("Error codes")
    missing = sorted(code for code in all_codes() if not listed(code, table))
    assert missing == []


def test_the_readme_states_the_exit_statuses_the_cli_returns(tmp_path):
    text = section("Command line", words=True)
    assert re.search(r"\b1 with one line per failure\b", text)
    assert "2 on a usage error" in text
    exe = Path(sys.executable).with_name("edoc-gateway")
    usage = subprocess.run([exe, "validate"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    failure = subprocess.run(
        [exe, "validate", "missing.edxml"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert (usage.returncode, failure.returncode) == (2, 1)


def test_the_readme_lists_agencies_add_and_the_configuration_rules():
    assert "`edoc-gateway agencies add ORGID --name NAME" in section("Command line")
    configuration = section("Configuration", words=True)
    assert "Unknown keys" in configuration and "EDOC_GATEWAY_CONFIG" in configuration
    assert "db upgrade" in configuration
