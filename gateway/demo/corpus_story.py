"""The models of the project's own corpus (:mod:`gateway.demo.corpus`): one coherent exchange, built with the
edXML model only, at fixed times and from a fixed seed, so every build is byte-identical.

The story uses the agencies of the demo registry (:mod:`gateway.demo.setup`), so the whole corpus can travel
through ``edoc-gateway demo``: the Government Office (VPCP, G22) sends an official letter to Nghệ An (H41), Cao
Bằng (H14, SOAP push) and the Ministry of Construction (G17, REST push), then updates, replaces and revokes it;
Nghệ An answers with every status code; VPCP recalls it from Nghệ An (13). Beside it travel a commune's letter
with a non-standard agency code (A80 → 28.22.H17, as in the official SDK sample) and a Tây Ninh department's
report in the Bkav axis' habits (dd/MM/yyyy dates, empty elements).
"""

from __future__ import annotations

import dataclasses
import io
import random
import uuid
import zipfile
from datetime import date, datetime, timedelta
from typing import Final

from gateway.demo.corpus_variants import dummy_signature
from gateway.edxml import (
    Attachment,
    Bussiness,
    BussinessDocType,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
    TraceHeaderList,
)
from gateway.edxml.dates import format_date

#: When the story starts (naive Vietnam local time, like every edXML timestamp): in the past, so no check
#: flags a future date, and fixed, so every build is the same.
EPOCH: Final = datetime(2025, 10, 1, 8, 30)
SEED: Final = 1022016
ZIP_TYPE: Final = "application/zip"

G22, H41, H14, G17 = "000.00.00.G22", "000.00.00.H41", "000.00.00.H14", "000.00.00.G17"
#: A commune writing to a commune with a code outside the OrganId grammar (the official SDK sample's pair).
A80, H17_COMMUNE = "000.00.00.A80", "28.22.H17"
#: Tây Ninh's finance department writing to the provincial Party office (the Bkav axis sample's pair).
STC_H53, TU_A53 = "000.00.11.H53", "000.00.01.A53"


def _org(organ_id: str, name: str, in_charge: str, address: str, mail: str, phone: str) -> Organization:
    return Organization(
        organ_id=organ_id,
        organ_name=name,
        organization_in_charge=in_charge,
        organ_add=address,
        email=f"{mail}@corpus.edoc-gateway.example",
        telephone=phone,
        fax=phone.replace(" 0", " 9"),
        website=f"{mail}.edoc-gateway.example",
    )


AGENCIES: Final[dict[str, Organization]] = {
    G22: _org(G22, "Văn phòng Chính phủ", "Chính phủ", "Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội", "vpcp", "024 0001"),
    H41: _org(H41, "UBND tỉnh Nghệ An", "UBND tỉnh Nghệ An", "Số 03 Trường Thi, TP. Vinh", "nghean", "0238 0001"),
    H14: _org(H14, "UBND tỉnh Cao Bằng", "UBND tỉnh Cao Bằng", "Số 011 Hoàng Đình Giong", "caobang", "0206 0001"),
    G17: _org(G17, "Bộ Xây dựng", "Chính phủ", "Số 37 Lê Đại Hành, Hai Bà Trưng, Hà Nội", "bxd", "024 0002"),
    A80: _org(A80, "UBND xã Hòa Tiến", "UBND huyện Hòa Vang", "Thôn Lệ Sơn, xã Hòa Tiến", "hoatien", "0236 0001"),
    H17_COMMUNE: _org(H17_COMMUNE, "UBND xã Hòa Sơn", "UBND huyện Hòa Vang", "xã Hòa Sơn", "hoason", "0236 0002"),
    STC_H53: _org(STC_H53, "Sở Tài chính Tây Ninh", "Tỉnh Tây Ninh", "Số 9 Trần Hưng Đạo", "stc", "0276 0001"),
    TU_A53: _org(TU_A53, "Văn phòng Tỉnh ủy Tây Ninh", "Tỉnh Tây Ninh", "Số 1 Nguyễn Thái Học", "vptu", "0276 0002"),
}

_WORDS: Final = "văn bản điện tử liên thông quản lý hành chính đơn vị triển khai thực hiện báo cáo kết quả"
_STAFF: Final = StaffInfo(
    department="Văn thư", staff="Trần Thị Mai", mobile="84900000001", email="vanthu@vpcp.corpus.example"
)


def _rng(purpose: str) -> random.Random:
    """A generator of its own per purpose: adding a document never changes the bytes of the others."""
    return random.Random(f"{SEED}:{purpose}")  # noqa: S311 -- test data, not a secret


def _uuid(purpose: str) -> str:
    return str(uuid.UUID(int=_rng(purpose).getrandbits(128), version=4))


def document_id(sender: str, day: date, code: Code) -> str:
    """The business DocumentId ``<OrganId>,<yyyy/MM/dd>,<number>/<notation>`` (edxml.md §3.1 1.14)."""
    return f"{sender},{format_date(day)},{code}"


def zipped(entry_name: str, data: bytes) -> bytes:
    """One deflated entry, VNPT style, with a fixed entry time (``zipfile`` would stamp the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(entry_name, date_time=EPOCH.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data, compresslevel=6)
    return buf.getvalue()


def letter(title: str, paragraphs: int, purpose: str) -> bytes:
    """A deterministic Vietnamese text body (the content of attachments)."""
    words = _WORDS.split()
    rng = _rng(purpose)
    lines = [title.upper(), ""]
    for n in range(1, paragraphs + 1):
        lines.append(f"{n}. " + " ".join(rng.choice(words) for _ in range(40)) + ".")
    return ("\n".join(lines) + "\n").encode()


def attachment(content_id: str, name: str, payload: bytes, content_type: str) -> tuple[ManifestReference, Attachment]:
    """A manifest reference and its attachment, described alike (as producers do)."""
    ref = ManifestReference(content_id=content_id, content_type=content_type, description=name, attachment_name=name)
    att = Attachment(
        content_id=content_id, attachment_name=name, description=name, content_type=content_type, data=payload
    )
    return ref, att


# --------------------------------------------------------------------------------------------- documents

VPCP_CODE: Final = Code(code_number="125", code_notation="VPCP-KSTT")
VPCP_DAY: Final = EPOCH.date()
VPCP_DOCUMENT_ID: Final = document_id(G22, VPCP_DAY, VPCP_CODE)


def _vpcp_header(number: str, subject: str, to: tuple[str, ...]) -> MessageHeader:
    """A VPCP letter of the story's first day; ``number`` 125 is the letter every status answers."""
    code = Code(code_number=number, code_notation=VPCP_CODE.code_notation)
    return MessageHeader(
        from_=AGENCIES[G22],
        to=tuple(AGENCIES[o] for o in to),
        document_id=document_id(G22, VPCP_DAY, code),
        code=code,
        promulgation_info=PromulgationInfo(place="Hà Nội", promulgation_date=VPCP_DAY),
        document_type=DocumentType(type="1", type_detail="0", type_name="Công văn"),
        subject=subject,
        content="Đề nghị các cơ quan, đơn vị kết nối phần mềm quản lý văn bản với trục liên thông.",
        signer_info=SignerInfo(
            competence="KT. BỘ TRƯỞNG, CHỦ NHIỆM", position="Phó Chủ nhiệm", full_name="Lê Văn Bình"
        ),
        due_date=VPCP_DAY + timedelta(days=30),
        other_info=OtherInfo(
            priority=Priority.URGENT,
            sphere_of_promulgation="Liên thông văn bản quốc gia",
            typer_notation="KSTT",
            promulgation_amount=3,
            page_amount=2,
            direction=False,
            appendixes=("Phụ lục: danh sách đơn vị kết nối",),
        ),
        steering_type=SteeringType.NOT_STEERING,
        to_places=("Như trên", "Lưu: VT, KSTT"),
    )


def _trace(sender: str, bussiness: Bussiness, at: datetime = EPOCH) -> TraceHeaderList:
    return TraceHeaderList(trace_headers=(TraceHeader(organ_id=sender, timestamp=at),), bussiness=bussiness)


def _new(reason: str = "Văn bản điện tử mới", staff: StaffInfo | None = _STAFF) -> Bussiness:
    return Bussiness(
        bussiness_doc_type=BussinessDocType.NEW, bussiness_doc_reason=reason, paper=False, staff_info=staff
    )


def _files(*files: tuple[ManifestReference, Attachment]) -> dict[str, tuple]:
    return {"references": tuple(r for r, _ in files), "attachments": tuple(a for _, a in files)}


def vpcp_letter() -> EdocPackage:
    """VPCP → Nghệ An, Cao Bằng, Ministry of Construction: a zipped letter and a PDF that is not zipped."""
    header = _vpcp_header("125", "V/v kết nối, liên thông phần mềm quản lý văn bản", (H41, H14, G17))
    body = letter("Công văn số 125/VPCP-KSTT", 12, "vpcp-letter")
    pdf = b"%PDF-1.4\n% edoc-gateway corpus\n" + letter("Phụ lục", 3, "vpcp-annex") + b"%%EOF\n"
    files = _files(
        attachment("101", "125-VPCP-KSTT.doc", zipped(f"{_uuid('vpcp-zip')}.txt", body), ZIP_TYPE),
        attachment("102", "Phu-luc-125.pdf", pdf, "application/pdf"),
    )
    return EdocPackage(
        message_header=header, trace_header_list=_trace(G22, _new()), signature=dummy_signature(), **files
    )


def vpcp_update() -> EdocPackage:
    """An update of the letter (BussinessDocType 2): new content and a changed recipient list."""
    receivers = (
        Receiver(organ_id=G17, receiver_type=ReceiverType.REMOVED),
        Receiver(organ_id=H14, receiver_type=ReceiverType.ADDED),
    )
    bussiness = Bussiness(
        bussiness_doc_type=BussinessDocType.UPDATE,
        document_id=VPCP_DOCUMENT_ID,
        bussiness_doc_reason="Cập nhật văn bản điện tử",
        paper=False,
        bussiness_document_info=BussinessDocumentInfo(document_info=True, document_receiver=True, receivers=receivers),
        staff_info=_STAFF,
    )
    return _vpcp_follow_up(bussiness, "129", "vpcp-update")


def vpcp_replacement() -> EdocPackage:
    """A replacement (BussinessDocType 3) naming the replaced letter twice, for two groups of receivers."""
    infos = (
        ReplacementInfo(document_id=VPCP_DOCUMENT_ID, organ_ids=(H41, H14)),
        ReplacementInfo(document_id=VPCP_DOCUMENT_ID, organ_ids=(G17,)),
    )
    bussiness = Bussiness(
        bussiness_doc_type=BussinessDocType.REPLACE,
        bussiness_doc_reason="Văn bản thay thế",
        paper=False,
        replacement_info_list=infos,
        staff_info=_STAFF,
    )
    return _vpcp_follow_up(bussiness, "130", "vpcp-replacement")


def vpcp_revocation() -> EdocPackage:
    """A revocation (BussinessDocType 1): the letter it revokes is named in ``ResponseFor``."""
    bussiness = Bussiness(
        bussiness_doc_type=BussinessDocType.REVOKE,
        bussiness_doc_reason="Thu hồi văn bản điện tử",
        paper=False,
        staff_info=_STAFF,
    )
    pkg = _vpcp_follow_up(bussiness, "131", "vpcp-revocation")
    target = ResponseFor(organ_id=G22, code=str(VPCP_CODE), promulgation_date=VPCP_DAY, document_id=VPCP_DOCUMENT_ID)
    return dataclasses.replace(pkg, message_header=dataclasses.replace(pkg.message_header, response_for=(target,)))


def _vpcp_follow_up(bussiness: Bussiness, number: str, purpose: str) -> EdocPackage:
    """Update, replacement and revocation are packages of their own (DocumentId with their own number) that name
    the letter they concern: a status about the letter then concerns the letter alone."""
    subject = f"{bussiness.bussiness_doc_reason}: V/v kết nối, liên thông phần mềm quản lý văn bản"
    header = _vpcp_header(number, subject, (H41, H14, G17))
    at = EPOCH + timedelta(days=1)
    body = letter(bussiness.bussiness_doc_reason or "", 4, purpose)
    files = _files(attachment("201", "125-VPCP-KSTT.doc", zipped(f"{_uuid(purpose)}.txt", body), ZIP_TYPE))
    return EdocPackage(
        message_header=header,
        trace_header_list=_trace(G22, bussiness, at),
        signature=dummy_signature(),
        **files,
    )


def vpcp_note(number: str, subject: str, *, signed: bool = True) -> EdocPackage:
    """A short VPCP → Nghệ An note with one zipped attachment: the carrier of the producer variants."""
    header = _vpcp_header(number, subject, (H41,))
    body = letter(subject, 3, f"note-{number}")
    files = _files(attachment(f"3{number}", f"{number}-VPCP-KSTT.doc", zipped(f"note-{number}.txt", body), ZIP_TYPE))
    return EdocPackage(
        message_header=header,
        trace_header_list=_trace(G22, _new()),
        signature=dummy_signature() if signed else None,
        **files,
    )


def commune_letter(embedded: bytes) -> EdocPackage:
    """A commune → commune directive (A80 → 28.22.H17) with every optional element filled in; its attachment is
    named ``.doc`` but its zip entry is an edXML file, as in the official SDK samples."""
    code = Code(code_number="15", code_notation="UBND-VP")
    day = VPCP_DAY - timedelta(days=2)
    header = MessageHeader(
        from_=AGENCIES[A80],
        to=(AGENCIES[H17_COMMUNE],),
        document_id=document_id(A80, day, code),
        code=code,
        promulgation_info=PromulgationInfo(place="Hòa Tiến", promulgation_date=day),
        document_type=DocumentType(type="1", type_detail="0", type_name="Công văn"),
        subject="V/v phối hợp kết nối, liên thông văn bản điện tử cấp xã",
        content="UBND xã Hòa Tiến đề nghị UBND xã Hòa Sơn phối hợp triển khai.",
        signer_info=SignerInfo(competence="TM. ỦY BAN NHÂN DÂN", position="Chủ tịch", full_name="Phạm Văn Cường"),
        due_date=day + timedelta(days=10),
        other_info=OtherInfo(
            priority=Priority.NORMAL,
            sphere_of_promulgation="Liên thông văn bản",
            typer_notation="PVC",
            promulgation_amount=2,
            page_amount=3,
            direction=False,
            appendixes=("Phụ lục: danh sách đầu mối liên thông",),
        ),
        steering_type=SteeringType.STEERING,
        to_places=("Như trên", "Lưu: VT"),
    )
    staff = StaffInfo(
        department="Văn phòng UBND xã", staff="Võ Thị Hoa", mobile="84900000002", email="vanthu@hoatien.corpus.example"
    )
    files = _files(attachment("209", "15-UBND-VP.doc", zipped(f"{_uuid('commune')}.edxml", embedded), ZIP_TYPE))
    return EdocPackage(
        message_header=header,
        trace_header_list=_trace(A80, _new(staff=staff), datetime.combine(day, datetime.min.time())),
        signature=dummy_signature(),
        **files,
    )


def province_report() -> EdocPackage:
    """Tây Ninh's finance department → the provincial Party office, in the Bkav axis' habits: no address,
    telephone, signer or due date (written as empty elements)."""
    code = Code(code_number="318", code_notation="STC-NS")
    day = VPCP_DAY - timedelta(days=1)
    sender = Organization(
        organ_id=STC_H53,
        organ_name="Sở Tài chính Tây Ninh",
        organization_in_charge="Tỉnh Tây Ninh",
        email="stc@corpus.edoc-gateway.example",
    )
    header = MessageHeader(
        from_=sender,
        to=(AGENCIES[TU_A53],),
        document_id=document_id(STC_H53, day, code),
        code=code,
        promulgation_info=PromulgationInfo(place="Tây Ninh", promulgation_date=day),
        document_type=DocumentType(type="1", type_detail="0", type_name="Công văn"),
        subject="Báo cáo tình hình thực hiện dự toán ngân sách quý III năm 2025",
        content="Báo cáo tình hình thực hiện dự toán ngân sách quý III năm 2025",
        other_info=OtherInfo(
            priority=Priority.NORMAL,
            sphere_of_promulgation="Liên thông văn bản",
            promulgation_amount=2,
            page_amount=6,
            direction=False,
        ),
        steering_type=SteeringType.STEERING,
        to_places=("Các sở, ban, ngành tỉnh",),
    )
    body = letter("Báo cáo quý III", 6, "province-report")
    files = _files(attachment("318", "318-STC-NS.doc", zipped(f"{_uuid('province')}.txt", body), ZIP_TYPE))
    return EdocPackage(
        message_header=header,
        trace_header_list=_trace(STC_H53, _new(), datetime.combine(day, datetime.min.time())),
        signature=dummy_signature(),
        **files,
    )


# ---------------------------------------------------------------------------------------------- statuses

#: What Nghệ An's records office writes for each step (edxml.md §5.2), in its own words.
STATUS_TEXT: Final[dict[StatusCode, str]] = {
    StatusCode.ARRIVED: "Văn thư: Đã đến - phần mềm QLVB đã nhận, văn thư chưa xử lý",
    StatusCode.REJECTED: "Văn thư: Từ chối tiếp nhận - văn bản không thuộc thẩm quyền",
    StatusCode.ACCEPTED: "Văn thư: Đã tiếp nhận, vào sổ văn bản đến",
    StatusCode.ASSIGNED: "Lãnh đạo: Phân công xử lý",
    StatusCode.IN_PROGRESS: "Chuyên viên: Đang xử lý",
    StatusCode.DONE: "Chuyên viên: Đã hoàn thành xử lý",
    StatusCode.RECALL_REQUESTED: "Đề nghị thu hồi văn bản đã gửi",
    StatusCode.CHANGE_ACCEPTED: "Đồng ý thu hồi/cập nhật văn bản",
    StatusCode.CHANGE_REFUSED: "Từ chối thu hồi/cập nhật: văn bản đã được xử lý",
}
_NGHEAN_STAFF: Final = StaffInfo(
    department="Văn phòng UBND tỉnh", staff="Hồ Văn Dũng", mobile="84900000003", email="vanthu@nghean.corpus.example"
)


def status(code: StatusCode, minutes: int) -> StatusPackage:
    """A status about the VPCP letter, ``minutes`` after it was sent: from Nghệ An back to VPCP, except 13, which
    VPCP sends to Nghệ An (``ResponseFor/OrganId`` names the receiver asked to give it back)."""
    recall = code.sent_by_sender
    return StatusPackage(
        from_=AGENCIES[G22] if recall else AGENCIES[H41],
        response_for=ResponseFor(
            organ_id=H41 if recall else G22,
            code=str(VPCP_CODE),
            promulgation_date=VPCP_DAY,
            document_id=VPCP_DOCUMENT_ID,
        ),
        status_code=code,
        timestamp=EPOCH + timedelta(minutes=minutes),
        staff_info=_STAFF if recall else _NGHEAN_STAFF,
        description=STATUS_TEXT[code],
    )
