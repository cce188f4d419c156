"""``edoc-gateway demo``: the gateway on embedded defaults, with demo agencies and sample traffic.

Everything is real: a demo PKI, a TOML settings file with a generated secret key, a SQLite database
migrated with alembic, a registry imported from a CSV file, systems with generated secrets, gunicorn on
127.0.0.1:8080 (configurable), and zeep clients sending the public sample packages and a freshly built,
signed document through SOAP, fetching and acknowledging it, and reporting statuses back.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.edxml import (
    Bussiness,
    BussinessDocType,
    Code,
    DocumentType,
    EdocPackage,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
    TraceHeaderList,
    add_files,
    read_bytes,
    render,
    to_json,
)
from gateway.edxml.dates import VN_TZ, format_date
from gateway.pki import DemoPki


def demo_package(now: datetime | None = None) -> EdocPackage:
    """A new document from the Tây Ninh provincial office to one of its units and to the VPCP."""
    now = (now or datetime.now(VN_TZ)).replace(tzinfo=None, microsecond=0)
    sender = Organization(
        organ_id="000.00.01.H53",
        organ_name="Văn phòng UBND tỉnh Tây Ninh",
        organization_in_charge="UBND tỉnh Tây Ninh",
        organ_add="Số 83, đường Phạm Tung, Phường 3, TP. Tây Ninh",
        email="vpubnd@tayninh.gov.vn",
    )
    header = MessageHeader(
        from_=sender,
        to=(
            Organization(organ_id="000.01.01.H53", organ_name="Ban Tiếp Công dân"),
            Organization(organ_id="000.00.00.G22", organ_name="Văn phòng Chính phủ"),
        ),
        document_id=f"000.00.01.H53,{format_date(now.date())},125/VP-HCTC",
        code=Code(code_number="125", code_notation="VP-HCTC"),
        promulgation_info=PromulgationInfo(place="Tây Ninh", promulgation_date=now.date()),
        document_type=DocumentType(type="1", type_detail="0", type_name="Công văn"),
        subject="V/v thử nghiệm liên thông văn bản điện tử qua edoc-gateway",
        content="Văn bản thử nghiệm do lệnh edoc-gateway demo tạo ra.",
        signer_info=SignerInfo(
            competence="KT. CHÁNH VĂN PHÒNG", position="Phó Chánh Văn phòng", full_name="Nguyễn Văn A"
        ),
        other_info=OtherInfo(
            priority=Priority.NORMAL,
            sphere_of_promulgation="Liên thông văn bản quốc gia",
            typer_notation="NVA",
            promulgation_amount=2,
            page_amount=1,
        ),
        steering_type=SteeringType.NOT_STEERING,
        to_places=("Như trên", "Lưu: VT"),
    )
    trace = TraceHeaderList(
        trace_headers=(TraceHeader(organ_id=sender.organ_id, timestamp=now),),
        bussiness=Bussiness(
            bussiness_doc_type=BussinessDocType.NEW, bussiness_doc_reason="Văn bản điện tử mới", paper=False
        ),
    )
    letter = ("CÔNG VĂN THỬ NGHIỆM\n\nVăn bản này được tạo bởi edoc-gateway demo để thử nghiệm liên thông.\n").encode()
    return add_files(EdocPackage(message_header=header, trace_header_list=trace), [("125-VP-HCTC.txt", letter)])


#: Demo registry: a province (level 1) with level-2/3 units, a ministry, and the agencies the public
#: samples name, so that every sample can travel. Province units require signatures bound to them.
DEMO_AGENCIES_CSV = """organ_id,name,parent,signature_policy,emit_arrived_on_ack,channel,endpoint
000.00.00.H53,UBND tỉnh Tây Ninh,,require,false,mailbox,
000.00.01.H53,Văn phòng UBND tỉnh Tây Ninh,000.00.00.H53,require,false,mailbox,
000.01.01.H53,Ban Tiếp Công dân,000.00.01.H53,require,true,mailbox,
000.00.11.H53,Sở Tài chính Tây Ninh,000.00.00.H53,verify-if-present,false,mailbox,
000.00.01.A53,Văn phòng Tỉnh ủy Tây Ninh,,verify-if-present,false,mailbox,
000.00.00.G22,Văn phòng Chính phủ,,verify-if-present,false,mailbox,
000.00.00.H41,UBND tỉnh Nghệ An,,verify-if-present,false,mailbox,
000.00.00.H14,UBND tỉnh Cao Bằng,,verify-if-present,false,soap,{soap_endpoint}
000.00.00.G17,Bộ Xây dựng,,verify-if-present,false,rest,{rest_endpoint}
000.00.00.A80,UBND xã Hòa Tiến,,verify-if-present,false,mailbox,
28.22.H17,UBND xã Hòa Sơn,,verify-if-present,false,mailbox,
"""
#: Push-channel agencies of the demo: Cao Bằng takes pushes with the reference SOAP receiver, the Ministry
#: of Construction with the reference REST receiver; their statuses come back through SOAP and JSON.
SOAP_AGENCY, REST_AGENCY = "000.00.00.H14", "000.00.00.G17"
DEMO_SYSTEMS = {
    "tayninh-qlvb": ("000.00.00.H53", "000.00.01.A53"),
    "vpcp-qlvb": ("000.00.00.G22",),
    "national-samples": ("000.00.00.H41", "000.00.00.H14", "000.00.00.G17", "000.00.00.A80", "28.22.H17"),
}
_MARKER = ".edoc-gateway-demo"


def status_for(doc: EdocPackage, reporter: str, code: StatusCode, description: str | None = None) -> StatusPackage:
    """A status package from ``reporter`` about ``doc`` (edxml.md §5), timestamped now (Vietnam time)."""
    h = doc.message_header
    return StatusPackage(
        from_=Organization(organ_id=reporter, organ_name=reporter),
        response_for=ResponseFor(
            organ_id=doc.sender,
            code=str(h.code),
            promulgation_date=h.promulgation_info.promulgation_date,
            document_id=doc.document_id,
        ),
        status_code=code,
        timestamp=datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0),
        description=description or f"{code.label_vi}",
    )


@dataclass(frozen=True)
class DemoSetup:
    config: Path
    pki: DemoPki
    data_dir: Path
    soap_port: int
    rest_port: int
    rest_key: str
    url: str
    secrets: dict[str, str]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def prepare(data_dir: Path, bind: str, echo: Callable[[str], object] = print) -> DemoSetup:
    """Create (afresh) the demo data directory: PKI, settings, database, registry, systems, receiver ports."""
    from gateway.config import load_settings
    from gateway.db.migrations import upgrade
    from gateway.pki import create_demo_pki
    from gateway.services.registry import Registry

    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / _MARKER).exists():
            raise FileExistsError(f"{data_dir} exists and was not made by the demo; choose another --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / _MARKER).write_text("created by edoc-gateway demo; deleted and recreated by the next demo run\n")
    pki = create_demo_pki(data_dir / "pki")
    echo(f"== demo PKI: root CA {pki.root_cert}, intermediate {pki.chain}")
    host = bind.rsplit(":", 1)[0]
    soap_port, rest_port = _free_port(host), _free_port(host)
    rest_key = secrets.token_urlsafe(24)
    config = data_dir / "gateway.toml"
    crls = ", ".join(f'"{c.relative_to(data_dir)}"' for c in pki.crls)
    config.write_text(
        "# Demo settings written by `edoc-gateway demo` (see deploy/edoc-gateway.env.example for all keys).\n"
        'data_dir = "."\n'
        f'bind = "{bind}"\n'
        "workers = 2\n"
        f'secret_key = "{secrets.token_urlsafe(32)}"\n'
        f'gateway_key = "{pki.gateway_key.relative_to(data_dir)}"\n'
        f'gateway_cert = "{pki.gateway_cert.relative_to(data_dir)}"\n'
        f'trust_store = "{pki.trust.relative_to(data_dir)}"\n'
        f"crl_files = [{crls}]\n"
        "worker_poll_seconds = 0.5\n"
        "retry_base_seconds = 2\n"
        "\n# Channel credentials of push agencies (kept out of the database; deploy/README.md).\n"
        f'[credentials."{REST_AGENCY}"]\n'
        f'hmac_key = "{rest_key}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    settings = load_settings(config, env={})
    upgrade(settings)
    echo(f"== settings {config}, database {settings.effective_database_url}")
    csv_path = data_dir / "agencies.csv"
    csv_path.write_text(
        DEMO_AGENCIES_CSV.format(
            soap_endpoint=f"http://{host}:{soap_port}/receiver", rest_endpoint=f"http://{host}:{rest_port}/inbox"
        ),
        encoding="utf-8",
    )
    with Registry.from_settings(settings) as registry:
        report = registry.import_file(csv_path)
        echo(f"== registry: {report.total} agencies imported from {csv_path}")
        creds = {sid: registry.add_system(sid, organs, name=sid) for sid, organs in DEMO_SYSTEMS.items()}
    cred_file = data_dir / "credentials.txt"
    cred_file.write_text("".join(f"{sid} {secret}\n" for sid, secret in creds.items()), encoding="utf-8")
    cred_file.chmod(0o600)
    return DemoSetup(
        config=config,
        pki=pki,
        url=f"http://{bind}/soap",
        secrets=creds,
        data_dir=data_dir,
        soap_port=soap_port,
        rest_port=rest_port,
        rest_key=rest_key,
    )


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


def start_processes(setup: DemoSetup, bind: str) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """The gateway (gunicorn, as ``edoc-gateway serve`` runs it), a delivery worker, and the two reference
    receivers; each logs to a file in the data directory."""
    from gateway.cli import gunicorn_argv
    from gateway.config import load_settings

    settings = load_settings(setup.config, env={})
    base = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_")}
    env = {**base, "EDOC_GATEWAY_CONFIG": str(setup.config)}
    d = setup.data_dir
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    exe = str(Path(sys.executable).with_name("edoc-gateway"))
    procs = [
        ("gateway", _spawn(gunicorn_argv(settings), env, d / "gateway.log", int(bind.rsplit(":", 1)[1]), "gateway")),
        ("worker", _spawn([exe, "worker"], env, d / "worker.log", 0, "worker")),
        (
            "SOAP receiver",
            _spawn(
                [gunicorn, "-b", f"127.0.0.1:{setup.soap_port}", "-w", "1", "adapters.soap.receiver:make_app()"],
                {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-soap")},
                d / "receiver-soap.log",
                setup.soap_port,
                "SOAP receiver",
            ),
        ),
        (
            "REST receiver",
            _spawn(
                [gunicorn, "-b", f"127.0.0.1:{setup.rest_port}", "-w", "1", "adapters.rest.receiver:make_app()"],
                {**base, "EDOC_RECEIVER_DIR": str(d / "receiver-rest"), "EDOC_RECEIVER_HMAC_KEY": setup.rest_key},
                d / "receiver-rest.log",
                setup.rest_port,
                "REST receiver",
            ),
        ),
    ]
    deadline = time.monotonic() + 60
    while True:  # the gateway answers /healthz once its workers have booted
        try:
            with urllib.request.urlopen(f"http://{bind}/healthz", timeout=2) as r:
                if r.status == 200:
                    return procs
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not become healthy; see {d / 'gateway.log'}")
        time.sleep(0.2)


def send_traffic(setup: DemoSetup, samples: Path, echo: Callable[[str], object] = print) -> None:
    """Sample packages through SOAP, then a signed document fetched, acknowledged and answered."""
    from zeep.exceptions import Fault

    from gateway.client import GatewayClient
    from gateway.xmlcheck.signing import SigningKey, sign_package

    clients = {sid: GatewayClient(setup.url, sid, secret) for sid, secret in setup.secrets.items()}
    by_sender = {organ: sid for sid, organs in DEMO_SYSTEMS.items() for organ in organs}
    by_sender["000.00.11.H53"] = "tayninh-qlvb"
    receipts: dict[str, object] = {}
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

    _show_push(setup, clients, receipts, echo)

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
    for c in clients.values():
        c.close()


def _show_push(setup: DemoSetup, clients: dict, receipts: dict, echo: Callable[[str], object]) -> None:
    """The VPCP sample went to Cao Bằng (SOAP push) and the Ministry of Construction (REST push) too: wait for
    the worker, then let both answer — one over SOAP, one over the JSON edge — and show the history."""
    import hashlib
    import hmac
    import json

    sample = "truclienthong-example__dc0bdef0-c7a3-4aaf-b717-777303442973.edxml"
    receipt = receipts.get(sample)
    if receipt is None:
        return
    echo(f"== push channels: {sample} to {SOAP_AGENCY} (SOAP receiver) and {REST_AGENCY} (REST receiver)")
    vpcp = clients["vpcp-qlvb"]
    deadline = time.monotonic() + 60
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        view = vpcp.status_history(doc_id=receipt.docId)
        states = {r.organId: r.state for r in view.recipient}
        if states.get(SOAP_AGENCY) == "delivered" and states.get(REST_AGENCY) == "delivered":
            break
        time.sleep(0.5)
    for organ in (SOAP_AGENCY, REST_AGENCY):
        echo(f"   {organ}: {states.get(organ, '?')}")
    soap_files = sorted((setup.data_dir / "receiver-soap").glob("*"))
    rest_files = sorted((setup.data_dir / "receiver-rest").glob("*.json"))
    echo(f"   SOAP receiver stored {len(soap_files)} file(s), REST receiver {len(rest_files)} message(s)")
    pkg = read_bytes(Path(__file__).resolve().parents[1].parent.joinpath("shared", "samples", sample).read_bytes())
    # Cao Bằng answers 01 over SOAP; the ministry's REST system answers 03 over the JSON edge.
    peers = clients["national-samples"]
    peers.send_status(render(status_for(pkg, SOAP_AGENCY, StatusCode.ARRIVED)))
    body = json.dumps(to_json(status_for(pkg, REST_AGENCY, StatusCode.ACCEPTED)), ensure_ascii=False).encode()
    ts = str(int(time.time()))
    secret = setup.secrets["national-samples"].encode()
    req = urllib.request.Request(  # noqa: S310 -- loopback
        setup.url.replace("/soap", "/rest/v1/packages"),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Edoc-System": "national-samples",
            "X-Edoc-Timestamp": ts,
            "X-Edoc-Signature": "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest(),
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 -- loopback
        json.loads(r.read())
    view = vpcp.status_history(doc_id=receipt.docId)
    for r in view.recipient:
        if r.organId in (SOAP_AGENCY, REST_AGENCY):
            codes = ", ".join(s.statusCode for s in (r.status or [])) or "-"
            echo(f"   {r.organId}: {r.state}, statuses {codes}")


def run_demo(
    data_dir: Path,
    samples: Path,
    *,
    bind: str = "127.0.0.1:8080",
    wait: bool = True,
    echo: Callable[[str], object] = print,
) -> None:
    """Set up, start the gateway, send traffic, print what to try next; serve until Ctrl-C if ``wait``."""
    data_dir = data_dir.resolve()
    setup = prepare(data_dir, bind, echo)
    procs = start_processes(setup, bind)
    try:
        echo(f"== gateway running at {setup.url}, with a delivery worker and reference SOAP/REST receivers")
        echo(f"   logs: {', '.join(str(data_dir / n) for n in ('gateway.log', 'worker.log'))}")
        send_traffic(setup, samples, echo)
        echo("== try next")
        echo(f"   WSDL:        {setup.url}?wsdl")
        echo("   credentials (WS-Security UsernameToken, PasswordDigest):")
        for sid, secret in setup.secrets.items():
            echo(f"     {sid:<18} {secret}")
        echo(f"   export EDOC_GATEWAY_CONFIG={setup.config}")
        echo("   edoc-gateway agencies list")
        echo("   edoc-gateway systems list")
        echo("   edoc-gateway deliveries list")
        echo(f"   edoc-gateway inspect {samples}/truclienthong-example__edoc_new.edxml")
        echo(
            f'   python -c "from gateway.client import GatewayClient as C; '
            f"c = C('{setup.url}', 'vpcp-qlvb', '<secret>'); print(c.pending('000.00.00.G22'))\""
        )
        if wait:
            echo("== serving; press Ctrl-C to stop")
            procs[0][1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
