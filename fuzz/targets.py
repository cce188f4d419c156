"""One fuzz target per parser surface; each raises :class:`Crash` on an unexpected outcome and returns otherwise.

Surfaces (issue 10, "a fuzz target per parser surface"):

* ``package`` — bytes → :func:`gateway.validation.validate_package` (safe parse, reader, XSD, business checks);
* ``signature`` — bytes → :func:`gateway.xmlcheck.signature.verify_package` against the test trust store;
* ``certificate`` — DER bytes placed in the KeyInfo of a signed package → ``verify_package`` (the lazy-parsing
  ``cryptography`` objects are reached exactly as a hostile signer would reach them);
* ``soap`` — an envelope (``@@WSSE@@`` replaced by a fresh UsernameToken) → ``POST /soap`` of the real app;
* ``json`` — a body → ``POST /rest/v1/packages`` with a valid HMAC over it;
* ``vdxp`` — an operation, parameters and body (:func:`fuzz.seeds.decode_vdxp`) → a freshly signed VDXP request.

The served surfaces are judged by their answers: HTTP 500 with ``GATEWAY.INTERNAL``, an exception escaping the WSGI
app, or an answer outside the edge's format (a SOAP answer that is not XML, a JSON answer that is not JSON) is a
crash; every other answer — refusals included — is fine.
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

from fuzz.gateway_under_test import Answer, GatewayUnderTest
from fuzz.seeds import DS, Builder, decode_vdxp, with_credentials
from gateway.errors import GatewayError
from gateway.protocols.vdxp.names import CONTENT_TYPES, Operation
from gateway.protocols.vdxp.signing import format_timestamp, request_entries, signed_headers
from gateway.validation import validate_package
from gateway.xmlcheck.signature import verify_package
from gateway.xmlcheck.trust import TrustStore

INTERNAL = b"GATEWAY.INTERNAL"


class Crash(Exception):
    """An outcome no hostile input may cause; the message says which and how."""


Target = Callable[[bytes], None]


class Targets:
    """The targets over one in-process gateway (built once: a PKI and a database take seconds)."""

    def __init__(self, gut: GatewayUnderTest, builder: Builder) -> None:
        self._gut = gut
        self._trust = TrustStore.from_files(gut.pki.trust, gut.pki.crls, intermediate_paths=[gut.pki.chain])
        self._signed_root = builder.signed
        self.by_name: dict[str, Target] = {
            "package": self.package,
            "signature": self.signature,
            "certificate": self.certificate,
            "soap": self.soap,
            "json": self.json,
            "vdxp": self.vdxp,
        }

    # --------------------------------------------------------------------------------------------- library

    def package(self, data: bytes) -> None:
        _library(lambda: validate_package(data))

    def signature(self, data: bytes) -> None:
        _library(lambda: verify_package(data, self._trust))

    def certificate(self, data: bytes) -> None:
        root = etree.fromstring(self._signed_root)
        node = root.find(f".//{{{DS}}}X509Certificate")
        assert node is not None
        node.text = base64.b64encode(data).decode()
        package = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        _library(lambda: verify_package(package, self._trust))

    # ---------------------------------------------------------------------------------------------- served

    def soap(self, data: bytes) -> None:
        body = with_credentials(self._gut, data)
        answer = self._served("POST", "/soap", body, {"Content-Type": "text/xml; charset=utf-8"})
        if not answer.content_type.startswith("text/xml"):
            raise Crash(f"SOAP answer {answer.status} is {answer.content_type!r}, not a SOAP message")
        try:
            etree.fromstring(answer.body)
        except etree.XMLSyntaxError as exc:
            raise Crash(f"SOAP answer {answer.status} is not well-formed XML: {exc}") from exc

    def json(self, data: bytes) -> None:
        answer = self._served("POST", "/rest/v1/packages", data, self._gut.rest_headers(data))
        _json_answer(answer)

    def vdxp(self, data: bytes) -> None:
        operation, params, body = decode_vdxp(data)
        op = Operation(operation) if operation in Operation.__members__.values() else Operation.GET_AGENCIES_LIST
        stamp = format_timestamp(datetime.now(UTC))
        entries = request_entries(op, "S-SENDER", stamp, params)
        try:
            headers = signed_headers(self._gut.secrets["S-SENDER"], entries, content_type=CONTENT_TYPES[op])
        except ValueError:
            return  # the input named no usable parameters: nothing a client could send
        # http.client sends header values as Latin-1; a value it could not send is not an input of this edge.
        headers = {k: v.encode("utf-8", "replace").decode("latin-1") for k, v in headers.items()}
        if any(c in v for v in headers.values() for c in "\r\n\x00"):
            return  # not expressible as an HTTP header (a server never sees it)
        answer = self._served("POST", f"/vdxp/{operation or op.value}", body, headers)
        _json_answer(answer)

    def _served(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            answer = self._gut.request(method, path, body, headers)
        except Exception as exc:
            raise Crash(f"{method} {path}: {type(exc).__name__} escaped the WSGI app: {exc}") from exc
        if answer.status >= 500 and INTERNAL in answer.body:
            why = "; ".join(self._gut.exceptions.seen) or "no traceback logged"
            raise Crash(f"{why}: {method} {path} answered {answer.status} GATEWAY.INTERNAL")
        return answer


def _library(call: Callable[[], object]) -> None:
    try:
        call()
    except GatewayError:
        pass
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/gateway/" in f.filename]
        where = f" at {frames[-1].filename.rsplit('/gateway/', 1)[1]}:{frames[-1].lineno}" if frames else ""
        raise Crash(f"{type(exc).__name__}{where}: {exc}") from exc


def _json_answer(answer: Answer) -> None:
    if not answer.content_type.startswith("application/json"):
        raise Crash(f"answer {answer.status} is {answer.content_type!r}, not JSON")
    try:
        json.loads(answer.body)
    except ValueError as exc:
        raise Crash(f"answer {answer.status} is not JSON: {exc}") from exc
