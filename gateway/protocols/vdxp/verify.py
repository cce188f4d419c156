"""XroadVnpt verification, the server side (edxml.md §11.2): what a VDXP request proves, and nothing more.

:func:`verify_request` checks the HMAC over the received ``sign-header`` string (constant time), so the JSON key
order (Java ``HashMap`` order in the SDK) never matters. What it returns, :class:`VerifiedRequest`, holds only
SIGNED values of the parameters the operation uses; an edge reads parameters from it and nowhere else
(signxml's lesson: use only what was verified). The plain ``XroadVnpt-<name>`` headers are checked against the
signed values and refused when they differ or when an operation parameter arrives unsigned.

Quirks of the VNPT SDK (SDKVXP 2.0.x) tolerated here, each observed on the wire:

* its header map is never cleared, so earlier parameters (``docId``, ``status``, ``from``, ``hash-file``,
  ``filePath``) are re-sent and signed in later calls: signed entries an operation does not use are ignored,
  and in a request that carries such entries the lists' optional filters are ignored too — a stale getEdoc
  ``docId`` must not empty a later getSentEdocList (:data:`~gateway.protocols.vdxp.names.LIST_FILTERS` says
  which headers count, per operation, and why);
* ``hash-file`` is written byte by byte with Java ``Integer.toHexString`` — each byte's leading zero dropped
  (``…af06ce…`` becomes ``…af6ce…``): both that form and normal hex are accepted
  (:func:`~gateway.protocols.vdxp.signing.file_hash_matches`);
* the body of ``sendEdoc`` is the file followed by an extra CRLF: :func:`package_from_body` tries the body as
  received and without one trailing CRLF, and keeps the candidate whose hash matches ``hash-file`` — never a
  guess from whether the XML parses;
* ``timestamp`` (``ddMMyyyy'T'HHmmss+SSSS``, ``+SSSS`` = milliseconds, not a zone) is fixed when the SDK client
  object is created, so freshness cannot be a property of the protocol: it is a property of each SYSTEM
  (issue 10 finding 7). The edge asks :mod:`gateway.services.vdxp_guard`, which applies :func:`check_fresh` to
  ``strict`` systems and binds ``legacy-sdk`` ones to a source instead; :attr:`VerifiedRequest.signature` is
  what its replay cache remembers. :func:`verify_request` still takes an optional ``max_age`` for callers
  that check a window themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from gateway.edxml.dates import VN_TZ
from gateway.errors import AuthError, RequestError, StaleError
from gateway.payload import Payload, PayloadWriter
from gateway.protocols.vdxp.names import (
    BASE_ENTRIES,
    CONTENT_TYPE,
    CRLF,
    HASH_FILE,
    HASH_HEADER,
    LIST_FILTERS,
    MAX_SIGN_HEADER_BYTES,
    OPERATION_PARAMS,
    PREFIX,
    SIGN_HEADER,
    SIGN_HEADER_KEY,
    SYSTEMID,
    TIMESTAMP,
    Operation,
)
from gateway.protocols.vdxp.signing import digest_matches, parse_timestamp, sign

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
    #: Lower-cased parameter name → signed value; only the operation's parameters (OPERATION_PARAMS), less the
    #: list filters of a stale request (:attr:`ignored`).
    params: Mapping[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    #: Every signed entry name, as sent (stale SDK entries included) — for the log, never for decisions.
    signed_names: tuple[str, ...] = ()
    #: Signed entries of other operations (the SDK's stale header map); empty for a clean request.
    stale: tuple[str, ...] = ()
    #: Filters that were signed but do not count, because the request is stale (names as sent).
    ignored: tuple[str, ...] = ()
    #: The HMAC that matched (``XroadVnpt-hash-header``, lowercase hex): it covers the timestamp and every
    #: signed entry, so it names this exact request — the key of the strict systems' replay cache.
    signature: str = ""

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
    signed, signature = _authenticated_entries(header, secret)
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
    stale = _stale_entries(operation, [name for name, _ in signed])
    ignored = tuple(n for n in sorted(LIST_FILTERS.get(operation, ())) if stale and n.lower() in params)
    for name in ignored:
        del params[name.lower()]
    stamp = by_name.get(TIMESTAMP)
    return VerifiedRequest(
        operation=operation,
        system_id=system_id,
        params=params,
        timestamp=_fresh_timestamp(stamp if isinstance(stamp, str) else None, max_age, now),
        signed_names=tuple(name for name, _ in signed),
        stale=stale,
        ignored=ignored,
        signature=signature,
    )


def _stale_entries(operation: Operation, names: list[str]) -> tuple[str, ...]:
    """The signed names that are neither a base entry nor a parameter of ``operation``, as sent."""
    own = {n.lower() for n in (*BASE_ENTRIES, *OPERATION_PARAMS[operation])}
    return tuple(name for name in names if name.lower() not in own)


def _authenticated_entries(header: HeaderLookup, secret: str) -> tuple[list[tuple[str, str]], str]:
    """The signed entries, once the HMAC over the ``sign-header`` bytes as received has matched, and the HMAC."""
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
    return signed, expected.decode("ascii")


def _fresh_timestamp(stamp: str | None, max_age: timedelta | None, now: datetime | None) -> datetime | None:
    """The signed timestamp; within ``max_age`` of ``now`` when a window is enforced."""
    timestamp = parse_timestamp(stamp) if stamp is not None else None
    if max_age is not None:
        check_fresh(timestamp, max_age, now or datetime.now(VN_TZ))
    return timestamp


def check_fresh(timestamp: datetime | None, window: timedelta, now: datetime) -> None:
    """Refuse (:class:`~gateway.errors.StaleError`, ``AUTH.STALE``) a signed timestamp that is missing or more
    than ``window`` away from ``now``, either way (a client clock may run ahead as well as behind).

    The message gives the signed time and the gap, so that the operator of a client running the stock SDK
    (which signs one timestamp per client object) sees at once why, and what the system needs instead.
    """
    seconds = int(window.total_seconds())
    if timestamp is None:
        raise StaleError(f"a signed {PREFIX}{TIMESTAMP} (ddMMyyyy'T'HHmmss+SSSS) is required", window_seconds=seconds)
    skew = int((now - timestamp).total_seconds())
    if abs(skew) > seconds:
        when = "ahead of" if skew < 0 else "behind"
        raise StaleError(
            f"the signed timestamp {timestamp:%d/%m/%Y %H:%M:%S} is {abs(skew)} s {when} the gateway's clock, "
            f"outside the accepted window of {seconds} s (a client that signs one timestamp for its lifetime, "
            "like the stock VNPT SDK, needs its system in legacy-sdk mode with a source binding)",
            skew_seconds=skew,
            window_seconds=seconds,
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


@dataclass
class SendEdocBody:
    """A ``sendEdoc`` body read into a spooled :class:`~gateway.payload.Payload` (issue 14: a 20 MB package is never
    held whole as bytes), with the SHA-256 of the body without its trailing CRLF, counted on the way: the two
    candidates :func:`package_from_body` chooses between, without reading the spool again."""

    payload: Payload
    #: Hex SHA-256 of the body less its last two bytes when those are CRLF, else None.
    without_crlf: str | None

    @classmethod
    def read(cls, chunks: Iterable[bytes], writer: PayloadWriter) -> SendEdocBody:
        """Spool ``chunks`` (the raw body) into ``writer``; a lagging hash trails it by two bytes."""
        lagging = hashlib.sha256()
        tail = b""
        try:
            for chunk in chunks:
                writer.write(chunk)
                joined = memoryview(tail + chunk)
                lagging.update(joined[: -len(CRLF)])
                tail = bytes(joined[-len(CRLF) :])
        except BaseException:
            writer.discard()
            raise
        return cls(writer.finish(), lagging.hexdigest() if tail == CRLF else None)

    def close(self) -> None:
        self.payload.close()

    def __enter__(self) -> SendEdocBody:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def package_from_payload(body: SendEdocBody, hash_file: str | None) -> Payload:
    """:func:`package_from_body` on a spooled body: the same candidates, the same refusals, compared by digest."""
    if not hash_file:
        raise AuthError(f"sendEdoc needs a signed {PREFIX}{HASH_FILE}: the HMAC does not cover the body")
    full = body.payload
    if body.without_crlf is not None and digest_matches(bytes.fromhex(body.without_crlf), hash_file):
        return full.prefix(full.size - len(CRLF), body.without_crlf)
    if digest_matches(bytes.fromhex(full.sha256), hash_file):
        return full
    raise AuthError(f"{PREFIX}{HASH_FILE} does not match the request body", reason="bad-hash-file")


def package_from_body(body: bytes, hash_file: str | None) -> bytes:
    """The package a ``sendEdoc`` body carries, authenticated by the signed ``hash-file``.

    The SDK appends CRLF to the file; the package may itself end with CRLF. So the body is tried without exactly
    one trailing CRLF and as received, and the candidate whose SHA-256 matches ``hash-file`` is the package.
    Without ``hash-file`` nothing authenticates the body (the HMAC covers headers only): refused. The edge runs
    the same rule on a spooled body (:func:`package_from_payload`); this is it for bytes in hand.
    """
    sent = SendEdocBody.read([body], PayloadWriter(None, memory_limit=len(body)))
    return package_from_payload(sent, hash_file).read()
