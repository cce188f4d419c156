"""The demo's legacy district system: a document system built for the old provincial axis (Bkav's eDoc), connected
by changing one URL to the gateway's legacy e-doc.vn endpoint (``/legacy/edoc``; issue 13).

It speaks only the legacy profile (:class:`adapters.edocvn.EdocvnClient`: SOAP with attachments, OrganId + Token)
and exchanges documents and statuses with systems that speak other protocols, through the one intake, mailbox and
status relay:

1. it sends a document to Cao Bằng (a SOAP push peer: the reference SOAP receiver) and to the VPCP, whose system
   reads it over the VDXP-compatible API (:class:`adapters.vdxp.VdxpClient`, as a VNPT-SDK system would);
2. Cao Bằng answers 01 over SOAP, the VPCP 03 over VDXP; the district collects both with GetTraces;
3. back: the provincial office (a modern SOAP system) and the VPCP (VDXP) each send the district a document; the
   district lists, fetches (Base64-text parts labelled ``binary``, as the Bkav axis sends them: the demo puts the
   district in ``legacy_base64_text``), confirms (its agency emits 01 on that) and answers 03 with UpdateTraces;
   the senders see the statuses in their own protocols.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from adapters.edocvn import EdocvnClient
from adapters.vdxp import VdxpClient
from gateway.client import GatewayClient
from gateway.demo.documents import demo_package, status_for
from gateway.demo.setup import LEGACY_AGENCY, LEGACY_SYSTEM, DemoSetup
from gateway.edxml import (
    Code,
    EdocPackage,
    Organization,
    PackageKind,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
    add_files,
    read_bytes,
    render,
)
from gateway.edxml.dates import VN_TZ, format_date
from gateway.xmlcheck.signing import SigningKey, sign_package

Echo = Callable[[str], object]
#: The district and its legacy system (registered by :mod:`gateway.demo.setup` with ``legacy_organ``).
DISTRICT, DISTRICT_SYSTEM = LEGACY_AGENCY, LEGACY_SYSTEM
DISTRICT_NAME = "UBND huyện Hòa Thành"
#: Who the district exchanges with: Cao Bằng (SOAP push), the VPCP (VDXP), the provincial office (SOAP).
CAO_BANG, VPCP, PROVINCE_OFFICE = "000.00.00.H14", "000.00.00.G22", "000.00.01.H53"


def letter(sender: Organization, to: tuple[Organization, ...], number: str, notation: str) -> EdocPackage:
    """A new document from ``sender`` to ``to`` with one attachment (the demo's usual letter, re-addressed)."""
    base = demo_package()
    now = datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0)
    header = dataclasses.replace(
        base.message_header,
        from_=sender,
        to=to,
        document_id=f"{sender.organ_id},{format_date(now.date())},{number}/{notation}",
        code=Code(code_number=number, code_notation=notation),
    )
    trace = TraceHeaderList(
        trace_headers=(TraceHeader(organ_id=sender.organ_id, timestamp=now),),
        bussiness=base.trace_header_list.bussiness,
    )
    body = f"{number}/{notation}: văn bản thử nghiệm liên thông, gửi từ {sender.organ_name}.\n".encode()
    pkg = dataclasses.replace(base, message_header=header, trace_header_list=trace, references=(), attachments=())
    return add_files(pkg, [(f"{number}-{notation}.txt", body)], zip=False)


def run_legacy_district(setup: DemoSetup, echo: Echo = print) -> None:
    """The district's round, on the demo gateway ``setup`` made."""
    base_url, secrets = setup.url.removesuffix("/soap"), setup.secrets
    district = EdocvnClient(f"{base_url}/legacy/edoc", DISTRICT, secrets[DISTRICT_SYSTEM])
    vpcp = VdxpClient(f"{base_url}/vdxp", "vpcp-qlvb", secrets["vpcp-qlvb"])
    soap = {sid: GatewayClient(f"{base_url}/soap", sid, secrets[sid]) for sid in ("national-samples", "tayninh-qlvb")}
    try:
        echo(f"== a legacy district system ({DISTRICT_NAME}) on {base_url}/legacy/edoc, the e-doc.vn SOAP profile")
        outgoing = _send_out(district, echo)
        _answer_out(outgoing, vpcp, soap["national-samples"], echo)
        _show_traces(district, echo)
        office = setup.pki.agencies[PROVINCE_OFFICE]  # the provincial office signs (its policy is "require")
        key = SigningKey.from_files(office.key, office.cert, setup.pki.chain)
        _receive_back(district, vpcp, soap["tayninh-qlvb"], lambda data: sign_package(data, key), echo)
    finally:
        district.close()
        vpcp.close()
        for c in soap.values():
            c.close()


def _send_out(district: EdocvnClient, echo: Echo) -> EdocPackage:
    pkg = letter(
        Organization(organ_id=DISTRICT, organ_name=DISTRICT_NAME),
        (
            Organization(organ_id=CAO_BANG, organ_name="UBND tỉnh Cao Bằng"),
            Organization(organ_id=VPCP, organ_name="Văn phòng Chính phủ"),
        ),
        "57",
        "UBND-VP",
    )
    axis_id = district.send_document(pkg)
    echo(f"   SendDocument (SwA, 1 attachment) to {CAO_BANG} (SOAP push) and {VPCP} (VDXP): axis id {axis_id}")
    return pkg


def _answer_out(pkg: EdocPackage, vpcp: VdxpClient, cao_bang: GatewayClient, echo: Echo) -> None:
    """The VPCP reads the district's document over VDXP and answers 03; Cao Bằng answers 01 over SOAP."""
    for item in vpcp.received_list(PackageKind.EDOC):
        data = vpcp.get_edoc(item.doc_id)
        got = read_bytes(data)
        if got.document_id != pkg.document_id:
            continue
        assert isinstance(got, EdocPackage)
        same = [a.data for a in got.attachments] == [a.data for a in pkg.attachments]
        vpcp.update_status(item.doc_id, "done")
        status = render(status_for(pkg, VPCP, StatusCode.ACCEPTED))
        vpcp.send_edoc(status, sender=VPCP, kind=PackageKind.STATUS)
        echo(f"   VPCP (VDXP getEdoc): attachment byte-identical: {same}; answered 03 with sendEdoc")
    cao_bang.send_status(render(status_for(pkg, CAO_BANG, StatusCode.ARRIVED)))
    echo("   Cao Bằng (SOAP) answered 01")


def _show_traces(district: EdocvnClient, echo: Echo) -> None:
    traces = district.traces()
    for s in traces.statuses:
        echo(f"   district GetTraces: {s.status_code.value} from {s.from_.organ_id} ({s.description or '-'})")


def _receive_back(
    district: EdocvnClient, vpcp: VdxpClient, tayninh: GatewayClient, sign: Callable[[bytes], bytes], echo: Echo
) -> None:
    """Documents to the district from a SOAP and a VDXP system; the district takes and answers them."""
    to = (Organization(organ_id=DISTRICT, organ_name=DISTRICT_NAME),)
    office = Organization(organ_id=PROVINCE_OFFICE, organ_name="Văn phòng UBND tỉnh Tây Ninh")
    from_soap = letter(office, to, "131", "VP-HCTC")
    tayninh.send_edoc(sign(render(from_soap)))
    from_vdxp = letter(Organization(organ_id=VPCP, organ_name="Văn phòng Chính phủ"), to, "9012", "VPCP-TTĐT")
    vpcp.send_edoc(render(from_vdxp), sender=VPCP, kind=PackageKind.EDOC)
    echo(f"   to the district: 131/VP-HCTC over SOAP ({PROVINCE_OFFICE}), 9012/VPCP-TTĐT over VDXP ({VPCP})")
    for axis_id in district.pending():
        pkg = district.get_document(axis_id)
        names = ", ".join(f"{a.attachment_name} ({len(a.data)} B)" for a in pkg.attachments)
        district.confirm_received(axis_id)
        district.update_traces(status_for(pkg, DISTRICT, StatusCode.ACCEPTED))
        echo(f"   district GetDocument {axis_id}: {pkg.document_id} [{names}]; ConfirmReceived; UpdateTraces 03")
    for item in vpcp.received_list(PackageKind.STATUS):
        status = read_bytes(vpcp.get_edoc(item.doc_id))
        if status.sender != DISTRICT or not isinstance(status, StatusPackage):
            continue  # the corpus's statuses wait in the same mailbox: left for the console to show
        vpcp.update_status(item.doc_id, "done")
        echo(f"   VPCP (VDXP getReceivedEdocList) got status {status.status_code.value} from the district")
    view = tayninh.status_history(document_id=from_soap.document_id)
    for r in view.recipient:
        codes = ", ".join(s.statusCode for s in (r.status or [])) or "-"
        echo(f"   provincial office (SOAP) sees {r.organId}: {r.state}, statuses {codes}")
