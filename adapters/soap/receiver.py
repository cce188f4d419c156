"""The reference receiver: a small spyne WSGI app implementing ``wsdl/edoc-receiver.wsdl`` (the demo and the tests
deliver to it; integrators can read it as the contract's executable description).

Run it under gunicorn (a factory, so importing this module builds nothing)::

    EDOC_RECEIVER_DIR=/var/lib/edoc-receiver gunicorn -w 2 -b 127.0.0.1:8090 'adapters.soap.receiver:make_app()'

What it does with a ``ReceiveEdoc``: the package is stored as ``<dir>/<messageId>.edxml``, written atomically (a
temporary file, fsync, then a hard link to the final name, which fails if the name exists — so two concurrent
requests with one messageId, even in two gunicorn workers, store it once) and the directory is fsynced before the
answer. A messageId already stored is answered ``accepted=true, duplicate=true`` without writing (the same
messageId with *different* bytes is refused with a Client fault). ``writes.log`` gets one JSON line per package
stored and ``duplicates.log`` one per duplicate, so tests (and the demo) can count both.

Guarded like the gateway's own edge, without authentication: POST only (GET ``?wsdl`` and ``/healthz`` aside),
``Content-Length`` required and checked against the limit before the body is read, ``text/xml`` only, the body
parsed once by :func:`gateway.xmlcheck.safe.parse_bounded` (no DTD, no entities, no network, no processing
instructions, and the envelope's depth, elements, attributes and text held to the gateway's default limits while it
is parsed) and handed to spyne as a tree, base64 decoded strictly. Every refusal and every unexpected error is a
SOAP Fault — never an HTML page.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from lxml import etree
from spyne import Application, Boolean, Fault, ServiceBase, SimpleModel, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from adapters.soap.contract import MESSAGE_ID, OPERATION, PLACEHOLDER_ADDRESS, RECEIVER_NS, SERVICE_NAME
from adapters.soap.storage import ConflictError, ReceiverStore
from gateway.errors import GatewayError
from gateway.soapkit import STATUS_LINES, XSD_NS, call_spyne, reproducible_wsdl, wsdl_with_address
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES, TreeLimits, parse_bounded

log = logging.getLogger(__name__)

ENV_DIR: Final = "EDOC_RECEIVER_DIR"
ENV_MAX_PACKAGE_BYTES: Final = "EDOC_RECEIVER_MAX_PACKAGE_BYTES"
#: The address the receiver's WSDL names (``soap:address``); unset: the socket it listens on.
ENV_PUBLIC_URL: Final = "EDOC_RECEIVER_PUBLIC_URL"

SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
_ENV_ENVELOPE: Final = "edoc_receiver.envelope"
_ENV_FAULTED: Final = "edoc_receiver.faulted"
_KINDS: Final = frozenset({"edoc", "status"})
_XML: Final = "text/xml; charset=utf-8"
_READ_CHUNK: Final = 1 << 20
_WHITESPACE = str.maketrans("", "", " \t\r\n")


# ================================================================================================ SOAP


class PackageBytes(SimpleModel):
    """``xs:base64Binary`` decoded strictly by :class:`_ReceiverSoap11` (spyne's ByteArray drops bad characters)."""

    __type_name__ = "base64Binary"
    __namespace__ = XSD_NS


_REQ: Final = {"min_occurs": 1, "nillable": False}
_OPT: Final = {"min_occurs": 0, "nillable": False}


def _folded_doc(func: Callable[..., Any]) -> Callable[..., Any]:
    """The docstring becomes ``wsdl:documentation``: fold it onto one line first."""
    func.__doc__ = " ".join((func.__doc__ or "").split()) or None
    return func


class _ClientError(Exception):
    """A request the receiver refuses for good (a ``soap:Client`` fault)."""


class EdocReceiverService(ServiceBase):
    """The contract's single operation."""

    __service_name__ = SERVICE_NAME

    @rpc(
        Unicode(**_REQ),
        Unicode(**_REQ),
        Unicode(**_REQ),
        Unicode(**_REQ),
        Unicode(**_REQ),
        Unicode(**_REQ),
        PackageBytes.customize(**_REQ),
        _returns=(Boolean(**_REQ), Unicode(**_REQ), Boolean(**_OPT)),
        _out_variable_names=("accepted", "receiverRef", "duplicate"),
    )
    @_folded_doc
    def ReceiveEdoc(
        ctx,
        messageId: str | None,
        docId: str | None,
        kind: str | None,
        sender: str | None,
        recipient: str | None,
        documentId: str | None,
        edxmlPackage: bytes | None,
    ) -> tuple[bool, str, bool]:
        """Take one edXML package (byte-exact). messageId is stable across retries: a second call with the same
        messageId is acknowledged (duplicate=true) without storing again. accepted=false refuses the package for
        good; a temporary problem is a soap:Server fault."""
        message_id = (messageId or "").strip()
        if not MESSAGE_ID.match(message_id):
            raise _ClientError("messageId is required: 1-128 letters, digits, '.', '_' or '-'")
        if (kind or "").strip() not in _KINDS:
            raise _ClientError("kind must be edoc or status")
        if not edxmlPackage:
            raise _ClientError("edxmlPackage is required and must not be empty")
        meta = {
            "docId": (docId or "")[:64],
            "kind": (kind or "").strip(),
            "sender": (sender or "")[:35],
            "recipient": (recipient or "")[:35],
            "documentId": (documentId or "")[:200],
        }
        try:
            written, digest = ctx.app.store.put(message_id, edxmlPackage, meta)
        except ConflictError:
            raise _ClientError(f"messageId {message_id} was already received with different content") from None
        ctx.transport.req["edoc_receiver.outcome"] = f"{message_id} {'stored' if written else 'duplicate'}"
        return True, digest, not written

    @classmethod
    def call_wrapper(cls, ctx: Any, args: Iterable[Any] | None = None) -> Any:
        """Client errors → ``soap:Client``; anything unexpected (a full disk) → ``soap:Server``, details logged."""
        try:
            return super().call_wrapper(ctx, args)
        except _ClientError as exc:
            raise Fault("Client", str(exc)) from None
        except Fault:
            raise
        except Exception:
            log.exception("ReceiveEdoc failed")
            raise Fault("Server", "the receiver could not store the package; try again later") from None


class _ReceiverSoap11(Soap11):
    """spyne's SOAP 1.1 without its own parser (it accepts DTDs): the tree comes from the guard below."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deserialization_handlers[PackageBytes] = self._package_from_element
        self.serialization_handlers[PackageBytes] = self._package_to_parent

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        envelope = ctx.transport.req.get(_ENV_ENVELOPE)
        if envelope is None:  # mounted without the guard: refuse rather than parse unguarded
            raise Fault("Server", "internal error")
        ctx.in_document = (envelope, None)

    def _package_from_element(self, ctx: Any, cls: Any, element: etree._Element) -> bytes:
        text = element.text or ""
        try:
            data = base64.b64decode(text.translate(_WHITESPACE), validate=True)
        except (binascii.Error, ValueError):
            raise Fault("Client", "package is not valid base64") from None
        element.text = None  # free the base64 text before the package is stored
        return data

    def _package_to_parent(
        self, ctx: Any, cls: Any, inst: bytes, parent: etree._Element, ns: str, name: str = "retval", **_: Any
    ) -> None:  # pragma: no cover - the contract never sends a package back
        etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name).text = base64.b64encode(inst).decode("ascii")


class _ReceiverApplication(Application):
    def __init__(self, store: ReceiverStore | None) -> None:
        super().__init__(
            [EdocReceiverService],
            tns=RECEIVER_NS,
            name=SERVICE_NAME,
            in_protocol=_ReceiverSoap11(validator=None, parse_xsi_type=False),
            out_protocol=_ReceiverSoap11(),
        )
        self.store = store


# ================================================================================================ WSGI

StartResponse = Callable[..., Any]


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ReceiverApp:
    """The WSGI application: guard checks, then spyne; ``GET ?wsdl`` and ``GET /healthz`` on the side."""

    def __init__(
        self, store: ReceiverStore, *, max_package_bytes: int = DEFAULT_MAX_BYTES, public_url: str | None = None
    ) -> None:
        self.store = store
        self._public_url = public_url
        self._max_body = max_package_bytes * 4 // 3 + 64 * 1024
        self._spyne = WsgiApplication(_ReceiverApplication(store), max_content_length=self._max_body)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "") or "/"
        query = environ.get("QUERY_STRING", "")
        content_type = _XML
        extra: list[tuple[str, str]] = []
        try:
            if method in ("GET", "HEAD") and path == "/healthz":
                status, body, content_type = 200, b'{"status": "ok"}', "application/json"
            elif method in ("GET", "HEAD") and query.split("&", 1)[0].split("=", 1)[0].lower() == "wsdl":
                status, body = 200, wsdl_document(self._public_url or _listening_url(environ))
            elif method == "POST":
                status, body = self._post(environ)
            else:
                raise _Refusal(405, "Client", f"method {method} is not allowed: POST SOAP 1.1, or GET ?wsdl")
        except _Refusal as refusal:
            status, body = refusal.status, fault_envelope(refusal.code, refusal.message)
            if refusal.status != 500:
                extra.append(("Connection", "close"))  # the unread body must not be taken for the next request
        except Exception:
            log.exception("internal error in the receiver (%s %s)", method, path)
            status, body = 500, fault_envelope("Server", "internal error in the receiver")
        start_response(
            STATUS_LINES[status], [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
        )
        log.info(
            "%s %s %d in=%s out=%d %s %.1fms",
            method,
            path,
            status,
            environ.get("CONTENT_LENGTH") or "-",
            len(body),
            environ.get("edoc_receiver.outcome", "-"),
            (time.perf_counter() - started) * 1000,
        )
        return [b"" if method == "HEAD" else body]

    def _post(self, environ: dict[str, Any]) -> tuple[int, bytes]:
        raw = (environ.get("CONTENT_LENGTH") or "").strip()
        if not raw.isdigit():
            raise _Refusal(411, "Client", "Content-Length is required")
        length = int(raw)
        if length > self._max_body:
            raise _Refusal(413, "Client", f"request body is {length} bytes, above the limit of {self._max_body}")
        media = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
        if media != "text/xml":
            raise _Refusal(415, "Client", f"Content-Type must be text/xml (SOAP 1.1), not {media or 'none'!r}")
        body = _read_body(environ["wsgi.input"], length)
        try:
            envelope = parse_bounded(
                body, _LIMITS, max_bytes=self._max_body, what="SOAP envelope", strip_comments=True, forbid_pis=True
            ).getroot()
        except GatewayError as exc:
            raise _Refusal(500, "Client", exc.message) from None
        del body
        operations = [c for c in envelope.iterfind(f"{{{SOAP11}}}Body/*") if isinstance(c.tag, str)]
        if envelope.tag != f"{{{SOAP11}}}Envelope" or len(operations) != 1:
            raise _Refusal(500, "Client", "expected a SOAP 1.1 Envelope with one operation in its Body")
        if operations[0].tag != f"{{{RECEIVER_NS}}}{OPERATION}":
            raise _Refusal(500, "Client", f"unknown operation {operations[0].tag}")
        code, payload, inner = call_spyne(self._spyne, environ, {_ENV_ENVELOPE: envelope})
        environ["edoc_receiver.outcome"] = inner.get("edoc_receiver.outcome", "-")
        if code not in (200, 500) or not payload.lstrip().startswith(b"<"):
            log.error("spyne answered HTTP %s without a SOAP body; replaced by a Server fault", code)
            return 500, fault_envelope("Server", "internal error in the receiver")
        return code, payload


#: The envelope's shape, held while it is parsed and before spyne walks it (issue 10: spyne's ``attrib.items()`` is
#: super-linear in the attribute count). The gateway's own defaults (``soap_max_*``), with the package exempt from
#: the text limit; a receiver has no settings file, and no sender of ours comes near these.
_LIMITS: Final = TreeLimits(
    max_depth=32,
    max_elements=1000,
    max_attributes=32,
    max_text_chars=65536,
    bulk=frozenset({("Envelope", "Body", OPERATION, "edxmlPackage")}),
)


def fault_envelope(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault envelope (``soap:Client`` or ``soap:Server``)."""
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP11}}}Body"), f"{{{SOAP11}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = message
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _read_body(stream: Any, length: int) -> bytes:
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            raise _Refusal(400, "Client", "the request body ended before Content-Length")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _listening_url(environ: dict[str, Any]) -> str:
    """The address of the socket that took the request, never the request's ``Host`` header, which the client writes
    (issue 10: ``Host: attacker.example`` made a WSDL point its readers elsewhere). gunicorn sets ``SERVER_NAME`` and
    ``SERVER_PORT`` from the listening TCP socket; behind a proxy, set ``EDOC_RECEIVER_PUBLIC_URL``."""
    scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
    name = str(environ.get("SERVER_NAME") or "localhost")
    port = str(environ.get("SERVER_PORT") or "")
    if not all(ch.isalnum() or ch in ".-:[]" for ch in name) or not port.isdigit():
        name, port = "localhost", ""
    return f"{scheme}://{name}{':' + port if port else ''}/"


# ================================================================================================ WSDL & factory


def wsdl_document(address: str = PLACEHOLDER_ADDRESS) -> bytes:
    """The contract's WSDL with ``address`` as the service location (``wsdl/edoc-receiver.wsdl`` is the default)."""
    return wsdl_with_address(_wsdl_template(), address)


@functools.cache
def _wsdl_template() -> bytes:
    return reproducible_wsdl(WsgiApplication(_ReceiverApplication(None)), PLACEHOLDER_ADDRESS)


def make_app(directory: str | os.PathLike[str] | None = None, *, max_package_bytes: int | None = None) -> ReceiverApp:
    """The WSGI app (gunicorn: ``'adapters.soap.receiver:make_app()'``), storing into ``directory`` or
    ``$EDOC_RECEIVER_DIR``; the package limit is ``$EDOC_RECEIVER_MAX_PACKAGE_BYTES`` (default 50 MB), the WSDL's
    address ``$EDOC_RECEIVER_PUBLIC_URL`` (default: the listening socket)."""
    logging.getLogger("spyne").setLevel(logging.CRITICAL)  # spyne logs client faults with tracebacks
    target = directory or os.environ.get(ENV_DIR)
    if not target:
        raise RuntimeError(f"set {ENV_DIR} to the directory where received packages are stored")
    limit = max_package_bytes or int(os.environ.get(ENV_MAX_PACKAGE_BYTES) or DEFAULT_MAX_BYTES)
    public_url = os.environ.get(ENV_PUBLIC_URL) or None
    return ReceiverApp(ReceiverStore(Path(target)), max_package_bytes=limit, public_url=public_url)


__all__ = ["ENV_DIR", "ENV_PUBLIC_URL", "ReceiverApp", "ReceiverStore", "fault_envelope", "make_app", "wsdl_document"]
