"""The SOAP service through a real gunicorn (deploy/gunicorn.conf.py) and a real zeep client.

The use cases are the in-test :class:`web_fake_app.FakeApi` (same Protocol as GatewayService); what is under test
is the web edge: operations and their mapping, byte-exact packages, Faults, the served WSDL, health routes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from web_fake_app import INTERNAL_SECRET, RECEIVER, SENDER, SYSTEMS, Server, gunicorn
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway.web.faults import SOAP_TNS

ROOT = Path(__file__).resolve().parent.parent
COMMITTED_WSDL = ROOT / "wsdl" / "edoc-gateway.wsdl"
#: gateway.web.soap.PLACEHOLDER_ADDRESS (not imported: this process must not import spyne, see web_fake_app.make_app)
PLACEHOLDER_ADDRESS = "http://localhost:8080/soap"
WSDL_NS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "soap": "http://schemas.xmlsoap.org/wsdl/soap/"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 12 MB packages: a 10 MB one fits, and its 13.3 MB base64 text needs libxml2's huge_tree on both sides.
    # trusted_proxies: as behind the local nginx, whose X-Forwarded-Proto: https the Basic-auth calls below carry.
    with gunicorn(
        tmp_path_factory.mktemp("soap"), max_package_bytes=str(12 * 1024 * 1024), trusted_proxies="127.0.0.1"
    ) as srv:
        yield srv


def _client(server: Server, system: str, **kw) -> Iterator[zeep.Client]:
    session = requests.Session()
    try:
        client = zeep.Client(
            server.url + "/soap?wsdl",
            transport=zeep.Transport(session=session, timeout=60, operation_timeout=120),
            # A 10 MB package is a 13.3 MB base64 text node: above libxml2's default cap, so zeep needs huge_tree.
            settings=zeep.Settings(xml_huge_tree=True),
            wsse=UsernameToken(system, SYSTEMS[system][0], use_digest=True),
            **kw,
        )
        yield client
    finally:
        session.close()


@pytest.fixture
def sender(server: Server) -> Iterator[zeep.Client]:
    yield from _client(server, "sys-sender")


@pytest.fixture
def receiver(server: Server) -> Iterator[zeep.Client]:
    yield from _client(server, "sys-receiver")


def _fault_code(fault: Fault) -> str:
    return fault.detail.find(f"{{{SOAP_TNS}}}GatewayError/{{{SOAP_TNS}}}code").text


# ---------------------------------------------------------------------------------------- operations


def test_send_then_pending_fetch_acknowledge_roundtrip_is_byte_exact_for_10_mb(sender, receiver):
    package = os.urandom(10 * 1024 * 1024 - 7) + b"\x00\r\n \t<"  # arbitrary bytes: nothing may be normalised
    receipt = sender.service.SendEdoc(edxmlPackage=package)
    assert receipt.sha256 == hashlib.sha256(package).hexdigest()
    assert receipt.duplicate is False
    assert receipt.signedReceipt.startswith(b"<Receipt>")
    assert receipt.receivedAt.tzinfo is not None

    again = sender.service.SendEdoc(edxmlPackage=package)
    assert (again.docId, again.duplicate) == (receipt.docId, True)

    items = receiver.service.GetPendingList(organId=RECEIVER, kind="edoc", limit=10)
    item = next(i for i in items if i.docId == receipt.docId)
    assert (item.sender, item.recipient, item.size, item.state) == (SENDER, RECEIVER, len(package), "queued")

    fetched = receiver.service.GetEdoc(deliveryId=item.deliveryId)
    assert fetched == package

    assert receiver.service.Acknowledge(deliveryId=item.deliveryId, status="done") is True
    view = sender.service.GetStatusHistory(docId=receipt.docId)
    (recipient,) = view.recipient
    assert (recipient.organId, recipient.state) == (RECEIVER, "delivered")
    assert recipient.status[0].statusCode == "01"
    assert recipient.status[0].emittedByGateway is True


def test_send_status_and_status_mailbox(sender, receiver):
    receipt = sender.service.SendStatus(edxmlPackage=b"<status package placeholder/>")
    items = receiver.service.GetPendingList(organId=RECEIVER, kind="status")
    assert receipt.docId in {i.docId for i in items}
    assert all(i.kind == "status" for i in items)


def test_get_agencies(sender):
    agencies = sender.service.GetAgencies()
    assert {a.organId for a in agencies} >= {SENDER, RECEIVER}
    children = sender.service.GetAgencies(parent="000.00.00.H00")
    assert {a.organId for a in children} == {SENDER, RECEIVER}
    assert all(a.level == 2 and a.active for a in children)


# -------------------------------------------------------------------------------------------- faults


def test_gateway_error_is_a_client_fault_with_code_and_both_languages(sender):
    with pytest.raises(Fault) as info:
        sender.service.GetPendingList(organId=RECEIVER)  # the sender's system does not act for the receiver
    fault = info.value
    assert fault.code.endswith(":Client")
    assert fault.message.startswith("ACCESS.DENIED: ")
    detail = fault.detail.find(f"{{{SOAP_TNS}}}GatewayError")
    assert detail.findtext(f"{{{SOAP_TNS}}}code") == "ACCESS.DENIED"
    assert detail.findtext(f"{{{SOAP_TNS}}}messageVi") == "Hệ thống không được phép thao tác cho đơn vị này"
    assert "does not act for" in detail.findtext(f"{{{SOAP_TNS}}}message")


def test_duplicate_error_code(sender):
    with pytest.raises(Fault) as info:
        sender.service.SendEdoc(edxmlPackage=b"DUP different package")
    assert _fault_code(info.value) == "EDXML.DUPLICATE"


def test_unexpected_exception_is_a_server_fault_without_internals_and_logged_without_body(server, sender):
    marker = b"RAISE-" + os.urandom(12).hex().encode()
    with pytest.raises(Fault) as info:
        sender.service.SendEdoc(edxmlPackage=marker)
    fault = info.value
    assert fault.code.endswith(":Server")
    assert _fault_code(fault) == "GATEWAY.INTERNAL"
    assert INTERNAL_SECRET not in fault.message
    assert INTERNAL_SECRET.encode() not in etree.tostring(fault.detail)
    log = server.log()
    assert "Traceback" in log
    assert INTERNAL_SECRET in log  # the operators get the cause...
    assert marker.decode() not in log  # ...but never the package,
    assert base64.b64encode(marker).decode() not in log  # in any form
    assert "fault=GATEWAY.INTERNAL" in log


def test_malformed_base64_is_request_invalid(server):
    body = _envelope("<t:SendEdoc><t:edxmlPackage>not*base64!</t:edxmlPackage></t:SendEdoc>")
    resp = requests.post(server.url + "/soap", data=body, headers=_XML, auth=_basic(), timeout=10)
    assert resp.status_code == 500
    fault = _parse_fault(resp)
    assert fault["code"] == "REQUEST.INVALID"
    assert fault["path"] == "/Envelope/Body/SendEdoc/edxmlPackage"


@pytest.mark.parametrize(
    ("operation", "old", "new"),
    [
        ("<t:SendEdoc><t:package>PGEvPg==</t:package></t:SendEdoc>", "package", "edxmlPackage"),
        ("<t:SendStatus><t:package>PGEvPg==</t:package></t:SendStatus>", "package", "edxmlPackage"),
        ("<t:GetEdoc><t:docId>dlv-1</t:docId></t:GetEdoc>", "docId", "deliveryId"),
        ("<t:Acknowledge><t:docId>dlv-1</t:docId><t:status>done</t:status></t:Acknowledge>", "docId", "deliveryId"),
    ],
)
def test_a_parameter_name_from_before_contract_1_1_is_refused_naming_the_new_one(server, operation, old, new):
    # spyne ignores unknown children: without the check an old client would be told its package is missing.
    resp = requests.post(server.url + "/soap", data=_envelope(operation), headers=_XML, auth=_basic(), timeout=10)
    assert resp.status_code == 500
    fault = _parse_fault(resp)
    assert fault["faultcode"].endswith(":Client")
    assert fault["code"] == "REQUEST.INVALID"
    assert f"takes {new}, not {old}" in fault["faultstring"]
    assert fault["path"].endswith(f"/{old}")


def test_line_wrapped_base64_is_accepted(server):
    data = os.urandom(3000)
    text = base64.b64encode(data).decode()
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    body = _envelope(f"<t:SendEdoc><t:edxmlPackage>\n{wrapped}\n</t:edxmlPackage></t:SendEdoc>")
    resp = requests.post(server.url + "/soap", data=body, headers=_XML, auth=_basic(), timeout=10)
    assert resp.status_code == 200, resp.text
    assert hashlib.sha256(data).hexdigest() in resp.text


def test_missing_required_value_and_bad_limit_are_request_invalid(receiver):
    with pytest.raises(Fault) as info:
        receiver.service.GetPendingList(organId=RECEIVER, limit=5000)
    assert _fault_code(info.value) == "REQUEST.INVALID"
    with pytest.raises(Fault) as info:
        receiver.service.GetStatusHistory()
    assert _fault_code(info.value) == "REQUEST.INVALID"


@pytest.mark.parametrize(
    ("operation", "path"),
    [
        ("<t:GetPendingList><t:organId>X</t:organId><t:kind>bogus</t:kind></t:GetPendingList>", "kind"),
        # spyne's own Enum reader would return the method Enum.customize for this one
        ("<t:GetPendingList><t:organId>X</t:organId><t:kind>customize</t:kind></t:GetPendingList>", "kind"),
        ("<t:Acknowledge><t:deliveryId>d</t:deliveryId><t:status>maybe</t:status></t:Acknowledge>", "status"),
        ("<t:GetPendingList><t:organId>X</t:organId><t:limit>1e3</t:limit></t:GetPendingList>", None),
    ],
)
def test_bad_scalar_values_are_request_invalid_not_internal(server, operation, path):
    resp = requests.post(server.url + "/soap", data=_envelope(operation), headers=_XML, auth=_basic(), timeout=10)
    assert resp.status_code == 500
    fault = _parse_fault(resp)
    assert fault["code"] == "REQUEST.INVALID"
    if path:
        assert fault["path"].endswith("/" + path)


def test_xsi_type_cannot_swap_in_another_class(server):
    # With spyne's default parse_xsi_type, organId would be deserialized as a Receipt object.
    operation = (
        '<t:GetPendingList><t:organId xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="t:Receipt">'
        f"{RECEIVER}</t:organId></t:GetPendingList>"
    )
    resp = requests.post(
        server.url + "/soap", data=_envelope(operation), headers=_XML, auth=_basic("sys-receiver"), timeout=10
    )
    assert resp.status_code == 200, resp.text


def test_not_found(receiver):
    with pytest.raises(Fault) as info:
        receiver.service.GetEdoc(deliveryId="dlv-nope")
    assert _fault_code(info.value) == "NOT_FOUND"


# ---------------------------------------------------------------------------------------------- WSDL


def _canonical_wsdl(data: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    for address in root.iterfind("wsdl:service/wsdl:port/soap:address", WSDL_NS):
        address.set("location", PLACEHOLDER_ADDRESS)
    return etree.tostring(root, method="c14n")


def test_served_wsdl_equals_the_committed_one(server):
    resp = requests.get(server.url + "/soap?wsdl", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/xml")
    served = etree.fromstring(resp.content)
    (address,) = served.iterfind("wsdl:service/wsdl:port/soap:address", WSDL_NS)
    assert address.get("location") == server.url + "/soap"  # clients that follow soap:address come back here
    assert _canonical_wsdl(resp.content) == _canonical_wsdl(COMMITTED_WSDL.read_bytes()), (
        "wsdl/edoc-gateway.wsdl is stale: regenerate it as wsdl/README.md says"
    )


def test_wsdl_declares_every_operation_with_the_gateway_fault():
    root = etree.fromstring(COMMITTED_WSDL.read_bytes())
    assert root.get("targetNamespace") == SOAP_TNS
    assert root.find("wsdl:service", WSDL_NS).get("name") == "EdocGateway"
    operations = root.findall("wsdl:portType/wsdl:operation", WSDL_NS)
    assert {op.get("name") for op in operations} == {
        "SendEdoc",
        "SendStatus",
        "GetPendingList",
        "GetEdoc",
        "Acknowledge",
        "GetStatusHistory",
        "GetAgencies",
    }
    assert all(op.find("wsdl:fault", WSDL_NS).get("name") == "GatewayError" for op in operations)
    xs = "{http://www.w3.org/2001/XMLSchema}"
    package = root.find(f".//{xs}complexType[@name='SendEdoc']//{xs}element[@name='edxmlPackage']")
    assert package.get("type") == "xs:base64Binary"


# -------------------------------------------------------------------------------------------- health


def test_healthz(server):
    resp = requests.get(server.url + "/healthz", timeout=10)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_readyz_follows_the_readiness_check(server):
    resp = requests.get(server.url + "/readyz", timeout=10)
    assert (resp.status_code, resp.json()) == (200, {"ready": True, "checks": {"database": True}})
    flag = server.data_dir / "not-ready"
    flag.touch()
    try:
        resp = requests.get(server.url + "/readyz", timeout=10)
        assert (resp.status_code, resp.json()) == (503, {"ready": False, "checks": {"database": False}})
    finally:
        flag.unlink()


def test_unknown_path_is_404_json(server):
    resp = requests.get(server.url + "/nope", timeout=10)
    assert resp.status_code == 404
    assert resp.json()["code"] == "NOT_FOUND"


# ------------------------------------------------------------------------------------------- helpers

_XML = {"Content-Type": "text/xml; charset=utf-8", "X-Forwarded-Proto": "https"}


def _basic(system: str = "sys-sender") -> tuple[str, str]:
    return system, SYSTEMS[system][0]


def _envelope(operation: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="urn:edoc-gateway:soap:1">'
        f"<soap:Body>{operation}</soap:Body></soap:Envelope>"
    ).encode()


def _parse_fault(resp: requests.Response) -> dict[str, str | None]:
    root = etree.fromstring(resp.content)
    fault = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/{http://schemas.xmlsoap.org/soap/envelope/}Fault"
    )
    detail = fault.find(f"detail/{{{SOAP_TNS}}}GatewayError")
    return {
        "faultcode": fault.findtext("faultcode"),
        "faultstring": fault.findtext("faultstring"),
        "code": detail.findtext(f"{{{SOAP_TNS}}}code"),
        "path": detail.findtext(f"{{{SOAP_TNS}}}path"),
    }
