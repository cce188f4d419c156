"""XroadVnpt signing (edxml.md §11.2), the part both sides compute the same way: the signed timestamp, the
``hash-file`` of a package, the ``sign-header`` JSON, its HMAC, and (client side) a whole signed request.

A VDXP request is ``POST {endpoint}/{operation}``. Its parameters travel as HTTP headers, and those headers are
signed (confirmed on the wire in edxml.md §11.4 and ``shared/vectors/vnpt-sdk/requests.json``):

* every entry ``(name, value)`` of the request — ``systemid``, ``timestamp``, ``Content-Type`` and each
  parameter of the operation — is sent as the header ``XroadVnpt-<name>: <value>``;
* ``XroadVnpt-sign-header`` is the compact JSON object ``{"XroadVnpt-<name>":"<value>",…}`` over the same
  entries, ``XroadVnpt-sign-header-key`` the bare names joined by ``;``;
* ``XroadVnpt-hash-header`` = lowercase hex HMAC-SHA256(key = the system's secret as UTF-8, message = the
  ``XroadVnpt-sign-header`` value exactly as sent);
* ``sendEdoc`` carries the package as the raw body and binds it with ``XroadVnpt-hash-file`` = SHA-256 of the
  package. The HMAC covers headers only, so ``hash-file`` is the ONLY thing that authenticates the body.

Our client (:func:`signed_headers`) signs only the current call's parameters with a fresh timestamp, and writes
``hash-file`` in the SDK's form — the only form the national axis is known to accept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from gateway.edxml.dates import VN_TZ
from gateway.protocols.vdxp.names import (
    CONTENT_TYPE,
    CONTENT_TYPES,
    HASH_HEADER,
    PREFIX,
    PROTOCOL_VERSION,
    SDK_USER_AGENT,
    SIGN_HEADER,
    SIGN_HEADER_KEY,
    SYSTEMID,
    TIMESTAMP,
    VERSION_HEADER,
    Operation,
)


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
    return digest_matches(hashlib.sha256(data).digest(), claimed)


def digest_matches(digest: bytes, claimed: str) -> bool:
    """:func:`file_hash_matches` on a SHA-256 already computed (a package hashed while it was spooled)."""
    value = claimed.strip().lower().encode("ascii", "replace")
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
