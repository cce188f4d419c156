"""UpdateTraces / GetTraces ``Status`` ↔ the model's :class:`~gateway.edxml.model.StatusPackage`
(legacy-edoc-vn.md §6.7, §6.8, §8, §9).

The two directions have different shapes on purpose — Bkav's do: UpdateTraces takes ``Body/Status`` **unqualified**
(children by local name, ``StaffInfo`` required, ``Timestamp`` ``yyyy/MM/dd HH:mm:ss``); GetTraces answers
**qualified** ``edXML:Status`` with the children in ``From, ResponseFor, StaffInfo, StatusCode, Description,
Timestamp`` order, ``StatusCode`` not zero-padded (``3``), ``ResponseFor/PromulgationDate`` with a time.

Codes (§8): the wire integer ``1``…``16`` is the QCVN 102 code ``01``…``16`` (the model's
:class:`~gateway.edxml.codes.StatusCode`, which already reads ``3`` as ``03``). ``999`` is Bkav's internal "send
failed" trace, not a QCVN status: :func:`read_status` refuses it with ``EDXML.VALUE`` and :func:`is_send_failure`
lets a client recognise it.

Reading reuses the model's tolerant reader: the Status children are placed in an
``edXML/edXMLEnvelope/edXMLHeader/MessageHeader`` skeleton — a status package's header has the same fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Final

from lxml import etree

from gateway.edxml.codes import StatusCode
from gateway.edxml.model import Organization, StatusPackage
from gateway.edxml.reader import read_tree
from gateway.protocols.edocvn.documents import staff_info_element
from gateway.protocols.edocvn.envelope import text
from gateway.protocols.edocvn.names import DATE_FORMAT, EDOC, STATUS_TIME_FORMAT

#: Bkav's "Gui that bai" trace, generated per VDXP recipient when forwarding fails (§8).
SEND_FAILED: Final = "999"


def wire_code(code: StatusCode) -> str:
    """The integer Bkav writes in GetTraces (``3``, not ``03``; §6.8)."""
    return str(int(code.value))


def is_send_failure(status: etree._Element) -> bool:
    return (text(status, "StatusCode") or "").lstrip("0") == SEND_FAILED


def read_status(status: etree._Element) -> StatusPackage:
    """A ``Status`` element of either direction (qualified or not) as a status package; EDXML.* errors with paths."""
    root = etree.Element(f"{{{EDOC}}}edXML")
    env = etree.SubElement(root, f"{{{EDOC}}}edXMLEnvelope")
    head = etree.SubElement(env, f"{{{EDOC}}}edXMLHeader")
    header = etree.SubElement(head, f"{{{EDOC}}}MessageHeader")
    for child in status:
        if isinstance(child.tag, str):
            header.append(copy.deepcopy(child))
    pkg = read_tree(root)
    assert isinstance(pkg, StatusPackage)  # a MessageHeader with a StatusCode is read as a status
    return pkg


def _maker(qualified: bool) -> Callable[..., etree._Element]:
    def add(parent: etree._Element, local: str, value: object = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{EDOC}}}{local}" if qualified else local)
        if value is not None and value != "":
            el.text = str(value)
        return el

    return add


def _from(parent: etree._Element, org: Organization, add: Callable[..., etree._Element]) -> None:
    el = add(parent, "From")
    add(el, "OrganId", org.organ_id)
    for local, value in (
        ("OrganName", org.organ_name),
        ("OrganizationInCharge", org.organization_in_charge),
        ("OrganAdd", org.organ_add),
        ("Email", org.email),
        ("Telephone", org.telephone),
        ("Fax", org.fax),
        ("Website", org.website),
    ):
        if value is not None:
            add(el, local, value)


def status_element(pkg: StatusPackage, *, qualified: bool) -> etree._Element:
    """``qualified=False``: the UpdateTraces request's ``Status`` (a client sends it); ``True``: one
    ``edXML:Status`` of a GetTraces answer (the server writes it)."""
    add = _maker(qualified)
    status = etree.Element(f"{{{EDOC}}}Status" if qualified else "Status", nsmap={"edXML": EDOC} if qualified else None)
    _from(status, pkg.from_, add)
    rf = add(status, "ResponseFor")
    add(rf, "OrganId", pkg.response_for.organ_id)
    add(rf, "Code", pkg.response_for.code)
    date = pkg.response_for.promulgation_date
    if date is not None:
        add(rf, "PromulgationDate", date.strftime(DATE_FORMAT) + (" 00:00:00" if qualified else ""))
    add(rf, "DocumentId", pkg.response_for.document_id)
    when = pkg.timestamp.strftime(STATUS_TIME_FORMAT) if pkg.timestamp else None
    if qualified:
        staff_info_element(status, pkg.staff_info, add)
        add(status, "StatusCode", wire_code(pkg.status_code))
        if pkg.description is not None:
            add(status, "Description", pkg.description)
        if when:
            add(status, "Timestamp", when)
        return status
    add(status, "StatusCode", pkg.status_code.value)
    if pkg.description is not None:
        add(status, "Description", pkg.description)
    if when:
        add(status, "Timestamp", when)
    if pkg.staff_info is None:
        add(status, "StaffInfo")  # required by Bkav even when empty (§6.7)
    else:
        staff_info_element(status, pkg.staff_info, add)
    return status
