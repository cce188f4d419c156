"""The VDXP REST protocol (edxml.md §11) in one module: our ``/vdxp`` server edge and our VDXP client both use it.

A VDXP request is ``POST {endpoint}/{operation}``. Its parameters travel as HTTP headers, and those headers are
signed (edxml.md §11.2, confirmed on the wire in §11.4 and ``shared/vectors/vnpt-sdk/requests.json``):

* every entry ``(name, value)`` of the request — ``systemid``, ``timestamp``, ``Content-Type`` and each
  parameter of the operation — is sent as the header ``XroadVnpt-<name>: <value>``;
* ``XroadVnpt-sign-header`` is the compact JSON object ``{"XroadVnpt-<name>":"<value>",…}`` over the same
  entries, ``XroadVnpt-sign-header-key`` the bare names joined by ``;``;
* ``XroadVnpt-hash-header`` = lowercase hex HMAC-SHA256(key = the system's secret as UTF-8, message = the
  ``XroadVnpt-sign-header`` value exactly as sent);
* ``sendEdoc`` carries the package as the raw body and binds it with ``XroadVnpt-hash-file`` = SHA-256 of the
  package. The HMAC covers headers only, so ``hash-file`` is the ONLY thing that authenticates the body: the
  server therefore requires it (:func:`package_from_body`).

Server side, :func:`verify_request` checks the HMAC over the received ``sign-header`` string (constant time), so
the JSON key order (Java ``HashMap`` order in the SDK) never matters. What it returns,
:class:`VerifiedRequest`, holds only SIGNED values of the parameters the operation uses; the edge reads
parameters from it and nowhere else (signxml's lesson: use only what was verified). The plain
``XroadVnpt-<name>`` headers are checked against the signed values and refused when they differ or when an
operation parameter arrives unsigned.

Quirks of the VNPT SDK (SDKVXP 2.0.x) the server tolerates, each observed on the wire:

* its header map is never cleared, so earlier parameters (``docId``, ``status``, ``from``, ``hash-file``,
  ``filePath``) are re-sent and signed in later calls: signed entries an operation does not use are ignored;
* ``hash-file`` is written byte by byte with Java ``Integer.toHexString`` — each byte's leading zero dropped
  (``…af06ce…`` becomes ``…af6ce…``): both that form and normal hex are accepted (:func:`file_hash_matches`);
* the body of ``sendEdoc`` is the file followed by an extra CRLF: :func:`package_from_body` tries the body as
  received and without one trailing CRLF, and keeps the candidate whose hash matches ``hash-file`` — never a
  guess from whether the XML parses;
* ``timestamp`` (``ddMMyyyy'T'HHmmss+SSSS``, ``+SSSS`` = milliseconds, not a zone) is fixed when the SDK client
  object is created, so freshness is NOT enforced by default; :func:`verify_request` takes an optional
  ``max_age`` for deployments whose clients are known to sign fresh timestamps.

Our client (:func:`signed_headers`) signs only the current call's parameters with a fresh timestamp, and writes
``hash-file`` in the SDK's form — the only form the national axis is known to accept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from gateway.edxml.dates import VN_TZ
from gateway.errors import AuthError, ReplayError, RequestError

PREFIX: Final = "XroadVnpt-"
SIGN_HEADER: Final = PREFIX + "sign-header"
SIGN_HEADER_KEY: Final = PREFIX + "sign-header-key"
HASH_HEADER: Final = PREFIX + "hash-header"
VERSION_HEADER: Final = PREFIX + "version"
#: What the SDK sends in ``XroadVnpt-version`` and ``User-Agent`` (edxml.md §11.2 step 5).
PROTOCOL_VERSION: Final = "3.0.201608"
SDK_USER_AGENT: Final = "JAVASDKAgent/1.0.0 XRoad/VPCP"

# Parameter (entry) names, as the SDK writes them. Header names are case-insensitive on the wire and in WSGI.
SYSTEMID: Final = "systemid"
TIMESTAMP: Final = "timestamp"
CONTENT_TYPE: Final = "Content-Type"
FROM: Final = "from"
TO: Final = "to"
SERVICETYPE: Final = "servicetype"
MESSAGETYPE: Final = "messagetype"
HASH_FILE: Final = "hash-file"
DOC_ID: Final = "docId"
STATUS: Final = "status"
DESCRIPTION: Final = "description"
FROM_DATE: Final = "fromDate"
TO_DATE: Final = "toDate"

SERVICE_TYPE_EDOC: Final = "eDoc"
OCTET_STREAM: Final = "application/octet-stream"
JSON_TYPE: Final = "application/json"
CRLF: Final = b"\r\n"
#: Date format of ``fromDate``/``toDate`` and of the list answers' ``created_time`` (Vietnam local time).
LIST_DATE_FORMAT: Final = "%d/%m/%Y %H:%M:%S"

#: Largest ``XroadVnpt-sign-header`` accepted; gunicorn already caps a header line at 8190 bytes.
MAX_SIGN_HEADER_BYTES: Final = 16 * 1024


class Operation(StrEnum):
    """The VDXP operations our edge serves (edxml.md §11.1); the value is the path segment."""

    SEND_EDOC = "sendEdoc"
    GET_RECEIVED_EDOC_LIST = "getReceivedEdocList"
    GET_EDOC = "getEdoc"
    UPDATE_STATUS = "updateStatus"
    GET_SENT_EDOC_LIST = "getSentEdocList"
    GET_AGENCIES_LIST = "getAgenciesList"


#: The parameters each operation reads (besides systemid/timestamp/Content-Type). Anything else that arrives
#: signed is a stale SDK entry and is ignored; anything here that arrives unsigned is refused.
OPERATION_PARAMS: Final[Mapping[Operation, frozenset[str]]] = {
    Operation.SEND_EDOC: frozenset({FROM, TO, SERVICETYPE, MESSAGETYPE, HASH_FILE}),
    Operation.GET_RECEIVED_EDOC_LIST: frozenset({SERVICETYPE, MESSAGETYPE, FROM_DATE, TO_DATE}),
    Operation.GET_EDOC: frozenset({DOC_ID}),
    Operation.UPDATE_STATUS: frozenset({DOC_ID, STATUS, DESCRIPTION}),
    Operation.GET_SENT_EDOC_LIST: frozenset({SERVICETYPE, MESSAGETYPE, DOC_ID, FROM_DATE, TO_DATE}),
    Operation.GET_AGENCIES_LIST: frozenset(),
}

#: The body type the SDK sends per operation (``sendEdoc`` posts the raw file).
CONTENT_TYPES: Final[Mapping[Operation, str]] = {
    op: (OCTET_STREAM if op is Operation.SEND_EDOC else JSON_TYPE) for op in Operation
}

# ================================================================================================ values


def format_timestamp(when: datetime) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS`` in Vietnam local time; ``+SSSS`` is the milliseconds, zero-padded to 4."""
    local = when.astimezone(VN_TZ) if when.tzinfo is not None else when
    return f"{local:%d%m%Y}T{local:%H%M%S}+{local.microsecond // 1000:04d}"


def parse_timestamp(text: str) -> datetime | None:
    """The inverse of :func:`format_timestamp` (read as Vietnam local time), or None when malformed."""
    value = text.strip()
    if len(value) != 20 or value[8] != "T" or value[15] != "+" or not value[16:].isdigit():
        return None
    try:
        base = datetime.strptime(value[:15], "%d%m%YT%H%M%S")
    except ValueError:
        return None
    millis = int(value[16:])
    if millis > 999:
        return None
    return base.replace(microsecond=millis * 1000, tzinfo=VN_TZ)


def sdk_hex(digest: bytes) -> str:
    """Hex as the SDK writes it: Java ``Integer.toHexString`` per byte, so each byte's leading zero is dropped."""
    return "".join(format(b, "x") for b in digest)


def file_hash(data: bytes) -> str:
    """``hash-file`` in the SDK's form (:func:`sdk_hex` of SHA-256): what the national axis is known to accept."""
    return sdk_hex(hashlib.sha256(data).digest())


def file_hash_matches(data: bytes, claimed: str) -> bool:
    """True if ``claimed`` is the SHA-256 of ``data`` in the SDK's form or in normal lowercase hex.

    The SDK form is ambiguous as a string (``1a`` may be one byte or two), but checking it means hashing
    ``data`` and comparing, so the ambiguity only costs a few bits of second-preimage resistance, not safety.
    """
    value = claimed.strip().lower().encode("ascii", "replace")
    digest = hashlib.sha256(data).digest()
    # Both comparisons always run: constant time whatever form the client used.
    normal = hmac.compare_digest(digest.hex().encode(), value)
    sdk = hmac.compare_digest(sdk_hex(digest).encode(), value)
    return normal or sdk


def gson_json(entries: Sequence[tuple[str, str]], *, ascii_only: bool = False) -> str:
    """A compact JSON object of string pairs, escaped as Gson's defaults do (the SDK's ``sign-header``).

    Gson escapes ``< > & = '`` (``\\u003c`` …) and U+2028/U+2029 besides what JSON requires, and leaves other
    non-ASCII as is. ``ascii_only`` escapes all non-ASCII too, so that the header survives any proxy (our client).
    """
    if len(entries) != len({name for name, _ in entries}):
        raise ValueError("duplicate entry names")
    text = json.dumps(dict(entries), ensure_ascii=ascii_only, separators=(",", ":"))
    for char in "<>&='\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def sign(secret: str, sign_header: str | bytes) -> str:
    """``XroadVnpt-hash-header``: lowercase hex HMAC-SHA256(secret as UTF-8, sign-header bytes as sent)."""
    message = sign_header.encode("utf-8") if isinstance(sign_header, str) else sign_header
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


# ================================================================================================ client side


def signed_headers(
    secret: str,
    entries: Sequence[tuple[str, str]],
    *,
    content_type: str | None = None,
    user_agent: str = SDK_USER_AGENT,
    ascii_only: bool = False,
) -> dict[str, str]:
    """Every header of a signed request, in the SDK's layout, for ``entries`` in the given order.

    ``entries`` must contain ``systemid``, ``timestamp`` and ``Content-Type`` besides the operation's
    parameters (:func:`request_entries` builds them); ``content_type`` defaults to the ``Content-Type`` entry.
    Values may be non-ASCII; send them as UTF-8 bytes (http.client would encode str as Latin-1).
    """
    names = {name.lower() for name, _ in entries}
    missing = {SYSTEMID, TIMESTAMP, CONTENT_TYPE.lower()} - names
    if missing:
        raise ValueError(f"entries lack {', '.join(sorted(missing))}")
    sign_header = gson_json([(PREFIX + name, value) for name, value in entries], ascii_only=ascii_only)
    headers = {PREFIX + name: value for name, value in entries}
    headers["Content-Type"] = content_type or next(v for n, v in entries if n.lower() == CONTENT_TYPE.lower())
    headers[SIGN_HEADER_KEY] = ";".join(name for name, _ in entries)
    headers[SIGN_HEADER] = sign_header
    headers[HASH_HEADER] = sign(secret, sign_header)
    headers["User-Agent"] = user_agent
    headers[VERSION_HEADER] = PROTOCOL_VERSION
    return headers


def request_entries(
    operation: Operation, system_id: str, timestamp: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The signed entries of one call: ``systemid``, ``timestamp``, the call's own parameters, ``Content-Type``.

    Unlike the SDK, nothing from earlier calls: a server must not be handed stale parameters it may act on.
    """
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    return [(SYSTEMID, system_id), (TIMESTAMP, timestamp), *pairs, (CONTENT_TYPE, CONTENT_TYPES[operation])]


# ================================================================================================ server side

#: How the server reads a header: its raw bytes as received (WSGI gives Latin-1 str), or None when absent.
HeaderLookup = Callable[[str], bytes | None]


def wsgi_headers(environ: Mapping[str, object]) -> HeaderLookup:
    """A :data:`HeaderLookup` over a WSGI environ (``XroadVnpt-hash-file`` → ``HTTP_XROADVNPT_HASH_FILE``)."""

    def lookup(name: str) -> bytes | None:
        key = name.upper().replace("-", "_")
        value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key)
        if value is None:
            return None
        # PEP 3333: header values are Latin-1 decoded bytes; encoding back gives the bytes as sent.
        return str(value).encode("latin-1", "replace")

    return lookup


def mapping_headers(headers: Mapping[str, str | bytes]) -> HeaderLookup:
    """A :data:`HeaderLookup` over a plain mapping (tests, vectors); names compare case-insensitively."""
    folded = {k.lower(): (v if isinstance(v, bytes) else v.encode("utf-8")) for k, v in headers.items()}
    return lambda name: folded.get(name.lower())


def claimed_system_id(header: HeaderLookup) -> str | None:
    """The system id the request claims (``XroadVnpt-systemid``, or a bare ``systemid``); not yet verified."""
    raw = header(PREFIX + SYSTEMID) or header(SYSTEMID)
    if raw is None:
        return None
    value = raw.decode("utf-8", "replace").strip()
    return value or None


@dataclass(frozen=True)
class VerifiedRequest:
    """What the HMAC proved: the system, and the signed values of the parameters the operation uses."""

    operation: Operation
    system_id: str
    #: Lower-cased parameter name → signed value; only the operation's parameters (OPERATION_PARAMS).
    params: Mapping[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    #: Every signed entry name, as sent (stale SDK entries included) — for the log, never for decisions.
    signed_names: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        return self.params.get(name.lower())


_AMBIGUOUS: Final = object()


def verify_request(
    header: HeaderLookup,
    secret: str,
    operation: Operation,
    *,
    system_id: str,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> VerifiedRequest:
    """Check the XroadVnpt signature of a request for ``operation`` from ``system_id`` keyed by ``secret``.

    Order: the signature headers are present and bounded → the HMAC over the received ``sign-header`` bytes
    matches (constant time; a mismatch says only "authentication failed", like an unknown system) → the signed
    JSON is an object of strings without (case-insensitively) duplicate names, consistent with
    ``sign-header-key`` when that is sent → the signed ``systemid`` is the claimed one → every parameter of the
    operation either is signed (and its plain header, when present, equals the signed value) or is absent →
    the plain ``Content-Type`` has the signed media type → optionally, the timestamp is within ``max_age``.
    """
    raw = header(SIGN_HEADER)
    mac = header(HASH_HEADER)
    if not raw or not mac:
        raise AuthError(f"{SIGN_HEADER} and {HASH_HEADER} are required (VDXP HMAC authentication)")
    if len(raw) > MAX_SIGN_HEADER_BYTES:
        raise AuthError(f"{SIGN_HEADER} is longer than {MAX_SIGN_HEADER_BYTES} bytes")
    expected = sign(secret, raw).encode("ascii")
    if not hmac.compare_digest(expected, mac.strip().lower()):
        raise AuthError("authentication failed", reason="bad-hmac")

    signed = _signed_entries(raw)
    key_list = header(SIGN_HEADER_KEY)
    if key_list is not None:
        listed = {n.strip().lower() for n in key_list.decode("utf-8", "replace").split(";") if n.strip()}
        if listed != {name.lower() for name, _ in signed}:
            raise AuthError(f"{SIGN_HEADER_KEY} does not list the entries of {SIGN_HEADER}")
    by_name: dict[str, object] = {}
    for name, value in signed:
        key = name.lower()
        by_name[key] = _AMBIGUOUS if key in by_name and by_name[key] != value else value

    if by_name.get(SYSTEMID) != system_id:
        raise AuthError(f"the signed {PREFIX}{SYSTEMID} must be the system id the request claims")

    params: dict[str, str] = {}
    for name in sorted(OPERATION_PARAMS[operation]):
        value = _checked(header, by_name, name)
        if value is not None:
            params[name.lower()] = value
    _check_content_type(header, by_name)

    timestamp = None
    stamp = by_name.get(TIMESTAMP)
    if isinstance(stamp, str):
        timestamp = parse_timestamp(stamp)
    if max_age is not None:
        if timestamp is None:
            raise ReplayError(f"a signed {PREFIX}{TIMESTAMP} (ddMMyyyy'T'HHmmss+SSSS) is required")
        current = now or datetime.now(VN_TZ)
        if abs(current - timestamp) > max_age:
            raise ReplayError(
                "the signed timestamp is outside the accepted window", max_age_seconds=int(max_age.total_seconds())
            )
    return VerifiedRequest(
        operation=operation,
        system_id=system_id,
        params=params,
        timestamp=timestamp,
        signed_names=tuple(name for name, _ in signed),
    )


def _signed_entries(raw: bytes) -> list[tuple[str, str]]:
    """The (name without prefix, value) pairs of an authenticated ``sign-header``, in the order sent."""
    try:
        pairs = json.loads(raw.decode("utf-8"), object_pairs_hook=list)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError(f"{SIGN_HEADER} is not a JSON object in UTF-8") from None
    if not isinstance(pairs, list) or not all(isinstance(p, tuple) for p in pairs):
        raise RequestError(f"{SIGN_HEADER} must be a JSON object of strings")
    entries = []
    for name, value in pairs:
        if not isinstance(value, str) or not name[: len(PREFIX)].lower() == PREFIX.lower():
            raise RequestError(f"{SIGN_HEADER} must map {PREFIX}<name> to strings (got {name[:60]!r})")
        entries.append((name[len(PREFIX) :], value))
    return entries


def _checked(header: HeaderLookup, signed: Mapping[str, object], name: str) -> str | None:
    """The signed value of one operation parameter, after comparing it with its plain header."""
    value = signed.get(name.lower())
    if value is _AMBIGUOUS:
        raise RequestError(f"{PREFIX}{name} is signed twice with different values")
    plain = header(PREFIX + name)
    if value is None:
        if plain is not None:
            raise AuthError(f"{PREFIX}{name} is sent but not signed")
        return None
    assert isinstance(value, str)
    if plain is not None:
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(f"{PREFIX}{name} is not UTF-8") from None
        # Servers strip the header value's surrounding blanks (RFC 9110 §5.5); the signed value keeps them.
        if text != value.strip(" \t"):
            raise AuthError(f"{PREFIX}{name} differs from its signed value")
    return value


def _check_content_type(header: HeaderLookup, signed: Mapping[str, object]) -> None:
    value = signed.get(CONTENT_TYPE.lower())
    if value is _AMBIGUOUS:
        raise RequestError(f"{PREFIX}{CONTENT_TYPE} is signed twice with different values")
    if not isinstance(value, str):
        return
    for plain in (header(PREFIX + CONTENT_TYPE), header(CONTENT_TYPE)):
        if plain is not None and media_type(plain.decode("latin-1")) != media_type(value):
            raise AuthError(f"the request's {CONTENT_TYPE} differs from the signed {PREFIX}{CONTENT_TYPE}")


def media_type(value: str) -> str:
    """``application/json; charset=UTF-8`` → ``application/json``."""
    return value.partition(";")[0].strip().lower()


def package_from_body(body: bytes, hash_file: str | None) -> bytes:
    """The package a ``sendEdoc`` body carries, authenticated by the signed ``hash-file``.

    The SDK appends CRLF to the file; the package may itself end with CRLF. So the body is tried as received
    and without exactly one trailing CRLF, and the candidate whose SHA-256 matches ``hash-file`` is the package.
    Without ``hash-file`` nothing authenticates the body (the HMAC covers headers only): refused.
    """
    if not hash_file:
        raise AuthError(f"sendEdoc needs a signed {PREFIX}{HASH_FILE}: the HMAC does not cover the body")
    candidates = [body[: -len(CRLF)], body] if body.endswith(CRLF) else [body]
    for candidate in candidates:
        if file_hash_matches(candidate, hash_file):
            return candidate
    raise AuthError(f"{PREFIX}{HASH_FILE} does not match the request body", reason="bad-hash-file")


__all__ = [
    "CONTENT_TYPES",
    "CRLF",
    "HASH_HEADER",
    "LIST_DATE_FORMAT",
    "OPERATION_PARAMS",
    "PREFIX",
    "PROTOCOL_VERSION",
    "SDK_USER_AGENT",
    "SIGN_HEADER",
    "SIGN_HEADER_KEY",
    "VERSION_HEADER",
    "HeaderLookup",
    "Operation",
    "VerifiedRequest",
    "claimed_system_id",
    "file_hash",
    "file_hash_matches",
    "format_timestamp",
    "gson_json",
    "mapping_headers",
    "media_type",
    "package_from_body",
    "parse_timestamp",
    "request_entries",
    "sdk_hex",
    "sign",
    "signed_headers",
    "verify_request",
    "wsgi_headers",
]
