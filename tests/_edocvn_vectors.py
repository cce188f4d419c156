# ruff: noqa: E501  (the spec's MIME framing, quoted verbatim)
"""The protocol tests' names for the spec's examples (tests/test_edocvn_protocol.py).

The examples themselves are quoted once, in :mod:`edocvn_vectors` (``VECTORS``, keyed by the spec's section); here
they get the names the protocol tests use, and the three examples the spec shows inside their HTTP/MIME framing
(§6.1, §6.3, §6.5) get that framing back around the same envelope text."""

from typing import Final

from edocvn_vectors import VECTORS


def _text(key: str) -> str:
    return VECTORS[key].text + "\n"


CHECK_PERMISSION_HTTP: Final = (
    'POST /services/EdocProxy HTTP/1.1\nSOAPAction: CheckPermission\nContent-Type: multipart/related; type="text/xml"; boundary="b-cp-01"; start="<root-cp>"\n\n--b-cp-01\nContent-Type: text/xml; charset=utf-8\nContent-Transfer-Encoding: 8bit\nContent-ID: <root-cp>\n\n'
    + VECTORS["§6.1 CheckPermission request"].text
    + "\n--b-cp-01--\n"
)


CHECK_PERMISSION_OK: Final = _text("§6.1 CheckPermission success response")


GET_ORGANIZATIONS_REQUEST: Final = _text("§6.2 GetOrganizations request")


GET_ORGANIZATIONS_BODY: Final = _text("§6.2 GetOrganizations success response")


SEND_DOCUMENT_HTTP: Final = (
    'POST /services/EdocProxy HTTP/1.1\nSOAPAction: SendDocument\nContent-Type: multipart/related; type="text/xml"; boundary="b-sd-7f2a"; start="<env.sd@qlvb.example>"\n\n--b-sd-7f2a\nContent-Type: text/xml; charset=utf-8\nContent-Transfer-Encoding: 8bit\nContent-ID: <env.sd@qlvb.example>\n\n'
    + VECTORS["§6.3 SendDocument request"].text
    + "\n--b-sd-7f2a\nContent-Type: application/pdf\nContent-Transfer-Encoding: binary\nContent-ID: <att-1@qlvb.example>\n\n%PDF-1.4 … (raw file bytes) …\n--b-sd-7f2a--\n"
)


SEND_DOCUMENT_OK: Final = _text("§6.3 SendDocument success response")


SEND_DOCUMENT_ERROR_BODY: Final = _text("§6.3 SendDocument error response")


GET_PENDING_REQUEST: Final = _text("§6.4 GetPendingDocumentIds request")


GET_PENDING_BODY: Final = _text("§6.4 GetPendingDocumentIds success response")


GET_DOCUMENT_REQUEST: Final = _text("§6.5 GetDocument request")


GET_DOCUMENT_HTTP: Final = (
    'HTTP/1.1 200 OK\nContent-Type: multipart/related; boundary=MIMEBoundary_3b9e; type="text/xml"; start="<0.root-gd@apache.org>"\n\n--MIMEBoundary_3b9e\nContent-Type: text/xml; charset=UTF-8\nContent-Transfer-Encoding: binary\nContent-ID: <0.root-gd@apache.org>\n\n'
    + VECTORS["§6.5 GetDocument success response, database path"].text
    + "\n--MIMEBoundary_3b9e\nContent-Type: application/pdf\nContent-Transfer-Encoding: binary\nContent-ID: <5f0c2d9e-8a41-4c57-9a3e-0d6b1e7f2a10>\n\nJVBERi0xLjQKJSBkZW1vIGF0dGFjaG1lbnQK\n--MIMEBoundary_3b9e--\n"
)


GET_DOCUMENT_ERROR_BODY: Final = _text("§6.5 GetDocument error response")


CONFIRM_RECEIVED_REQUEST: Final = _text("§6.6 ConfirmReceived request")


CONFIRM_RECEIVED_BODY: Final = _text("§6.6 ConfirmReceived success response")


UPDATE_TRACES_REQUEST: Final = _text("§6.7 UpdateTraces request")


GET_TRACES_REQUEST: Final = _text("§6.8 GetTraces request")


GET_TRACES_BODY: Final = _text("§6.8 GetTraces success response")
