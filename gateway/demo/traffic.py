"""The demo's traffic: the sample corpora through SOAP, the push channels, and a signed round trip.

The samples are the project's own corpus (:mod:`gateway.demo.corpus`, always) and the real public samples of
the external corpus when present (``--samples``, else :func:`gateway.demo.corpus.external_samples`). Everything
goes through the gateway's public edges as an integrator's system would use them: zeep clients
(:class:`gateway.client.GatewayClient`, WS-Security UsernameToken) and one HMAC-signed JSON request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shlex
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zeep.exceptions import Fault

from gateway.client import GatewayClient
from gateway.demo.corpus import entry, external_samples
from gateway.demo.documents import demo_package, status_for
from gateway.demo.setup import DEMO_SYSTEMS, REST_AGENCY, SOAP_AGENCY, DemoSetup
from gateway.edxml import EdocPackage, StatusCode, read_bytes, render, to_json
from gateway.tracking.calendar import local_date
from gateway.xmlcheck.signing import SigningKey, sign_package

Echo = Callable[[str], object]
#: The corpus' VPCP letter, which also goes to the two push agencies.
_PUSHED = "edoc_new_three_recipients.edxml"
#: A mailbox the corpus fills and nobody empties (the VPCP letter and its follow-ups to Nghệ An), and the
#: system that reads it: what the printed "try next" example lists.
MAILBOX = ("national-samples", "000.00.00.H41")


def send_traffic(setup: DemoSetup, samples: Path | None, echo: Echo = print) -> None:
    """The own corpus, then the real samples (``samples``, or the external corpus when present) through SOAP;
    the push channels; a signed document fetched, acknowledged and answered."""
    clients = {sid: GatewayClient(setup.url, sid, secret) for sid, secret in setup.secrets.items()}
    real = samples if samples is not None else external_samples()
    try:
        echo(f"== sending the sample corpus in {setup.corpus_dir}")
        receipts = _send_files(clients, setup.corpus, echo)
        if real is None:
            echo("== no real samples to send (the external corpus ../shared is absent); the own corpus covers them")
        else:
            echo(f"== sending the real public samples in {real}")
            ordered = sorted(real.glob("*.edxml"), key=lambda p: ("status" in p.name, "new" not in p.name, p.name))
            _send_files(clients, ordered, echo)
        _show_push(setup, clients, receipts, echo)
        _signed_round_trip(setup, clients, echo)
    finally:
        for c in clients.values():
            c.close()


def _send_files(clients: Mapping[str, GatewayClient], paths: Sequence[Path], echo: Echo) -> dict[str, Any]:
    """Each package, in order, from the system of its sender; returns the receipts by file name."""
    by_sender = {organ: sid for sid, organs in DEMO_SYSTEMS.items() for organ in organs}
    by_sender["000.00.11.H53"] = "tayninh-qlvb"
    receipts: dict[str, Any] = {}
    for path in paths:
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


def _show_push(setup: DemoSetup, clients: Mapping[str, GatewayClient], receipts: Mapping[str, Any], echo: Echo) -> None:
    """The VPCP letter went to Cao Bằng (SOAP push) and the Ministry of Construction (REST push) too: wait for
    the worker, then let both answer — one over SOAP, one over the JSON edge — and show the history."""
    receipt = receipts.get(_PUSHED)
    if receipt is None:
        return
    echo(f"== push channels: {_PUSHED} to {SOAP_AGENCY} (SOAP receiver) and {REST_AGENCY} (REST receiver)")
    vpcp = clients["vpcp-qlvb"]
    states = _wait_until_pushed(vpcp, receipt.docId)
    for organ in (SOAP_AGENCY, REST_AGENCY):
        echo(f"   {organ}: {states.get(organ, '?')}")
    soap_files = sorted((setup.data_dir / "receiver-soap").glob("*"))
    rest_files = sorted((setup.data_dir / "receiver-rest").glob("*.json"))
    echo(f"   SOAP receiver stored {len(soap_files)} file(s), REST receiver {len(rest_files)} message(s)")
    pkg = entry(_PUSHED).model
    assert isinstance(pkg, EdocPackage)
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


def next_steps(setup: DemoSetup) -> list[str]:
    """What to try next, as lines that work when pasted: the CLI and the interpreter of this very run (the CLI
    may not be on PATH), this run's settings and corpus files, and a mailbox the traffic left full."""
    cli = _command_path(Path(sys.executable).with_name("edoc-gateway"), "edoc-gateway")
    python = shlex.quote(sys.executable)  # never "python3": that may be another interpreter, without this venv
    sid, organ = MAILBOX
    corpus = setup.corpus_dir
    today = local_date(datetime.now(UTC)).isoformat()
    example = (
        f"from gateway.client import GatewayClient as C; c = C({setup.url!r}, {sid!r}, {setup.secrets[sid]!r}); "
        f"[print(i.sender, i.documentId) for i in c.pending({organ!r})]"
    )
    return [
        f"export EDOC_GATEWAY_CONFIG={shlex.quote(str(setup.config))}",
        f"{cli} agencies list",
        f"{cli} systems list",
        f"{cli} deliveries list",
        f"{cli} documents list --limit 5",
        f"{cli} report --from {today} --to {today} --format table",
        f"{cli} alerts list",
        f"{cli} inspect {shlex.quote(str(corpus / _PUSHED))}",
        f"{cli} build --json {shlex.quote(str(corpus / 'status_acceptance_03.json'))} "
        f"{shlex.quote(str(setup.data_dir / 'built.edxml'))}",
        f'{python} -c "{example}"' if not set(example) & set('"$`\\!') else f"{python} -c {shlex.quote(example)}",
    ]


def _command_path(exe: Path, name: str) -> str:
    """``name`` when PATH finds this very file, else its path relative to the working directory when below it,
    else absolute: the shortest form that runs THIS installation."""
    found = shutil.which(name)
    if found is not None and Path(found).absolute() == exe.absolute():
        return name
    absolute = exe.absolute()
    try:
        return shlex.quote(str(absolute.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(absolute))
