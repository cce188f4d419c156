"""The legacy e-doc.vn SOAP profile (legacy-edoc-vn.md), the one home of what our legacy edge
(``gateway.web.legacy``) and our legacy peer adapter (``adapters.edocvn``) agree on.

* :mod:`~gateway.protocols.edocvn.names` — namespaces, the eight operations, SOAPAction rules, media types;
* :mod:`~gateway.protocols.edocvn.mime` — reading ``multipart/related`` (SwA, MTOM/XOP), parts streamed to spool
  files; :mod:`~gateway.protocols.edocvn.mimebuild` — writing one lazily;
* :mod:`~gateway.protocols.edocvn.envelope` — reading a request (server side), liberal as §2.3/§16 say;
* :mod:`~gateway.protocols.edocvn.calls` — building each request as a Bkav axis requires it (client side);
* :mod:`~gateway.protocols.edocvn.answers` — building each answer in the §4/§6 shapes, reading it back;
* :mod:`~gateway.protocols.edocvn.documents`, :mod:`~gateway.protocols.edocvn.attachments`,
  :mod:`~gateway.protocols.edocvn.statuses` — MessageHeader, Manifest/parts and Status ↔ the edXML model;
* :mod:`~gateway.protocols.edocvn.packages` — a whole document or status ↔ the model (both directions, for the edge
  and the adapter alike);
* :mod:`~gateway.protocols.edocvn.errors` — refusals carrying Bkav's Report code strings.

Import this package (``from gateway.protocols import edocvn``) and use its names qualified; the submodules are its
layout, not separate APIs. Pure functions over bytes and lxml elements: no HTTP, no database.
"""

from gateway.protocols.edocvn.answers import (
    DENIED,
    OK,
    Answer,
    Report,
    ReportError,
    answer,
    document_answer,
    error_answer,
    organizations_answer,
    pending_answer,
    read_answer,
    read_report,
    report_answer,
    report_element,
    report_for,
    send_document_answer,
    traces_answer,
)
from gateway.protocols.edocvn.attachments import (
    PAYLOAD_BASE64_TEXT,
    PAYLOAD_RAW,
    Payload,
    Reference,
    manifest_element,
    match,
    out_parts,
    references,
    to_model,
)
from gateway.protocols.edocvn.calls import (
    send_document_envelope,
    send_document_request,
    signature_element,
    simple_request,
    update_traces_request,
)
from gateway.protocols.edocvn.documents import message_header_element, read_header, trace_header_list_element
from gateway.protocols.edocvn.envelope import Request, read_request, split_envelope
from gateway.protocols.edocvn.errors import ProfileError
from gateway.protocols.edocvn.mime import Part, Related, is_multipart, read_related, single_part
from gateway.protocols.edocvn.mimebuild import MultipartBody, OutPart
from gateway.protocols.edocvn.names import (
    EDOC,
    SOAP11,
    SOAP12,
    Operation,
    parse_soap_action,
    soap_action_header,
)
from gateway.protocols.edocvn.packages import edoc_from_answer, edoc_from_legacy, get_document_body, traces_body
from gateway.protocols.edocvn.statuses import is_send_failure, read_status, status_element, wire_code

__all__ = [
    "DENIED",
    "EDOC",
    "OK",
    "PAYLOAD_BASE64_TEXT",
    "PAYLOAD_RAW",
    "SOAP11",
    "SOAP12",
    "Answer",
    "MultipartBody",
    "Operation",
    "OutPart",
    "Part",
    "Payload",
    "ProfileError",
    "Reference",
    "Related",
    "Report",
    "ReportError",
    "Request",
    "answer",
    "document_answer",
    "edoc_from_answer",
    "edoc_from_legacy",
    "error_answer",
    "get_document_body",
    "is_multipart",
    "is_send_failure",
    "manifest_element",
    "match",
    "message_header_element",
    "organizations_answer",
    "out_parts",
    "parse_soap_action",
    "pending_answer",
    "read_answer",
    "read_header",
    "read_related",
    "read_report",
    "read_request",
    "read_status",
    "references",
    "report_answer",
    "report_element",
    "report_for",
    "send_document_answer",
    "send_document_envelope",
    "send_document_request",
    "signature_element",
    "simple_request",
    "single_part",
    "soap_action_header",
    "split_envelope",
    "status_element",
    "to_model",
    "trace_header_list_element",
    "traces_answer",
    "traces_body",
    "update_traces_request",
    "wire_code",
]
