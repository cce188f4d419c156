"""The demo's traffic: the public samples through SOAP, the push channels, and a signed round trip.

Everything goes through the gateway's public edges as an integrator's system would use them: zeep clients
(:class:`gateway.client.GatewayClient`, WS-Security UsernameToken) and one HMAC-signed JSON request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zeep.exceptions import Fault

from gateway.client import GatewayClient
from gateway.demo.documents import demo_package, status_for
from gateway.demo.setup import DEMO_SYSTEMS, REST_AGENCY, SOAP_AGENCY, DemoSetup
from gateway.edxml import StatusCode, read_bytes, render, to_json
from gateway.xmlcheck.signing import SigningKey, sign_package

Echo = Callable[[str], object]
#: The VPCP sample that also goes to the two push agencies.
_PUSHED_SAMPLE = "truclienthong-example__dc0bdef0-c7a3-4aaf-b717-777303442973.edxml"


def send_traffic(setup: DemoSetup, samples: Path, echo: Echo = print) -> None:
    """Sample packages through SOAP, then a signed document fetched, acknowledged and answered."""
    clients = {sid: GatewayClient(setup.url, sid, secret) for sid, secret in setup.secrets.items()}
    try:
        receipts = _send_samples(clients, samples, echo)
        _show_push(setup, samples, clients, receipts, echo)
        _signed_round_trip(setup, clients, echo)
    finally:
        for c in clients.values():
            c.close()


def _send_samples(clients: Mapping[str, GatewayClient], samples: Path, echo: Echo) -> dict[str, Any]:
    """Every ``*.edxml`` in ``samples`` (new documents first, statuses last) from the system of its sender."""
    by_sender = {organ: sid for sid, organs in DEMO_SYSTEMS.items() for organ in organs}
    by_sender["000.00.11.H53"] = "tayninh-qlvb"
    receipts: dict[str, Any] = {}
    echo(f"== sending the public samples in {samples}")
    ordered = sorted(samples.glob("*.edxml"), key=lambda p: ("status" in p.name, "new" not in p.name, p.name))
    for path in ordered:
        data = path.read_bytes()
        try:
            pkg = read_bytes(data)
            client = clients[by_sender.get(pkg.sender, "national-samples")]
            send = client.send_status if pkg.kind.value == "status" else client.send_edoc
            receipt = send(data)
            receipts[path.name] = receipt
            note = " (duplicate)" if receipt.duplicate else ""
            echo(f"   accepted {path.name}: docId {receipt.docId}{note}")
        except Fault as exc:
            echo(f"   refused  {path.name}: {exc.message}")
        except Exception as exc:  # a package we cannot even read: show why and go on
            echo(f"   refused  {path.name}: {exc}")
    return receipts


def _show_push(
    setup: DemoSetup, samples: Path, clients: Mapping[str, GatewayClient], receipts: Mapping[str, Any], echo: Echo
) -> None:
    """The VPCP sample went to Cao Bằng (SOAP push) and the Ministry of Construction (REST push) too: wait for
    the worker, then let both answer — one over SOAP, one over the JSON edge — and show the history."""
    receipt = receipts.get(_PUSHED_SAMPLE)
    if receipt is None:
        return
    echo(f"== push channels: {_PUSHED_SAMPLE} to {SOAP_AGENCY} (SOAP receiver) and {REST_AGENCY} (REST receiver)")
    vpcp = clients["vpcp-qlvb"]
    states = _wait_until_pushed(vpcp, receipt.docId)
    for organ in (SOAP_AGENCY, REST_AGENCY):
        echo(f"   {organ}: {states.get(organ, '?')}")
    soap_files = sorted((setup.data_dir / "receiver-soap").glob("*"))
    rest_files = sorted((setup.data_dir / "receiver-rest").glob("*.json"))
    echo(f"   SOAP receiver stored {len(soap_files)} file(s), REST receiver {len(rest_files)} message(s)")
    pkg = read_bytes((samples / _PUSHED_SAMPLE).read_bytes())
    # Cao Bằng answers 01 over SOAP; the ministry's REST system answers 03 over the JSON edge.
    clients["national-samples"].send_status(render(status_for(pkg, SOAP_AGENCY, StatusCode.ARRIVED)))
    _post_json_status(setup, "national-samples", to_json(status_for(pkg, REST_AGENCY, StatusCode.ACCEPTED)))
    view = vpcp.status_history(doc_id=receipt.docId)
    for r in view.recipient:
        if r.organId in (SOAP_AGENCY, REST_AGENCY):
            codes = ", ".join(s.statusCode for s in (r.status or [])) or "-"
            echo(f"   {r.organId}: {r.state}, statuses {codes}")


def _wait_until_pushed(client: GatewayClient, doc_id: str, timeout: float = 60) -> dict[str, str]:
    """Recipient states of ``doc_id`` once both push agencies show ``delivered`` (or when time runs out)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        view = client.status_history(doc_id=doc_id)
        states = {r.organId: r.state for r in view.recipient}
        if states.get(SOAP_AGENCY) == "delivered" and states.get(REST_AGENCY) == "delivered":
            break
        time.sleep(0.5)
    return states


def _post_json_status(setup: DemoSetup, system_id: str, doc: Mapping[str, Any]) -> None:
    """POST a status in canonical JSON to the REST edge, signed with the system's secret (HMAC-SHA256)."""
    body = json.dumps(doc, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    secret = setup.secrets[system_id].encode()
    req = urllib.request.Request(  # noqa: S310 -- loopback
        setup.url.replace("/soap", "/rest/v1/packages"),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Edoc-System": system_id,
            "X-Edoc-Timestamp": ts,
            "X-Edoc-Signature": "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest(),
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 -- loopback
        json.loads(r.read())


def _signed_round_trip(setup: DemoSetup, clients: Mapping[str, GatewayClient], echo: Echo) -> None:
    """A signed document sent, fetched byte-identical, acknowledged and answered; then its status history."""
    echo("== a signed document from Văn phòng UBND tỉnh Tây Ninh to Ban Tiếp Công dân and VPCP")
    agency = setup.pki.agencies["000.00.01.H53"]
    key = SigningKey.from_files(agency.key, agency.cert, setup.pki.chain)
    pkg = demo_package()
    signed = sign_package(render(pkg), key)
    receipt = clients["tayninh-qlvb"].send_edoc(signed)
    echo(f"   accepted: docId {receipt.docId}, sha256 {receipt.sha256}")
    vpcp = clients["vpcp-qlvb"]
    for item in vpcp.pending("000.00.00.G22"):
        if item.documentId != pkg.document_id:
            continue
        data = vpcp.get_edoc(item.deliveryId)
        echo(f"   VPCP fetched {len(data)} bytes, byte-identical: {data == signed}; acknowledging")
        vpcp.acknowledge(item.deliveryId, "done")
        for code in (StatusCode.ARRIVED, StatusCode.ACCEPTED):
            vpcp.send_status(render(status_for(pkg, "000.00.00.G22", code)))
        echo("   VPCP reported 01 (arrived) and 03 (accepted and registered)")
    tayninh = clients["tayninh-qlvb"]
    for item in tayninh.pending("000.01.01.H53"):
        if item.documentId == pkg.document_id:
            tayninh.get_edoc(item.deliveryId)
            tayninh.acknowledge(item.deliveryId, "done")  # this unit has "emit 01 on acknowledge"
    view = tayninh.status_history(document_id=pkg.document_id)
    for r in view.recipient:
        codes = ", ".join(f"{s.statusCode}" for s in (r.status or [])) or "-"
        echo(f"   {r.organId}: {r.state}, statuses {codes}")
