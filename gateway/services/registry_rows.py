"""The registry's import/export row format (``edoc-gateway agencies import|export``): columns, typed parsing of
one row with every problem collected, and the export rendering.

Kept apart from :mod:`gateway.services.registry` (the use cases) because it is pure: no store, no clock, so the
format can be read and tested on its own. An empty cell means "not given"; each problem is
``{row, field, message}`` with the first data row numbered 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from gateway.db import AgencyRecord
from gateway.db.tables import CHANNELS, SIGNATURE_POLICIES
from gateway.edxml.organ import OrganId

#: Import/export columns, in export order.
COLUMNS: tuple[str, ...] = (
    "organ_id",
    "name",
    "parent",
    "channel",
    "endpoint",
    "signature_policy",
    "allow_sha1",
    "emit_arrived_on_ack",
    "active",
    "system",
    "cert_fingerprints",
    "contact_email",
)
#: What each column holds, for ``agencies import --help`` (kept beside the parser so the two cannot drift).
COLUMN_HELP: dict[str, str] = {
    "organ_id": "the agency's OrganId (required), e.g. 000.00.01.H53",
    "name": "its name (required)",
    "parent": "OrganId of the unit one level up, registered or in the same file (default: derived from organ_id)",
    "channel": f"how documents reach it: {' | '.join(CHANNELS)} (default mailbox)",
    "endpoint": "http(s) URL for the soap and rest channels (optional for vdxp: the [vdxp] endpoint)",
    "signature_policy": f"{' | '.join(SIGNATURE_POLICIES)} (default verify-if-present)",
    "allow_sha1": "accept SHA-1 signatures from it: true/false (default false)",
    "emit_arrived_on_ack": "the gateway emits status 01 when its mailbox acknowledges: true/false (default false)",
    "active": "true/false (default true)",
    "system": "VDXP system id it is registered under",
    "cert_fingerprints": "SHA-256 fingerprints of its signing certificates, separated by ';'",
    "contact_email": "where alert digests about its deliveries and certificates go; addresses separated by ','",
}
SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")
#: ``agencies.contact_email`` is String(320).
MAX_CONTACT = 320
_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})
_FLAGS = ("allow_sha1", "emit_arrived_on_ack", "active")

#: Records a problem of the current row: ``bad(field, message)``.
Bad = Callable[[str, str], None]


def parse_row(row: Mapping[str, Any], number: int, problems: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Typed values of the non-empty cells of one row, or None (problems recorded) when it is invalid."""

    def bad(field: str, message: str) -> None:
        problems.append({"row": number, "field": field, "message": message})

    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        bad(unknown[0], f"unknown column(s): {', '.join(unknown)}")
        return None
    cells = {k: v for k, v in row.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    values: dict[str, Any] = {}
    before = len(problems)
    _identity(cells, values, bad)
    _channel(cells, values, bad)
    for field in _FLAGS:
        if field in cells:
            flag = parse_bool(cells[field])
            if flag is None:
                bad(field, f"{cells[field]!r} is not a boolean (true/false, 1/0, yes/no)")
            values[field] = flag
    if "system" in cells:
        system = _text(cells["system"])
        if not SYSTEM_ID.match(system):
            bad("system", f"{system!r} is not a valid system id")
        values["system_id"] = system
    if "cert_fingerprints" in cells:
        values["cert_fingerprints"] = _fingerprints(cells["cert_fingerprints"], bad)
    if "contact_email" in cells:
        contact, problem = parse_contact_email(_text(cells["contact_email"]))
        if problem:
            bad("contact_email", problem)
        values["contact_email"] = contact
    return values if len(problems) == before else None


def parse_rows(rows: Sequence[Mapping[str, Any]], problems: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Typed values of every valid row, numbered from 1; an OrganId given twice is a problem of the later row."""
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        values = parse_row(row, number, problems)
        if values is None:
            continue
        organ = values["organ_id"]
        if organ in seen:
            problems.append({"row": number, "field": "organ_id", "message": f"{organ} is also on row {seen[organ]}"})
            continue
        seen[organ] = number
        parsed.append((number, values))
    return parsed


def parent_problem(organ: str, parent: str, known: Collection[str]) -> str | None:
    """Why ``parent`` cannot be the parent of ``organ`` (None when it can): unregistered, or not exactly one
    OrganId level above (edxml.md §6.1)."""
    if parent not in known:
        return f"parent {parent} is not registered (neither in the database nor in this file)"
    child_level, parent_level = OrganId(organ).level, OrganId(parent).level
    if child_level is not None and parent_level is not None and parent_level != child_level - 1:
        return (
            f"{organ} (level {child_level}) cannot be directly under {parent} (level {parent_level}): "
            "a unit is exactly one level below its parent (edxml.md §6.1)"
        )
    return None


def _identity(cells: Mapping[str, Any], values: dict[str, Any], bad: Bad) -> None:
    """organ_id, name and parent."""
    organ = _text(cells.get("organ_id"))
    if not organ:
        bad("organ_id", "organ_id is required")
    elif not OrganId.is_valid(organ):
        bad("organ_id", f"{organ!r} is not an agency identifier (OrganId)")
    else:
        values["organ_id"] = organ
    name = _text(cells.get("name"))
    if not name:
        bad("name", "name is required")
    elif len(name) > 500:
        bad("name", "name is longer than 500 characters")
    else:
        values["name"] = name
    if "parent" in cells:
        parent = _text(cells["parent"])
        if not OrganId.is_valid(parent):
            bad("parent", f"{parent!r} is not an agency identifier (OrganId)")
        elif parent == organ:
            bad("parent", "an agency cannot be its own parent")
        else:
            values["parent"] = parent


def _channel(cells: Mapping[str, Any], values: dict[str, Any], bad: Bad) -> None:
    """channel, endpoint and signature_policy."""
    if "channel" in cells:
        channel = _text(cells["channel"]).lower()
        if channel not in CHANNELS:
            bad("channel", f"channel must be one of {', '.join(CHANNELS)}")
        values["channel"] = channel
    if "endpoint" in cells:
        endpoint = _text(cells["endpoint"])
        if len(endpoint) > 1000:
            bad("endpoint", "endpoint is longer than 1000 characters")
        elif not endpoint_ok(endpoint):
            bad("endpoint", f"{endpoint!r} is not an http:// or https:// URL with a host")
        values["endpoint"] = endpoint
    if "signature_policy" in cells:
        policy = _text(cells["signature_policy"]).lower()
        if policy not in SIGNATURE_POLICIES:
            bad("signature_policy", f"signature_policy must be one of {', '.join(SIGNATURE_POLICIES)}")
        values["signature_policy"] = policy


def endpoint_ok(endpoint: str) -> bool:
    """Whether ``endpoint`` can be a push channel's address: every push adapter (SOAP, REST, VDXP) speaks HTTP, so
    anything but an absolute ``http(s)://host…`` URL would only fail later, at the first delivery attempt."""
    try:
        url = urlsplit(endpoint)
        return url.scheme.lower() in ("http", "https") and bool(url.hostname) and not any(c.isspace() for c in endpoint)
    except ValueError:  # a malformed port or IPv6 literal
        return False


def _fingerprints(raw: Any, bad: Bad) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(";")
    fps = []
    for item in items:
        if not str(item).strip():
            continue
        fp = parse_fingerprint(str(item))
        if fp is None:
            bad("cert_fingerprints", f"{item!r} is not a SHA-256 fingerprint (64 hex digits)")
        else:
            fps.append(fp)
    return tuple(dict.fromkeys(fps))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_bool(value: Any) -> bool | None:
    """true/false, 1/0, yes/no, on/off (any case), or None."""
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def parse_contact_email(value: str) -> tuple[str | None, str | None]:
    """Addresses separated by ``,`` or ``;`` → (``"a@x.vn, b@x.vn"``, None), or (None, why not); empty clears."""
    found = [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    bad = [a for a in found if not _EMAIL.match(a)]
    if bad:
        return None, f"not an e-mail address: {', '.join(repr(a) for a in bad)}"
    joined = ", ".join(dict.fromkeys(found))
    if len(joined) > MAX_CONTACT:
        return None, f"contact_email is longer than {MAX_CONTACT} characters"
    return joined or None, None


def parse_fingerprint(value: str) -> str | None:
    """Lowercase hex without separators, or None if it is not a SHA-256 fingerprint."""
    fp = value.strip().lower()
    if fp.startswith("sha256:"):
        fp = fp[7:]
    fp = fp.replace(":", "")
    return fp if _FINGERPRINT.match(fp) else None


def export_row(a: AgencyRecord, *, as_json: bool) -> dict[str, Any]:
    """One agency in the import format (CSV cells as strings; JSON with typed values)."""
    row: dict[str, Any] = {
        "organ_id": a.organ_id,
        "name": a.name,
        "parent": a.parent,
        "channel": a.channel,
        "endpoint": a.endpoint,
        "signature_policy": a.signature_policy,
        "allow_sha1": a.allow_sha1,
        "emit_arrived_on_ack": a.emit_arrived_on_ack,
        "active": a.active,
        "system": a.system_id,
        "cert_fingerprints": list(a.cert_fingerprints) if as_json else ";".join(a.cert_fingerprints),
        "contact_email": a.contact_email,
    }
    if as_json:
        return row
    return {k: ("" if v is None else ("true" if v is True else "false" if v is False else v)) for k, v in row.items()}


__all__ = [
    "COLUMNS",
    "COLUMN_HELP",
    "SYSTEM_ID",
    "endpoint_ok",
    "export_row",
    "parent_problem",
    "parse_bool",
    "parse_contact_email",
    "parse_fingerprint",
    "parse_row",
    "parse_rows",
]
