"""The answers of the VDXP protocol: what the SDK parses (``requests.json`` ``responses_the_sdk_accepted``).

Every answer is a JSON object with ``status`` ``"OK"``/``"FAIL"``, ``ErrorCode`` (``"0"`` on success) and
``ErrorDesc``, plus ``DocId`` (``sendEdoc``) or ``data`` (the lists, and ``getEdoc``'s base64 package). The
edge builds answers with :func:`ok_answer` / :func:`error_answer` and the list items' ``to_wire``; the client reads
them with :func:`decode_answer`, :func:`is_ok` and the items' ``from_wire``. One module knows the field names.

Errors. A refusal is ``{"status": "FAIL", "ErrorCode": <code>, "ErrorDesc": <message>}`` where ``ErrorCode`` is
the gateway's stable wire code (``AUTH.DENIED``, ``EDXML.SCHEMA``, ``NOT_FOUND`` … — the codes of the SOAP
Faults) and ``ErrorDesc`` is ``"<Vietnamese message>: <English detail>"``. Why not VDXP's numeric codes: only
``"0"`` is confirmed; the numeric table (10/15/18…) is an unverified third-party reading of one province's guide
(edxml.md §11.1 [U]), and our codes name the cause.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.errors import GatewayError
from gateway.protocols.vdxp.names import SERVICE_TYPE_EDOC

OK: Final = "OK"
FAIL: Final = "FAIL"
OK_CODE: Final = "0"
OK_DESC: Final = "Thanh cong"
#: JSON written ASCII-only (``\\uXXXX``), so a client reading it with any platform charset gets the same text.
ANSWER_CONTENT_TYPE: Final = "application/json; charset=utf-8"

Answer = dict[str, Any]

# ================================================================================================ building


def ok_answer(**fields: Any) -> Answer:
    """A success: ``DocId=…`` for sendEdoc, ``data=…`` for the lists and getEdoc, nothing for updateStatus."""
    return {"status": OK, "ErrorCode": OK_CODE, "ErrorDesc": OK_DESC, **fields}


def fail_answer(code: str, description: str) -> Answer:
    """A refusal, in the one shape every refusal has (also at the HTTP layer: 404, 405, 413 …)."""
    return {"status": FAIL, "ErrorCode": code, "ErrorDesc": description}


def error_answer(exc: GatewayError) -> Answer:
    """The refusal for a :class:`GatewayError`: its code, and ``"<Vietnamese>: <English>"``."""
    return fail_answer(exc.code, f"{exc.message_vi}: {exc.message}")


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


@dataclass(frozen=True)
class ReceivedItem:
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

    def to_wire(self) -> dict[str, str]:
        return {
            "docId": self.doc_id,
            "serviceType": self.service_type,
            "messageType": self.message_type,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "from": self.sender,
            "to": self.recipient,
            "status": self.status,
            "status_desc": self.status_desc,
        }

    @classmethod
    def from_wire(cls, item: Mapping[str, Any], *, message_type: str) -> ReceivedItem | None:
        """The item, or None without a ``docId``; ``message_type`` stands in for a missing ``messageType``."""
        doc_id = text(item.get("docId"))
        if not doc_id:
            return None
        return cls(
            doc_id=doc_id,
            message_type=text(item.get("messageType")) or message_type,
            sender=text(item.get("from")),
            recipient=text(item.get("to")),
            status=text(item.get("status")),
            status_desc=text(item.get("status_desc")),
            created_time=text(item.get("created_time")),
            updated_time=text(item.get("updated_time")),
            service_type=text(item.get("serviceType")) or SERVICE_TYPE_EDOC,
        )


@dataclass(frozen=True)
class SentItem:
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

    def to_wire(self) -> dict[str, str]:
        return {
            "serviceType": self.service_type,
            "messageType": self.message_type,
            "senderDocId": self.sender_doc_id,
            "receiverDocId": self.receiver_doc_id,
            "fromCode": self.from_code,
            "toCode": self.to_code,
            "title": self.title,
            "notation": self.notation,
            "sentTime": self.sent_time,
            "receivedTime": self.received_time,
            "sendStatus": self.send_status,
            "sendStatusDesc": self.send_status_desc,
            "receiveStatus": self.receive_status,
            "receiveStatusDesc": self.receive_status_desc,
            "deliveryState": self.delivery_state,
            "statusCode": self.status_code,
            "documentId": self.document_id,
        }


@dataclass(frozen=True)
class AgencyItem:
    """One item of ``getAgenciesList``; ``pid`` is the ``id`` of the parent item (``"0"`` at the top)."""

    id: str
    code: str
    name: str
    mail: str
    pid: str

    def to_wire(self) -> dict[str, str]:
        return {"id": self.id, "code": self.code, "name": self.name, "mail": self.mail, "pid": self.pid}

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> AgencyItem:
        return cls(
            id=text(item.get("id")),
            code=text(item.get("code")),
            name=text(item.get("name")),
            mail=text(item.get("mail")),
            pid=text(item.get("pid")),
        )
