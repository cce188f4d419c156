"""The registry's import/export row format (``edoc-gateway agencies import|export``): columns, typed parsing of
one row with every problem collected, and the export rendering.

Kept apart from :mod:`gateway.services.registry` (the use cases) because it is pure: no store, no clock, so the
format can be read and tested on its own. An empty cell means "not given"; each problem is
``{row, field, message}`` with the first data row numbered 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

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
)
SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
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
    return values if len(problems) == before else None


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
        values["endpoint"] = endpoint
    if "signature_policy" in cells:
        policy = _text(cells["signature_policy"]).lower()
        if policy not in SIGNATURE_POLICIES:
            bad("signature_policy", f"signature_policy must be one of {', '.join(SIGNATURE_POLICIES)}")
        values["signature_policy"] = policy


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
    }
    if as_json:
        return row
    return {k: ("" if v is None else ("true" if v is True else "false" if v is False else v)) for k, v in row.items()}


__all__ = ["COLUMNS", "SYSTEM_ID", "export_row", "parse_bool", "parse_fingerprint", "parse_row"]
