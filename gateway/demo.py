"""``edoc-gateway demo``: a guided walk through the edXML core on embedded defaults.

Until the SOAP service lands (issue 3) the demo exercises everything below it, for real: it creates
a demo PKI, validates the public sample packages, builds a new package with an attachment, signs it
with a demo agency's key, verifies it against the demo trust store, and prints what to try next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    SignerInfo,
    SteeringType,
    TraceHeader,
    TraceHeaderList,
    add_files,
    render,
    to_json,
)
from gateway.edxml.dates import VN_TZ, format_date
from gateway.errors import GatewayError
from gateway.validation import validate_package


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


def run_demo(data_dir: Path, samples: Path, echo: Callable[[str], object] = print) -> None:
    """Run the walk-through, writing everything under ``data_dir``."""
    from gateway.pki import create_demo_pki
    from gateway.xmlcheck.signature import SigningKey, TrustStore, VerifyPolicy, sign_package, verify_package

    data_dir.mkdir(parents=True, exist_ok=True)
    pki_dir = data_dir / "pki"
    echo(f"== 1. demo PKI in {pki_dir}")
    pki = create_demo_pki(pki_dir, overwrite=True)
    echo(f"   root CA {pki.root_cert}, intermediate {pki.chain}, agency certificates for the demo agencies")

    echo(f"== 2. validating the public sample packages in {samples}")
    for path in sorted(samples.glob("*.edxml")):
        try:
            result = validate_package(path.read_bytes())
        except GatewayError as exc:
            echo(f"   REFUSED {path.name}: {exc.code}: {exc.message}")
        else:
            echo(f"   ok      {path.name}: {result.kind.value} {result.package.document_id}")

    echo("== 3. building a new document with an attachment")
    pkg = demo_package()
    out = data_dir / "outbox"
    out.mkdir(exist_ok=True)
    json_path = out / "demo.json"
    json_path.write_text(json.dumps(to_json(pkg), ensure_ascii=False, indent=2), encoding="utf-8")
    plain = out / "demo.edxml"
    plain.write_bytes(render(pkg))
    validate_package(plain.read_bytes())
    echo(f"   {plain} ({plain.stat().st_size} bytes), JSON form in {json_path}")

    echo("== 4. signing it as the sending agency, then verifying against the demo trust store")
    agency = pki.agencies["000.00.01.H53"]
    key = SigningKey.from_files(agency.key, agency.cert, pki.chain)
    signed = out / "demo.signed.edxml"
    signed.write_bytes(sign_package(plain.read_bytes(), key))
    check = verify_package(signed.read_bytes(), TrustStore.from_files(pki.trust, pki.crls), VerifyPolicy())
    echo(f"   {signed}: {check.state.value}, signer {check.signer_subject}")
    echo(f"   fingerprint sha256:{check.signer_fingerprint}")

    exe = "edoc-gateway"
    echo("== try next")
    echo(f"   {exe} inspect {signed}")
    echo(f"   {exe} inspect --json {plain}")
    echo(f"   {exe} verify --trust {pki.trust} {' '.join(f'--crl {c}' for c in pki.crls)} {signed}")
    echo(f"   {exe} build --json {json_path} {out / 'rebuilt.edxml'}")
    echo(f"   {exe} validate {samples}/*.edxml")
