"""The reference receiver contract ``wsdl/edoc-receiver.wsdl`` — names, and the pure conversions both sides share.

One operation, SOAP 1.1 document/literal wrapped, target namespace :data:`RECEIVER_NS`::

    ReceiveEdoc(messageId, docId, kind, sender, recipient, documentId, edxmlPackage: xs:base64Binary)
        -> accepted: xs:boolean, receiverRef: xs:string, duplicate: xs:boolean?

* ``messageId`` is the gateway's delivery id: stable across every attempt of one delivery, so the receiver MUST
  de-duplicate on it — a second ReceiveEdoc with the same messageId (the gateway crashed after the receiver took the
  package, or the answer was lost) is answered ``accepted=true`` (``duplicate=true``) without storing again;
* ``edxmlPackage`` (not ``package``: a reserved word in Java and JavaScript, which JAX-WS ``wsimport`` refuses)
  is the edXML package exactly as the sender submitted it (byte-exact: it is signed);
* ``accepted=false`` means the receiver refuses the package for good (the gateway dead-letters it); a temporary
  problem on the receiver's side is a ``soap:Server`` fault or an HTTP 5xx (the gateway retries); a ``soap:Client``
  fault is a permanent refusal of the request.

Nothing here imports zeep or spyne: the adapter (zeep) and the reference receiver (spyne) both use it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from gateway.ports import DeliveryProtocolError, DeliveryRefused, DeliveryResult, OutgoingPackage
from gateway.resources import resource_path

RECEIVER_NS: Final = "urn:edoc-gateway:receiver:1"
SERVICE_NAME: Final = "EdocReceiver"
OPERATION: Final = "ReceiveEdoc"
#: The binding zeep binds to an endpoint address (spyne names it after the service).
BINDING: Final = f"{{{RECEIVER_NS}}}{SERVICE_NAME}"
#: The address written into the committed WSDL; a served WSDL carries the address it was requested at.
PLACEHOLDER_ADDRESS: Final = "http://localhost:8090/"
#: The committed contract, loaded by path (never fetched) for endpoints given as a plain URL; shipped inside the
#: package (:mod:`gateway.resources`), so an installed wheel has it too.
WSDL_PATH: Final = resource_path("wsdl", "edoc-receiver.wsdl")
#: A messageId the reference receiver accepts as a file name: the gateway's ids are 32 hex digits.
MESSAGE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Longest peer answer kept in the attempt log.
_MAX_ANSWER = 500


def receive_request(package: OutgoingPackage) -> dict[str, Any]:
    """The ReceiveEdoc arguments for one delivery attempt."""
    return {
        "messageId": package.delivery_id,
        "docId": package.doc_id,
        "kind": package.kind.value,
        "sender": package.sender,
        "recipient": package.recipient,
        "documentId": package.document_id,
        "edxmlPackage": package.data,
    }


def delivery_result(answer: Any) -> DeliveryResult:
    """ReceiveEdoc's answer → :class:`DeliveryResult`, or the DeliveryError it amounts to."""
    accepted = _field(answer, "accepted")
    reference = _field(answer, "receiverRef")
    duplicate = bool(_field(answer, "duplicate"))
    ref_text = str(reference)[:200] if reference not in (None, "") else None
    if accepted is True:
        summary = "accepted" + (" (duplicate: already received)" if duplicate else "")
        if ref_text:
            summary += f", receiverRef={ref_text}"
        return DeliveryResult(peer_reference=ref_text, peer_answer=summary[:_MAX_ANSWER])
    if accepted is False:
        raise DeliveryRefused(
            "the receiver answered accepted=false",
            peer_answer=f"accepted=false, receiverRef={ref_text or '-'}"[:_MAX_ANSWER],
        )
    raise DeliveryProtocolError(
        "the receiver's answer has no accepted flag", peer_answer=repr(answer)[:_MAX_ANSWER], retryable=True
    )


def _field(answer: Any, name: str) -> Any:
    if answer is None:
        return None
    if isinstance(answer, dict):
        return answer.get(name)
    try:
        return answer[name]
    except (KeyError, TypeError, IndexError):
        return getattr(answer, name, None)
