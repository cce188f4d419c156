"""Real traffic on the console rig (tests/consolerig.py), for the tests that need a real package rather than the
generated history's metadata (whose stored bytes are a placeholder, and whose dead letters have no outbox rows):

* :func:`send_package` — one signed edXML package from the Government Office of the demo PKI, over SOAP through
  the real intake, to the agencies named;
* :func:`dead_letter` — one delivery pass past a one-second retry budget, so a push that fails is dead at once;
* :func:`deliver` — one ordinary delivery pass.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from consolerig import ConsoleGateway

from gateway.client import GatewayClient
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.xmlcheck.signing import SigningKey, sign_package

SENDER = "000.00.00.G22"
SENDER_NAME = "Văn phòng Chính phủ"
SYSTEM = "SG"
#: The system's secret per gateway (printed once by `systems add`; kept in memory only).
_SECRETS: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class Sent:
    doc_id: str
    document_id: str
    raw: bytes


def send_package(gw: ConsoleGateway, pki: Any, to: tuple[str, ...], number: str) -> Sent:
    """Register the sender and its system once, then send package ``number`` to ``to``; the bytes as stored."""
    if gw.base not in _SECRETS:
        assert gw.cli("agencies", "add", SENDER, "--name", SENDER_NAME).returncode == 0
        done = gw.cli("systems", "add", SYSTEM, "--agency", SENDER)
        assert done.returncode == 0, done.stderr
        _SECRETS[gw.base] = next(x.split(": ", 1)[1] for x in done.stdout.splitlines() if x.startswith("secret: "))
    secret = _SECRETS[gw.base]
    base = demo_package()
    document_id = f"{SENDER},2026/12/01,{number}/VPCP-HC"
    header = dataclasses.replace(
        base.message_header,
        from_=Organization(organ_id=SENDER, organ_name=SENDER_NAME),
        to=tuple(Organization(organ_id=o, organ_name=o) for o in to),
        document_id=document_id,
        code=dataclasses.replace(base.message_header.code, code_number=number),
    )
    cred = pki.agencies[SENDER]
    data = sign_package(
        render(dataclasses.replace(base, message_header=header)), SigningKey.from_files(cred.key, cred.cert, pki.chain)
    )
    client = GatewayClient(f"{gw.base}/soap", SYSTEM, secret)
    try:
        doc_id = client.send_edoc(data).docId
    finally:
        client.close()
    store = gw.store()
    try:
        raw = store.documents.raw(doc_id)
    finally:
        store.engine.dispose()
    assert raw is not None and len(raw) > 1000
    return Sent(doc_id, document_id, raw)


def system_secret(gw: ConsoleGateway) -> str:
    """The sending system's secret (for the tests that check it is written nowhere)."""
    return _SECRETS[gw.base]


def dead_letter(gw: ConsoleGateway) -> Any:
    """One worker pass with a one-second retry budget, once the budget has passed: a failing push is dead at its
    first attempt (real times in the attempt log: no clock is moved)."""
    from gateway.worker import run_worker

    time.sleep(1.2)
    return run_worker(dataclasses.replace(gw.settings, retry_limit_seconds=1), once=True)


def deliver(gw: ConsoleGateway) -> Any:
    from gateway.worker import run_worker

    return run_worker(gw.settings, once=True)


__all__ = ["SENDER", "Sent", "dead_letter", "deliver", "send_package", "system_secret"]
