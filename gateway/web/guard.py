"""The WSGI guard in front of spyne: everything that must happen before a SOAP operation runs.

gateway.md Intake 1–2 and "Registry, routing, access", in this order, for ``POST /soap``:

1. ``Content-Length`` present and within ``settings.max_body_bytes`` — checked *before* the body is read;
2. ``Content-Type: text/xml`` (SOAP 1.1), charset absent or UTF-8; ``multipart/*`` (SwA/MTOM) refused;
3. the body (never more than ``Content-Length``) is parsed ONCE from its spool file, as
   :func:`gateway.xmlcheck.safe.parse_bounded` would (DOCTYPE/ENTITY → ``EDXML.FORBIDDEN``), each package's base64
   decoded into a spool file instead of the tree (:mod:`gateway.web.envelope_stream`); spyne reuses that tree.
   While it is parsed, the envelope is held to hard limits (issue 10; settings ``soap_max_*``): nesting depth,
   element count, attributes per element, characters per text node outside the package → ``SIZE.LIMIT``, refused
   as soon as the piece that crosses a limit has been parsed, before authentication and before spyne (which walked
   100,000 attributes of one element for 41–81 s). Processing instructions are refused (WS-I Basic Profile 1.1
   R1009: a message must not contain them; spyne crashed on one in the operation element) → ``EDXML.FORBIDDEN``;
   comments are dropped, so ``QUJD<!---->RA==`` is the text ``QUJDRA==`` and not, as spyne read it, ``QUJD``;
4. the body must be one known operation in a SOAP 1.1 envelope, without ``xsi:nil`` on the operation element
   (spyne crashed on it), with each parameter at most once, and every parameter but the package and free text
   within ``soap_max_identifier_chars`` (→ ``SIZE.LIMIT``);
5. authentication: WS-Security UsernameToken in ``soap:Header`` (PasswordDigest with Nonce + Created →
   :meth:`GatewayApi.authenticate_digest`, which also enforces the replay window; PasswordText only over TLS), or
   else HTTP Basic, only over TLS when ``settings.basic_auth_requires_tls``;
6. the authenticated system id goes into ``environ["edoc_gateway.system_id"]`` for the operations;
7. a system has at most ``settings.max_requests_per_system`` operations running in this process; one more is
   refused with HTTP 429, ``RATE.LIMITED`` and ``Retry-After`` (issue 10: bounded concurrency per system, so one
   system's heavy requests cannot take every application thread of a worker).

HTTP status codes (WS-I Basic Profile 1.1, R1126: a response carrying a Fault uses 500): refusals at the HTTP
layer, before the body is parsed, answer 4xx — 405 method, 411 no Content-Length, 413 too large, 415 media type,
400 truncated body — each *with* a SOAP Fault body so that every client sees the same detail format. Everything
decided from the envelope (parse errors, unknown operation, authentication, the use cases) is a Fault with HTTP
500 — with one exception, the challenge:

* a request that carries NO credentials (no UsernameToken in ``wsse:Security``, no ``Authorization: Basic``)
  where HTTP Basic is accepted (over TLS, or with ``basic_auth_requires_tls`` off) answers **401** with
  ``WWW-Authenticate: Basic realm="edoc-gateway"`` and the ``AUTH.DENIED`` Fault as its body. Clients built on
  the HTTP challenge — suds ``HttpAuthenticated`` (urllib's handler), WCF ``<transport clientCredentialType=
  "Basic">``, Java's ``Authenticator`` — send their credentials only after one; a 500 left them failing with
  credentials configured. An ``Authorization`` of another scheme (Bearer, Negotiate …) is answered the same way:
  the challenge names the scheme that works;
* over plain HTTP (Basic refused there) there is no challenge: it would make such a client send its secret in
  clear before being told Basic is refused. It gets the 500 Fault saying what to use instead;
* WRONG credentials (unknown system, wrong secret, malformed Basic, PasswordText or Basic without TLS, a bad or
  replayed UsernameToken) stay 500 + ``AUTH.DENIED``/``AUTH.REPLAY``: a 401 there makes urllib and WCF give up
  with a bare "401 Unauthorized" and drop our Fault, and invites browsers to prompt for other credentials,
  while the 500 Fault reaches every SOAP toolkit as a readable fault (zeep reads the Fault of the 401 as well).

"TLS" means ``wsgi.url_scheme == "https"``. Behind the nginx proxy gunicorn sets that from
``X-Forwarded-Proto`` — but only for peers in ``settings.trusted_proxies`` (gunicorn's ``forwarded_allow_ips``,
deploy/gunicorn.conf.py; empty by default: nobody), and nginx overwrites any client-sent value. The guard never
reads the header itself, so a client that reaches gunicorn directly cannot claim TLS.

One log line per request (method, path, status, sizes, claimed user, authenticated system, elapsed, fault code);
never the body.

``GET ?wsdl`` names ``settings.public_base_url`` + ``/soap`` as the service address: ``public_url``, or the bind
address — never the request's ``Host`` header, with which any client could make the WSDL it is handed (or a cache
on the way) point other clients at a server of its choice (issue 10).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree

from gateway import logs, ns
from gateway.config import Settings
from gateway.errors import (
    AuthError,
    GatewayError,
    RateLimitedError,
    RequestError,
    SizeLimitError,
)
from gateway.payload import Payload
from gateway.services.api import GatewayApi
from gateway.soapkit import STATUS_LINES, call_spyne
from gateway.web.envelope import EnvelopeRules, check_identifier, read_envelope
from gateway.web.envelope_stream import ENV_PACKAGES, RequestPackages, answer_body, request_body
from gateway.web.faults import INTERNAL, FaultInfo, fault_envelope
from gateway.web.rawhttp import Refusal as _Refusal
from gateway.web.rawhttp import StartResponse, WsgiApp, length_for_log, log_safe
from gateway.web.slots import Slots
from gateway.web.soap import (
    ENV_ENVELOPE,
    ENV_FAULT,
    ENV_SYSTEM_ID,
    PACKAGE_PATHS,
    wsdl_document,
)
from gateway.web.wsgibridge import StreamedBody
from gateway.xmlcheck.safe import TreeLimits

log = logging.getLogger(__name__)

WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

#: soap:Header entries the guard processes (so mustUnderstand="1" on them is honoured).
_UNDERSTOOD: Final = frozenset({f"{{{WSSE}}}Security"})
_XML_TYPE: Final = "text/xml; charset=utf-8"
#: The challenge of a request without credentials (RFC 9110 §11.6.1, RFC 7617).
CHALLENGE: Final = 'Basic realm="edoc-gateway"'
_STATUS_LINES: Final = {**STATUS_LINES, 401: "401 Unauthorized", 429: "429 Too Many Requests"}
#: What a system refused for too many operations in progress is told to wait, in seconds.
RETRY_AFTER_SECONDS: Final = 1


@dataclass
class _Audit:
    """Who the request claimed to be and who it turned out to be, for the log line."""

    user: str = "-"
    system: str = "-"

    def claim(self, username: str) -> None:
        # Attacker-controlled: printable, bounded, no spaces, so it cannot forge or split a log line.
        self.user = log_safe(username)


@dataclass
class _Outcome:
    status: int
    body: bytes | Payload  # a Payload: a GetEdoc answer in a spool file (envelope_stream.answer_body)
    content_type: str = _XML_TYPE
    extra_headers: tuple[tuple[str, str], ...] = ()
    fault: str = "-"


class SoapGuard:
    """The ``/soap`` endpoint: guard checks, then spyne; also serves ``?wsdl`` with the configured address."""

    def __init__(self, spyne_app: WsgiApp, api: GatewayApi, settings: Settings) -> None:
        self._spyne = spyne_app
        self._api = api
        self._max_body = settings.max_body_bytes
        self._basic_requires_tls = settings.basic_auth_requires_tls
        self._max_identifier = settings.soap_max_identifier_chars
        limits = TreeLimits(
            max_depth=settings.soap_max_depth,
            max_elements=settings.soap_max_elements,
            max_attributes=settings.soap_max_attributes,
            max_text_chars=settings.soap_max_text_chars,
            bulk=PACKAGE_PATHS,
        )
        self._rules = EnvelopeRules(self._max_body, limits, self._max_identifier, _UNDERSTOOD)
        self._spool_dir, self._max_package = Path(settings.data_dir) / "spool", settings.max_package_bytes
        self._address = settings.public_base_url + "/soap"
        self._wsdl_bytes: bytes | None = None
        # Operations in progress per authenticated system, in this process (issue 10: one system cannot occupy
        # every application thread of a worker; the others keep being served).
        self._system_slots = Slots(settings.max_requests_per_system)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        audit = _Audit()
        logs.bind(edge="soap", operation="other")  # the operation, once the envelope names one (_post)
        try:
            if method == "POST":
                outcome = self._post(environ, audit)
            elif method in ("GET", "HEAD") and _is_wsdl_query(environ.get("QUERY_STRING", "")):
                logs.bind(operation="wsdl")
                outcome = _Outcome(200, self._wsdl())
            else:
                raise _Refusal(405, RequestError(f"method {method} is not allowed: POST SOAP 1.1, or GET ?wsdl"))
        except _Refusal as refusal:
            outcome = _Outcome(
                refusal.status,
                fault_envelope(FaultInfo.from_error(refusal.error)),
                extra_headers=(("Connection", "close"),) if refusal.close else (),
                fault=refusal.error.code,
            )
            if refusal.status == 405:
                outcome.extra_headers += (("Allow", "POST, GET"),)
            if refusal.status == 401:
                outcome.extra_headers += (("WWW-Authenticate", CHALLENGE),)
            if refusal.status == 429:
                outcome.extra_headers += (("Retry-After", str(RETRY_AFTER_SECONDS)),)
        except Exception:
            # A defect in the guard or in spyne: the client gets a Fault, never an HTML 500; the log gets the
            # traceback (which has no body in it: the body is never part of an exception message here).
            log.exception("internal error at the SOAP edge (%s %s)", method, environ.get("PATH_INFO", ""))
            outcome = _Outcome(500, fault_envelope(INTERNAL), fault=INTERNAL.code)
        size = outcome.body.size if isinstance(outcome.body, Payload) else len(outcome.body)
        headers = [
            ("Content-Type", outcome.content_type),
            ("Content-Length", str(size)),
            *outcome.extra_headers,
        ]
        start_response(_STATUS_LINES[outcome.status], headers)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %d in=%s out=%d user=%s system=%s %.1fms fault=%s",
            method,
            environ.get("PATH_INFO", ""),
            outcome.status,
            length_for_log(environ),
            size,
            audit.user,
            audit.system,
            elapsed_ms,
            outcome.fault,
            extra={"status": outcome.status, "duration_ms": round(elapsed_ms, 1), "code": outcome.fault},
        )
        if isinstance(outcome.body, Payload):
            return StreamedBody(outcome.body)
        return [b"" if method == "HEAD" else outcome.body]

    # ------------------------------------------------------------------------------------------ POST

    def _post(self, environ: dict[str, Any], audit: _Audit) -> _Outcome:
        length = self._check_headers(environ)
        with RequestPackages(self._spool_dir, self._max_package) as packages:  # closed when intake is done
            with request_body(environ, length, self._spool_dir) as body:
                envelope = read_envelope(body, length, self._rules, packages)
            return self._operation(environ, audit, envelope, packages)

    def _operation(self, environ: dict[str, Any], audit: _Audit, envelope: Any, packages: Any) -> _Outcome:
        logs.bind(operation=_operation_name(envelope))
        system = audit.system = self._authenticate(environ, envelope, audit)
        logs.bind(system=system)
        with self._system_slots.hold(system) as granted:
            if not granted:
                limit = self._system_slots.limit
                raise _Refusal(
                    429,
                    RateLimitedError(
                        f"too many operations in progress for this system (at most {limit} per worker)",
                        retry_after=RETRY_AFTER_SECONDS,
                        limit=limit,
                    ),
                )
            extra = {ENV_SYSTEM_ID: system, ENV_ENVELOPE: envelope, ENV_PACKAGES: packages}
            status, payload, inner = call_spyne(self._spyne, environ, extra)
        info: FaultInfo | None = inner.get(ENV_FAULT)
        answer = answer_body(payload, inner, self._spool_dir, ok=status == 200 and info is None)
        if status != 200 and info is None:
            # spyne answered without going through our Fault renderer (should not happen): do not pass it on.
            log.error("spyne answered HTTP %s without a gateway Fault; replaced by %s", status, INTERNAL.code)
            return _Outcome(500, fault_envelope(INTERNAL), fault=INTERNAL.code)
        return _Outcome(200 if info is None else 500, answer, fault=info.code if info else "-")

    def _check_headers(self, environ: dict[str, Any]) -> int:
        """Steps 1–2, on headers only: nothing of the body has been read when these refuse."""
        raw = (environ.get("CONTENT_LENGTH") or "").strip()
        if not raw.isdigit():
            raise _Refusal(
                411, RequestError("Content-Length is required (chunked request bodies are not accepted)"), close=True
            )
        length = int(raw)
        if length > self._max_body:
            raise _Refusal(
                413,
                SizeLimitError(
                    f"request body is {length} bytes, above the limit of {self._max_body} bytes",
                    size=length,
                    limit=self._max_body,
                ),
                close=True,
            )
        media, params = _parse_content_type(environ.get("CONTENT_TYPE", ""))
        if media.startswith("multipart/"):
            raise _Refusal(
                415,
                RequestError(
                    "multipart requests (SOAP with attachments, MTOM) are not accepted: "
                    "send the package inline as xs:base64Binary"
                ),
                close=True,
            )
        if media == "application/soap+xml":
            raise _Refusal(415, RequestError("SOAP 1.2 is not supported: use SOAP 1.1 (text/xml)"), close=True)
        if media != "text/xml":
            raise _Refusal(
                415, RequestError(f"Content-Type must be text/xml (SOAP 1.1), not {media or 'none'!r}"), close=True
            )
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise _Refusal(415, RequestError(f"charset must be UTF-8, not {charset!r}"), close=True)
        return length

    def _authenticate(self, environ: dict[str, Any], envelope: etree._Element, audit: _Audit) -> str:
        """Step 5: WS-Security UsernameToken if present, else HTTP Basic; the system id or a Fault."""
        token = _username_token(envelope)
        if token is not None:
            return self._ws_security(environ, token, audit)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization[:6].lower() == "basic ":
            self._require_tls(environ, "HTTP Basic authentication")
            username, password = _basic_credentials(authorization[6:])
            audit.claim(username)
            return _call_auth(lambda: self._api.authenticate_basic(username, password))
        # No credentials we can read: challenge where Basic is accepted, so clients that wait for it answer.
        challenge = not self._basic_requires_tls or environ.get("wsgi.url_scheme") == "https"
        raise _Refusal(
            401 if challenge else 500,
            AuthError(
                "authentication required: a WS-Security UsernameToken (PasswordDigest) in soap:Header, "
                "or HTTP Basic over TLS"
            ),
        )

    def _ws_security(self, environ: dict[str, Any], token: etree._Element, audit: _Audit) -> str:
        for local, namespace in (("Username", WSSE), ("Nonce", WSSE), ("Created", WSU)):
            check_identifier(
                token.find(f"{{{namespace}}}{local}"),
                f"/Envelope/Header/Security/UsernameToken/{local}",
                self._max_identifier,
            )
        username = _child_text(token, WSSE, "Username")
        audit.claim(username)
        passwords = token.findall(f"{{{WSSE}}}Password")
        if not username or len(passwords) != 1:
            raise _Refusal(500, AuthError("UsernameToken needs exactly one Username and one Password"))
        password = passwords[0]
        kind = (password.get("Type") or "#PasswordText").rsplit("#", 1)[-1].rsplit(":", 1)[-1]
        secret = (password.text or "").strip()
        if kind == "PasswordDigest":
            nonce = _child_text(token, WSSE, "Nonce")
            created = _child_text(token, WSU, "Created")
            if not nonce or not created:
                raise _Refusal(500, AuthError("a PasswordDigest UsernameToken needs Nonce and wsu:Created"))
            return _call_auth(lambda: self._api.authenticate_digest(username, secret, nonce, created))
        if kind == "PasswordText":
            self._require_tls(environ, "a PasswordText UsernameToken")
            return _call_auth(lambda: self._api.authenticate_basic(username, password.text or ""))
        raise _Refusal(500, AuthError(f"unsupported UsernameToken password type {kind!r}"))

    def _require_tls(self, environ: dict[str, Any], what: str) -> None:
        if self._basic_requires_tls and environ.get("wsgi.url_scheme") != "https":
            raise _Refusal(500, AuthError(f"{what} is accepted only over TLS (HTTPS)"))

    # ------------------------------------------------------------------------------------------ WSDL

    def _wsdl(self) -> bytes:
        """The WSDL with the configured address (built on first use: spyne's WSDL work is not done at start-up)."""
        if self._wsdl_bytes is None:
            self._wsdl_bytes = wsdl_document(self._address)
        return self._wsdl_bytes


# ------------------------------------------------------------------------------------------- helpers


def _is_wsdl_query(query: str) -> bool:
    return query.split("&", 1)[0].split("=", 1)[0].lower() == "wsdl"


def _parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, eq, val = part.partition("=")
        if eq:
            params[key.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


def _operation_name(envelope: etree._Element) -> str:
    """The local name of the one operation element (one of :data:`OPERATIONS`: checked by the parse)."""
    return etree.QName(envelope.find(f"{{{ns.SOAP11}}}Body/*").tag).localname  # type: ignore[union-attr]


def _username_token(envelope: etree._Element) -> etree._Element | None:
    tokens = envelope.findall(f"{{{ns.SOAP11}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if len(tokens) > 1:
        raise _Refusal(500, AuthError("more than one UsernameToken in the request"))
    return tokens[0] if tokens else None


def _child_text(parent: etree._Element, namespace: str, local: str) -> str:
    child = parent.find(f"{{{namespace}}}{local}")
    return (child.text or "").strip() if child is not None else ""


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _Refusal(500, AuthError("malformed HTTP Basic credentials")) from None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        raise _Refusal(500, AuthError("malformed HTTP Basic credentials"))
    return username, password


def _call_auth(check: Callable[[], str]) -> str:
    try:
        return check()
    except GatewayError as exc:
        raise _Refusal(500, exc) from None
