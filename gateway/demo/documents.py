"""Demo documents: a freshly built edoc and the status packages that answer it.

Used by ``edoc-gateway demo`` (:mod:`gateway.demo.traffic`), the end-to-end tests and the benchmarks, so that they
all exchange the same realistic package: a Tây Ninh provincial office writing to one of its units and to the VPCP.
"""

from __future__ import annotations

from datetime import datetime

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
)
from gateway.edxml.dates import VN_TZ, format_date


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
