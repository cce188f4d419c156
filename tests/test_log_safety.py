"""Log forging (issue 10 finding 4): whatever a client controls — the path, headers, a user name, identifiers —
never ends a log line and starts a forged one, in either log format, on a served gateway (gunicorn, its stderr).

Each hostile request carries a complete forged line after a line break (CR LF, LF, U+2028, NEL, VT, FF): a line
with a timestamp of 1999 at ``error`` level. The gateway's stderr must hold no such line, every JSON line must
parse, and every console line must start with a timestamp or be a marked traceback continuation.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from gatewayproc import gateway_env, served

from gateway import logs
from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade

ADMIN_TOKEN = secrets.token_urlsafe(24)
FORGED = "1999-01-01T00:00:00.000000Z [error    ] FORGED"
FORGED_JSON = '{"event": "FORGED", "level": "error", "timestamp": "1999-01-01T00:00:00Z"}'
#: Line breaks as percent-encoded path bytes: CR LF, LF, CR, U+2028, NEL, VT, FF, ESC (terminal control).
BREAKS = ("%0D%0A", "%0A", "%0D", "%E2%80%A8", "%C2%85", "%0B", "%0C", "%1B%5B2J%0A")
_CONSOLE_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z \[")


@pytest.fixture(params=["json", "console"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path, pki) -> Iterator[tuple[Settings, Path]]:
    env = gateway_env(
        tmp_path,
        f"sqlite:///{tmp_path}/gateway.db",
        pki,
        max_package_bytes=1 << 20,
        LOG_FORMAT=request.param,
        ADMIN_TOKEN=ADMIN_TOKEN,
    )
    settings = load_settings(env=env)
    upgrade(settings)
    log = tmp_path / "gunicorn.log"
    with served(settings, env, log):
        yield settings, log


def _send(settings: Settings, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
    host, port = settings.bind.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _hostile_requests(settings: Settings) -> None:
    quoted = urllib.parse.quote(FORGED) + "%0A" + urllib.parse.quote(FORGED_JSON)
    long_id = "S" * 5000
    for brk in BREAKS:
        tail = brk + quoted
        for method, path in (
            ("GET", "/nowhere" + tail),
            ("POST", "/rest/v1/packages" + tail),
            ("POST", "/rest/v1/" + tail),
            ("POST", "/vdxp/getEdoc" + tail),
            ("GET", "/admin/v1/documents/x" + tail),
            ("GET", "/admin/v1/deliveries/" + tail),
            ("GET", "/soap" + tail),
            ("GET", "/healthz" + tail),
        ):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
            assert _send(settings, method, path, b"{}", headers) in (400, 401, 404, 405)
    # Header values: a system id with control characters (what the HTTP parser lets through) and a huge one.
    for system in ("a\x1bb\x0bc\x0cd", long_id, "x\u2028" + FORGED):
        headers = {
            "Content-Type": "application/json",
            "X-Edoc-System": system,
            "X-Edoc-Timestamp": "1",
            "X-Edoc-Signature": "sha256=00",
        }
        with contextlib.suppress(UnicodeEncodeError, ValueError):  # http.client refuses some: nothing to log
            _send(settings, "POST", "/rest/v1/packages", b"{}", headers)
    # A SOAP UsernameToken whose user name carries a forged line (XML character references survive parsing).
    user = "u&#13;&#10;" + FORGED.replace("[", "&#91;") + "&#x2028;x" * 3
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
        '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
        f"<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
        "<wsse:Password>p</wsse:Password></wsse:UsernameToken></wsse:Security></s:Header>"
        '<s:Body><GetAgencies xmlns="urn:edoc-gateway:soap:1"/></s:Body></s:Envelope>'
    ).encode()
    status = _send(settings, "POST", "/soap", envelope, {"Content-Type": "text/xml; charset=utf-8"})
    assert status == 500  # the AUTH.DENIED Fault


def test_no_client_value_forges_or_floods_a_log_line(gateway):
    settings, log = gateway
    _hostile_requests(settings)
    text = log.read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if line]
    assert len(lines) > 50  # the requests above were logged (one line each at least)
    assert not any(line.startswith("1999-") or line.startswith('{"event": "FORGED"') for line in lines)
    # No line break of another kind either: what splitlines() sees is what split("\n") sees.
    assert len(text.splitlines()) == text.count("\n")
    if settings.log_format == "json":
        events = [json.loads(line) for line in lines]  # every line is one JSON event
        assert not any(e.get("event") == "FORGED" for e in events)
        assert any("FORGED" in e.get("event", "") for e in events)  # the escaped hostile path is there
        assert all(len(str(v)) <= logs.MAX_VALUE_CHARS + 20 for e in events for k, v in e.items() if k != "event")
        assert all(len(e["event"]) <= logs.MAX_EVENT_CHARS + 30 for e in events)
    else:
        for line in lines:
            assert _CONSOLE_LINE.match(line) or line.startswith(("  | ", "Traceback")), line[:200]
        assert any("FORGED" in line for line in lines)
    assert max(len(line) for line in lines) < 8000  # the 5,000-character system id is not copied in full


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_every_value_is_escaped_and_bounded_by_the_formatter(log_format, capsys):
    """The formatter-level net, on a standard-library logger and on structlog's context, in both formats."""
    handler = logging.StreamHandler()
    handler.setFormatter(logs.formatter(log_format))
    logger = logging.getLogger("test.log_safety")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    logs.configure_structlog()
    try:
        with logs.request_scope(system="a\r\n" + FORGED, document_id="D" * 10_000, user="x\u2028y\u202ez"):
            logger.info("path %s", "/p\r\n" + FORGED + "\ud800")
            try:
                raise ValueError("bad value\n" + FORGED)
            except ValueError:
                logger.exception("defect %s", "\x85" + FORGED)
    finally:
        logger.handlers = []
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert not any(line.startswith("1999-") for line in lines)
    assert len(err.splitlines()) == err.count("\n")  # no CR, VT, FF, NEL, U+2028 … line ends
    assert "\\r\\n1999" in err or "\\\\r\\\\n1999" in err
    assert "D" * (logs.MAX_VALUE_CHARS + 1) not in err
    assert "\\u2028" in err or "\\\\u2028" in err
    assert "\\u202e" in err or "\\\\u202e" in err  # a bidi override is shown, not applied
    if log_format == "json":
        first, second = (json.loads(line) for line in lines if line.startswith("{"))
        assert first["event"].endswith("\\ud800")  # a lone surrogate cannot break the UTF-8 output
        assert "\n  | " in second["exception"] and "\n1999" not in second["exception"]
    else:
        assert "  | ValueError: bad value" in err


def test_escape_text_keeps_ordinary_text_and_cuts_long_values():
    assert logs.escape_text("Văn phòng UBND tỉnh Tây Ninh", 100) == "Văn phòng UBND tỉnh Tây Ninh"
    assert logs.escape_text("a\tb\x00c", 100) == "a\\tb\\x00c"
    cut = logs.escape_text("x" * 500, 100)
    assert cut.startswith("x" * 100) and cut.endswith("…[+400 chars]") and len(cut) < 120
