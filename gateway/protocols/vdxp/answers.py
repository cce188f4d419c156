"""The answers of the VDXP protocol: what the SDK parses (``requests.json`` ``responses_the_sdk_accepted``).

Every answer is a JSON object with ``status`` ``"OK"``/``"FAIL"``, ``ErrorCode`` (``"0"`` on success) and
``ErrorDesc``, plus ``DocId`` (``sendEdoc``) or ``data`` (the lists, and ``getEdoc``'s base64 package). The
edge builds answers with :func:`ok_answer` / :func:`error_answer` and the list items' ``to_wire``; the client reads
them with :func:`decode_answer`, :func:`is_ok` and the items' ``from_wire``. One module knows the field names.

Errors. A refusal is ``{"status": "FAIL", "ErrorCode": <code>, "ErrorDesc": <message>, …}`` where ``ErrorCode``
is the gateway's stable wire code (``AUTH.DENIED``, ``EDXML.SCHEMA``, ``NOT_FOUND`` … — the codes of the SOAP
Faults) and ``ErrorDesc`` is ``"<Vietnamese message>: <English detail>"``. Why not VDXP's numeric codes: only
``"0"`` is confirmed; the numeric table (10/15/18…) is an unverified third-party reading of one province's guide
(edxml.md §11.1 [U]), and our codes name the cause.

A refusal also carries, EMPTY, every key the SDK reads from that operation's answer (:data:`ANSWER_FIELDS`):
``DocId: ""`` for sendEdoc, ``data: ""`` for getEdoc, ``data: []`` for the lists. The SDK dereferences those keys
before it looks at ``status`` — without them a refused sendEdoc or getEdoc ended in a NullPointerException
instead of the error (issue 8, 7 of 18 error cases). Empty of the right JSON type: a list where it iterates, a
string where it reads text.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from gateway.errors import GatewayError
from gateway.protocols.vdxp.names import SERVICE_TYPE_EDOC, Operation

OK: Final = "OK"
FAIL: Final = "FAIL"
OK_CODE: Final = "0"
OK_DESC: Final = "Thanh cong"
#: JSON written ASCII-only (``\\uXXXX``), so a client reading it with any platform charset gets the same text.
ANSWER_CONTENT_TYPE: Final = "application/json; charset=utf-8"

Answer = dict[str, Any]

#: The keys the SDK reads from each operation's answer besides ``status``/``ErrorCode``/``ErrorDesc`` (edxml.md
#: §11.1, §11.4; ``requests.json`` ``responses_the_sdk_accepted``), with the JSON type of each: a refusal carries
#: them empty (``""`` / ``[]``). Keyed by the path segment, so VDXP operations we do not serve are answered in
#: their shape too (``getSynchronizeUnit`` lists units; ``registerAgency``/``deleteAgency`` read nothing more).
ANSWER_FIELDS: Final[Mapping[str, Mapping[str, type[str] | type[list[Any]]]]] = {
    Operation.SEND_EDOC: {"DocId": str},
    Operation.GET_RECEIVED_EDOC_LIST: {"data": list},
    Operation.GET_EDOC: {"data": str},
    Operation.UPDATE_STATUS: {},
    Operation.GET_SENT_EDOC_LIST: {"data": list},
    Operation.GET_AGENCIES_LIST: {"data": list},
    "getSynchronizeUnit": {"data": list},
    "registerAgency": {},
    "deleteAgency": {},
}

# ================================================================================================ building


def ok_answer(**fields: Any) -> Answer:
    """A success: ``DocId=…`` for sendEdoc, ``data=…`` for the lists and getEdoc, nothing for updateStatus."""
    return {"status": OK, "ErrorCode": OK_CODE, "ErrorDesc": OK_DESC, **fields}


def empty_fields(operation: str | None) -> Answer:
    """The operation's answer keys (:data:`ANSWER_FIELDS`), each empty — fresh objects on every call."""
    return {key: kind() for key, kind in ANSWER_FIELDS.get(operation or "", {}).items()}


def fail_answer(code: str, description: str, operation: str | None = None) -> Answer:
    """A refusal, in the one shape every refusal has (also at the HTTP layer: 404, 405, 413 …), with the empty
    answer keys of ``operation`` (the path segment; none for a name VDXP does not have)."""
    return {"status": FAIL, "ErrorCode": code, "ErrorDesc": description, **empty_fields(operation)}


def error_answer(exc: GatewayError, operation: str | None = None) -> Answer:
    """The refusal for a :class:`GatewayError`: its code, and ``"<Vietnamese>: <English>"``."""
    return fail_answer(exc.code, f"{exc.message_vi}: {exc.message}", operation)


def encode_answer(answer: Mapping[str, Any]) -> bytes:
    """Compact, ASCII-only JSON (see :data:`ANSWER_CONTENT_TYPE`)."""
    return json.dumps(answer, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def encode_package(data: bytes) -> str:
    """``getEdoc``'s ``data``: the package bytes exactly as stored, in base64."""
    return base64.b64encode(data).decode("ascii")


# ================================================================================================ reading


def decode_answer(raw: bytes) -> Answer | None:
    """The answer object, or None when ``raw`` is not a VDXP answer (HTML, garbage, no ``status``)."""
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return answer if isinstance(answer, dict) and "status" in answer else None


def text(value: Any) -> str:
    """A field as text (``""`` for absent/null): peers send numbers where the SDK writes strings."""
    return "" if value is None else str(value)


def is_ok(answer: Mapping[str, Any]) -> bool:
    """``status`` OK (any case) and ``ErrorCode`` ``"0"``: anything else is a refusal."""
    return text(answer.get("status")).upper() == OK and text(answer.get("ErrorCode")) == OK_CODE


def answer_doc_id(answer: Mapping[str, Any]) -> str | None:
    """``DocId`` of a sendEdoc answer (string or number), or None."""
    doc_id = answer.get("DocId")
    if not isinstance(doc_id, str | int) or not str(doc_id):
        return None
    return str(doc_id)


def answer_package(answer: Mapping[str, Any]) -> bytes:
    """The package of a getEdoc answer; ValueError when ``data`` is missing or not base64."""
    data = answer.get("data")
    if not isinstance(data, str):
        raise ValueError("OK without base64 data")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("data that is not base64") from None


def answer_items(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects of a list answer's ``data`` (none when absent); ValueError when ``data`` is not a list."""
    data = answer.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError("the answer's data is not a list")
    return [item for item in data if isinstance(item, dict)]


def answer_summary(answer: Mapping[str, Any]) -> str:
    """A short, loggable summary of an answer: its status keys, never its data."""
    keys = ("status", "ErrorCode", "ErrorDesc", "DocId")
    return json.dumps({k: answer[k] for k in keys if k in answer}, ensure_ascii=False)[:300]


# ================================================================================================ list items


class _WireItem:
    """A list item whose fields travel under the keys of ``WIRE`` — (field, key) in the order answers carry
    them — so the one table serves both directions."""

    WIRE: ClassVar[tuple[tuple[str, str], ...]]

    def to_wire(self) -> dict[str, str]:
        return {key: getattr(self, name) for name, key in self.WIRE}

    @classmethod
    def _values(cls, item: Mapping[str, Any], **defaults: str) -> dict[str, str]:
        """Every field as text from ``item``; a field that is empty there takes its default, when one is given."""
        values = {name: text(item.get(key)) for name, key in cls.WIRE}
        return {name: value or defaults.get(name, "") for name, value in values.items()}


@dataclass(frozen=True)
class ReceivedItem(_WireItem):
    """One item of ``getReceivedEdocList``: ``doc_id`` is what ``getEdoc``/``updateStatus`` take."""

    doc_id: str
    message_type: str
    sender: str
    recipient: str
    status: str
    status_desc: str
    created_time: str
    updated_time: str
    service_type: str = SERVICE_TYPE_EDOC

    WIRE: ClassVar = (
        ("doc_id", "docId"),
        ("service_type", "serviceType"),
        ("message_type", "messageType"),
        ("created_time", "created_time"),
        ("updated_time", "updated_time"),
        ("sender", "from"),
        ("recipient", "to"),
        ("status", "status"),
        ("status_desc", "status_desc"),
    )

    @classmethod
    def from_wire(cls, item: Mapping[str, Any], *, message_type: str) -> ReceivedItem | None:
        """The item, or None without a ``docId``; ``message_type`` stands in for a missing ``messageType``."""
        values = cls._values(item, message_type=message_type, service_type=SERVICE_TYPE_EDOC)
        return cls(**values) if values["doc_id"] else None


@dataclass(frozen=True)
class SentItem(_WireItem):
    """One item of ``getSentEdocList``: one (document, recipient) the caller sent, with the keys of edxml.md §11.1
    and, beyond VDXP's, the gateway's transport state and latest business status (clients read them as a dict)."""

    message_type: str
    sender_doc_id: str
    receiver_doc_id: str
    from_code: str
    to_code: str
    title: str
    notation: str
    sent_time: str
    received_time: str
    receive_status: str
    receive_status_desc: str
    delivery_state: str
    status_code: str
    document_id: str
    send_status: str = "done"
    send_status_desc: str = "Cong truc da tiep nhan"
    service_type: str = SERVICE_TYPE_EDOC

    WIRE: ClassVar = (
        ("service_type", "serviceType"),
        ("message_type", "messageType"),
        ("sender_doc_id", "senderDocId"),
        ("receiver_doc_id", "receiverDocId"),
        ("from_code", "fromCode"),
        ("to_code", "toCode"),
        ("title", "title"),
        ("notation", "notation"),
        ("sent_time", "sentTime"),
        ("received_time", "receivedTime"),
        ("send_status", "sendStatus"),
        ("send_status_desc", "sendStatusDesc"),
        ("receive_status", "receiveStatus"),
        ("receive_status_desc", "receiveStatusDesc"),
        ("delivery_state", "deliveryState"),
        ("status_code", "statusCode"),
        ("document_id", "documentId"),
    )


@dataclass(frozen=True)
class AgencyItem(_WireItem):
    """One item of ``getAgenciesList``; ``pid`` is the ``id`` of the parent item (``"0"`` at the top)."""

    id: str
    code: str
    name: str
    mail: str
    pid: str

    WIRE: ClassVar = (("id", "id"), ("code", "code"), ("name", "name"), ("mail", "mail"), ("pid", "pid"))

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> AgencyItem:
        return cls(**cls._values(item))
