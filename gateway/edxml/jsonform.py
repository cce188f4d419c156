"""The canonical JSON form of edXML packages, for REST peers and adapters.

The JSON mirrors the model one to one (keys are the edXML element names in lowerCamelCase), so the
round trip XML → model → JSON → model → XML is lossless for everything the model carries. It is
derived from the model's type hints rather than written by hand, and so is its JSON Schema
(:func:`json_schema`, committed as ``xsd/edxml-package.schema.json``): the two cannot drift apart.

Values: dates ``YYYY-MM-DD``; timestamps ISO-8601 with the Vietnam offset (``…T10:00:00+07:00``) —
on input any ISO zone is converted and a zone-less time is taken as Vietnam time; integer code lists
(Priority, SteeringType, BussinessDocType, ReceiverType) as integers; StatusCode as its two-digit
string; attachment payloads as standard base64. Keys whose value is absent are omitted; lists are
always present. ``warnings`` is output only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import re
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any

from gateway.edxml import dates
from gateway.edxml.codes import PackageKind, StatusCode, _IntCode
from gateway.edxml.model import EdocPackage, Package, StatusPackage
from gateway.errors import EdxmlParseError, EdxmlStructureError, EdxmlValueError

SCHEMA_ID = "urn:edoc-gateway:schema:edxml-package:1"
#: Deepest nesting of arrays and objects a JSON body may have (the canonical form needs 6).
MAX_JSON_DEPTH: typing.Final = 64
#: Characters XML 1.0 cannot carry (C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF): a JSON string
#: with one could never become an edXML package (lxml refuses it, or UTF-8 encoding fails later).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_KINDS: dict[str, type[EdocPackage] | type[StatusPackage]] = {
    PackageKind.EDOC: EdocPackage,
    PackageKind.STATUS: StatusPackage,
}


def _key(field_name: str) -> str:
    """``from_`` → ``from``, ``organ_id`` → ``organId``."""
    head, *rest = field_name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@functools.cache
def _fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f, _key(f.name), hints[f.name]) for f in dataclasses.fields(cls) if f.name != "warnings")


def _optional(tp: Any) -> tuple[Any, bool]:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


# ---------------------------------------------------------------------------------------- to JSON


def to_json(pkg: Package) -> dict[str, Any]:
    """The canonical JSON object of a package (``json.dumps``-ready)."""
    out: dict[str, Any] = {"kind": pkg.kind.value}
    out.update(_dump(pkg))
    if pkg.warnings:
        out["warnings"] = list(pkg.warnings)
    return out


def _dump(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        result: dict[str, Any] = {}
        for f, key, _tp in _fields(type(obj)):
            value = getattr(obj, f.name)
            if value is None:
                continue
            result[key] = _dump(value)
        return result
    if isinstance(obj, tuple):
        return [_dump(v) for v in obj]
    if isinstance(obj, _IntCode):
        return obj.value
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.replace(tzinfo=dates.VN_TZ).isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    return obj


# -------------------------------------------------------------------------------------- from JSON


def parse_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON text (UTF-8, RFC 8259: no NaN/Infinity) as Python values, nested at most ``max_depth`` deep.

    The one JSON parse of the edges that take JSON bodies. Every way ``json.loads`` can fail on hostile input
    is ``EDXML.PARSE`` here: not UTF-8, not JSON, a number too long to convert (ValueError), nesting deep
    enough to exhaust the parser's recursion (RecursionError, issue 10: 100,000 ``[``) — and nesting deeper
    than ``max_depth`` is refused too, so that no consumer recurses on attacker-chosen depth. So is a string
    (key or value) with a character XML 1.0 cannot carry: ``\\u0001`` or a lone surrogate ``\\ud800`` is valid
    JSON, but every JSON body ends up in an edXML package or a database text column, where it would fail later
    (lxml's ValueError, a UnicodeEncodeError when stored).
    """
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise EdxmlParseError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise EdxmlParseError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer over the int-conversion digit limit
        raise EdxmlParseError(f"not valid JSON: {str(exc)[:200]}") from None
    _check_tree(value, max_depth)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and characters of every string, iteratively (a recursive walk would itself be the hazard)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise EdxmlParseError(f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def _check_text(text: str) -> None:
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise EdxmlParseError(f"a JSON string carries U+{ord(bad.group()):04X}, which XML cannot carry")


def from_json(doc: Any) -> Package:
    """A package from its canonical JSON; raises ``EDXML.STRUCTURE``/``EDXML.VALUE`` with a JSON path."""
    if not isinstance(doc, dict):
        raise EdxmlStructureError("a package must be a JSON object", path="$")
    kind = doc.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EdxmlStructureError(f"kind must be 'edoc' or 'status', not {kind!r}", path="$.kind")
    body = {k: v for k, v in doc.items() if k not in ("kind", "warnings")}
    return _load(cls, body, "$")


def _load(tp: Any, value: Any, path: str) -> Any:
    tp, optional = _optional(tp)
    if value is None:
        if optional:
            return None
        raise EdxmlStructureError("value is required", path=path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise EdxmlStructureError("expected an object", path=path)
        fields = _fields(tp)
        known = {key for _f, key, _t in fields}
        unknown = sorted(set(value) - known)
        if unknown:
            key = unknown[0][:100]  # the client's key, echoed in the error: bounded
            raise EdxmlStructureError(f"unknown key {key!r}", path=f"{path}.{key}")
        kwargs = {}
        for f, key, ftp in fields:
            if key in value:
                kwargs[f.name] = _load(ftp, value[key], f"{path}.{key}")
            elif _optional(ftp)[1]:
                kwargs[f.name] = None  # an omitted optional key means "no value", not the field default
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise EdxmlStructureError(f"required key {key!r} is missing", path=f"{path}.{key}")
        return tp(**kwargs)
    if typing.get_origin(tp) is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise EdxmlStructureError("expected an array", path=path)
        return tuple(_load(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    return _scalar(tp, value, path)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if isinstance(tp, type) and issubclass(tp, _IntCode):
        if not isinstance(value, int) or isinstance(value, bool):
            raise EdxmlValueError(f"{tp.__name__} must be an integer", path=path)
        return tp.parse(str(value), path)
    if tp is StatusCode:
        if not isinstance(value, str):
            raise EdxmlValueError("StatusCode must be a string such as '01'", path=path)
        return StatusCode.parse(value, path)[0]
    if tp is datetime:
        _expect(value, str, path)
        return dates.parse_timestamp(value, path)
    if tp is date:
        _expect(value, str, path)
        return dates.parse_date(value, path)
    if tp is bytes:
        _expect(value, str, path)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise EdxmlValueError("not valid base64", path=path) from None
    if tp is bool:
        _expect(value, bool, path)
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise EdxmlValueError("expected a non-negative integer", path=path)
        return value
    if tp is str:
        _expect(value, str, path)
        bad = _NOT_XML.search(value)
        if bad is not None:
            raise EdxmlValueError(f"U+{ord(bad.group()):04X} cannot appear in an edXML package", path=path)
        return value
    raise TypeError(f"no JSON mapping for {tp!r}")  # a model type the mapping does not know: a bug


def _expect(value: Any, tp: type, path: str) -> None:
    if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
        raise EdxmlValueError(f"expected a {tp.__name__}", path=path)


# ------------------------------------------------------------------------------------ JSON Schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the canonical JSON, generated from the model."""
    defs: dict[str, Any] = {}
    for kind, cls in _KINDS.items():
        _schema_for(cls, defs)
        target = defs[cls.__name__]
        target["properties"]["kind"] = {"const": kind.value}
        target["required"].insert(0, "kind")
        target["properties"]["warnings"] = {"type": "array", "items": {"type": "string"}, "readOnly": True}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "edXML package (QCVN 102:2016/BTTTT), canonical JSON form of edoc-gateway",
        "oneOf": [{"$ref": f"#/$defs/{c.__name__}"} for c in _KINDS.values()],
        "$defs": defs,
    }


def _schema_for(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    tp, _optional_key = _optional(tp)  # optional keys are simply not "required"
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            props: dict[str, Any] = {}
            required = []
            for f, key, ftp in _fields(tp):
                props[key] = _schema_for(ftp, defs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(key)
            doc = (tp.__doc__ or "").strip().splitlines()[0] if tp.__doc__ else name
            defs[name] = {
                "type": "object",
                "description": doc,
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
        return {"$ref": f"#/$defs/{name}"}
    if typing.get_origin(tp) is tuple:
        return {"type": "array", "items": _schema_for(typing.get_args(tp)[0], defs)}
    if isinstance(tp, type) and issubclass(tp, _IntCode):
        return {"type": "integer", "enum": [m.value for m in tp], "description": _enum_doc(tp)}
    if tp is StatusCode:
        return {"type": "string", "enum": [m.value for m in StatusCode], "description": _enum_doc(tp)}
    simple = {
        str: {"type": "string"},
        bool: {"type": "boolean"},
        int: {"type": "integer", "minimum": 0},
        date: {"type": "string", "format": "date"},
        datetime: {"type": "string", "format": "date-time"},
        bytes: {"type": "string", "contentEncoding": "base64"},
    }
    return dict(simple[tp])


def _enum_doc(tp: type[Enum]) -> str:
    return "; ".join(f"{m.value} = {m.label_vi}" for m in tp)  # type: ignore[attr-defined]
