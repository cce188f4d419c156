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
import subprocess
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
DEMO_AGENCIES_CSV = """organ_id,name,parent,signature_policy,emit_arrived_on_ack
000.00.00.H53,UBND tỉnh Tây Ninh,,require,false
000.00.01.H53,Văn phòng UBND tỉnh Tây Ninh,000.00.00.H53,require,false
000.01.01.H53,Ban Tiếp Công dân,000.00.01.H53,require,true
000.00.11.H53,Sở Tài chính Tây Ninh,000.00.00.H53,verify-if-present,false
000.00.01.A53,Văn phòng Tỉnh ủy Tây Ninh,,verify-if-present,false
000.00.00.G22,Văn phòng Chính phủ,,verify-if-present,false
000.00.00.H41,UBND tỉnh Nghệ An,,verify-if-present,false
000.00.00.H14,UBND tỉnh Cao Bằng,,verify-if-present,false
000.00.00.G17,Bộ Xây dựng,,verify-if-present,false
000.00.00.A80,UBND xã Hòa Tiến,,verify-if-present,false
28.22.H17,UBND xã Hòa Sơn,,verify-if-present,false
"""
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
    url: str
    secrets: dict[str, str]


def prepare(data_dir: Path, bind: str, echo: Callable[[str], object] = print) -> DemoSetup:
    """Create (afresh) the demo data directory: PKI, settings, database, registry, systems."""
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
        f"crl_files = [{crls}]\n",
        encoding="utf-8",
    )
    config.chmod(0o600)
    settings = load_settings(config, env={})
    upgrade(settings)
    echo(f"== settings {config}, database {settings.effective_database_url}")
    csv_path = data_dir / "agencies.csv"
    csv_path.write_text(DEMO_AGENCIES_CSV, encoding="utf-8")
    with Registry.from_settings(settings) as registry:
        report = registry.import_file(csv_path)
        echo(f"== registry: {report.total} agencies imported from {csv_path}")
        creds = {sid: registry.add_system(sid, organs, name=sid) for sid, organs in DEMO_SYSTEMS.items()}
    cred_file = data_dir / "credentials.txt"
    cred_file.write_text("".join(f"{sid} {secret}\n" for sid, secret in creds.items()), encoding="utf-8")
    cred_file.chmod(0o600)
    return DemoSetup(config=config, pki=pki, url=f"http://{bind}/soap", secrets=creds)


def start_gateway(setup: DemoSetup, bind: str, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn with deploy/gunicorn.conf.py, as ``edoc-gateway serve`` would run it; waits for /healthz."""
    from gateway.cli import gunicorn_argv
    from gateway.config import load_settings

    settings = load_settings(setup.config, env={})
    env = {**os.environ, "EDOC_GATEWAY_CONFIG": str(setup.config)}
    with log.open("ab") as out:
        proc = subprocess.Popen(gunicorn_argv(settings), env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{bind}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the gateway did not start; see {log}")
        time.sleep(0.2)


def send_traffic(setup: DemoSetup, samples: Path, echo: Callable[[str], object] = print) -> None:
    """Sample packages through SOAP, then a signed document fetched, acknowledged and answered."""
    from zeep.exceptions import Fault

    from gateway.client import GatewayClient
    from gateway.xmlcheck.signature import SigningKey, sign_package

    clients = {sid: GatewayClient(setup.url, sid, secret) for sid, secret in setup.secrets.items()}
    by_sender = {organ: sid for sid, organs in DEMO_SYSTEMS.items() for organ in organs}
    by_sender["000.00.11.H53"] = "tayninh-qlvb"
    echo(f"== sending the public samples in {samples}")
    ordered = sorted(samples.glob("*.edxml"), key=lambda p: ("status" in p.name, "new" not in p.name, p.name))
    for path in ordered:
        data = path.read_bytes()
        try:
            pkg = read_bytes(data)
            client = clients[by_sender.get(pkg.sender, "national-samples")]
            send = client.send_status if pkg.kind.value == "status" else client.send_edoc
            receipt = send(data)
            note = " (duplicate)" if receipt.duplicate else ""
            echo(f"   accepted {path.name}: docId {receipt.docId}{note}")
        except Fault as exc:
            echo(f"   refused  {path.name}: {exc.message}")
        except Exception as exc:  # a package we cannot even read: show why and go on
            echo(f"   refused  {path.name}: {exc}")

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
    log = data_dir / "gateway.log"
    proc = start_gateway(setup, bind, log)
    try:
        echo(f"== gateway running at {setup.url} (log {log})")
        send_traffic(setup, samples, echo)
        echo("== try next")
        echo(f"   WSDL:        {setup.url}?wsdl")
        echo("   credentials (WS-Security UsernameToken, PasswordDigest):")
        for sid, secret in setup.secrets.items():
            echo(f"     {sid:<18} {secret}")
        echo(f"   export EDOC_GATEWAY_CONFIG={setup.config}")
        echo("   edoc-gateway agencies list")
        echo("   edoc-gateway systems list")
        echo(f"   edoc-gateway inspect {samples}/truclienthong-example__edoc_new.edxml")
        echo(
            f'   python -c "from gateway.client import GatewayClient as C; '
            f"c = C('{setup.url}', 'vpcp-qlvb', '<secret>'); print(c.pending('000.00.00.G22'))\""
        )
        if wait:
            echo("== serving; press Ctrl-C to stop")
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
