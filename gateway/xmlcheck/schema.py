"""XSD validation of edXML packages against the gateway's own schemas in ``xsd/`` (edxml.md §3–§5).

Why this module looks the way it does:

* lxml/libxml2 does the validation, not ``xmlschema``: it is 25–85× faster and this is the hot path of
  every incoming package.
* Schemas are compiled lazily, at first use, so importing the gateway stays free of I/O and a broken
  XSD fails the first validation with ``CONFIG.INVALID`` rather than the import.
* A compiled ``etree.XMLSchema`` keeps its error log on the instance, so one instance shared by two threads
  would mix their errors; each thread therefore compiles its own copy (a few milliseconds, once per thread).
* The XSD files are read through the one safe parser like any other XML.
* Packages in the pre-QCVN namespace ``http://www.e-doc.vn/Schema/`` (edxml.md §1) are validated as a copy
  moved into the QCVN namespace; the caller's tree is never modified.
* Errors are reported with paths in local names (``/edXML/edXMLEnvelope/.../To[2]/OrganId``) because
  prefixes in edXML are arbitrary (edxml.md §2) and libxml2 writes ``*`` for default-namespace elements.
"""

from __future__ import annotations

import copy
import re
import threading
from enum import Enum
from pathlib import Path
from typing import Any, Final

from lxml import etree

from gateway import ns
from gateway.errors import ConfigError, EdxmlSchemaError, GatewayError
from gateway.resources import resource_path
from gateway.xmlcheck.paths import element_path
from gateway.xmlcheck.safe import parse_file

#: The repository's ``xsd/``, shipped inside the package (:mod:`gateway.resources`: a checkout and a wheel alike).
DEFAULT_XSD_DIR: Final = resource_path("xsd")

#: Package kind -> schema file name in the XSD directory.
XSD_FILES: Final = {"edoc": "edxml-edoc.xsd", "status": "edxml-status.xsd"}

#: At most this many errors are listed in ``EdxmlSchemaError.detail["errors"]``; one broken producer can
#: emit thousands of identical errors and the list ends up in logs and JSON responses.
MAX_REPORTED_ERRORS: Final = 20

_MAX_MESSAGE_CHARS = 600
_MAX_VALUE_CHARS = 80

_LEGACY_PREFIX = f"{{{ns.EDXML_LEGACY}}}"
_LEGACY_LEN = len(_LEGACY_PREFIX)

_local = threading.local()
#: Compiling is serialised: libxml2's schema parser is not safe to run in two threads at once (seen under the
#: threaded serving model: a worker's threads compiling the edoc XSD together got "not a valid XML Schema").
#: Validation with each thread's own compiled copy runs in parallel.
_compiling = threading.Lock()

# One step of libxml2's xmlGetNodePath(): "p:name[3]", "name", "*[2]", "*" or "@attr".
_STEP = re.compile(r"(?:(?P<prefix>[^:\[\]/@]+):)?(?P<name>[^:\[\]/@]+|\*)(?:\[(?P<index>[0-9]+)\])?")
_PREFIXED = re.compile(r"[A-Za-z_][\w.\-]*:(?=[A-Za-z_*])")
# The xs:key constraints of the XSDs are named "<Parent>_requires_<Child>[.<Grandchild>]".
_KEY_MISSING = re.compile(
    r"Not all fields of key identity-constraint '(?:\{[^}]*\})?(?P<parent>\w+)_requires_(?P<child>[\w.]+)'"
    r" evaluate to a node\.?"
)
_KEY_DUPLICATE = re.compile(
    r"The XPath '[^']*' of a field of key identity-constraint "
    r"'(?:\{[^}]*\})?(?P<parent>\w+)_requires_(?P<child>[\w.]+)' evaluates to a node-set with more than one"
    r" member\.?"
)
# Where libxml2 quotes an element's value: "The value '…' is not accepted", "'…' is not a valid value".
_LONG_VALUE = re.compile(rf"(?P<head>The value |: )'(?P<value>[^']{{{_MAX_VALUE_CHARS + 1},}})'(?P<tail> is not)")
# libxml2 follow-up noise after an invalid value in a key field; the value error itself is reported.
_NOISE = "No precomputed value available"


def _kind_name(kind: str) -> str:
    """``"edoc"``/``"status"`` from a str, a StrEnum or any Enum with those values."""
    value = kind.value if isinstance(kind, Enum) else kind
    if value not in XSD_FILES:
        raise ValueError(f"unknown edXML package kind {kind!r}; expected one of {sorted(XSD_FILES)}")
    return str(value)


def xsd_path(kind: str, xsd_dir: str | Path | None = None) -> Path:
    """Where the XSD for ``kind`` lives: ``xsd_dir`` if given, else the repository's ``xsd/`` (in the package)."""
    base = Path(xsd_dir) if xsd_dir is not None else DEFAULT_XSD_DIR
    return base / XSD_FILES[_kind_name(kind)]


def schema_for(kind: str, xsd_dir: str | Path | None = None) -> etree.XMLSchema:
    """The compiled schema for ``kind``, compiled at first use and then cached for the calling thread.

    The returned object must not be handed to another thread (its error log is per instance).
    Raises ``CONFIG.INVALID`` if the XSD file is missing or is not a usable schema.
    """
    cache: dict[tuple[str, Path | None], etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    key = (_kind_name(kind), Path(xsd_dir) if xsd_dir is not None else None)
    schema = cache.get(key)
    if schema is None:
        schema = cache[key] = _compile(xsd_path(kind, xsd_dir))
    return schema


def prepare(xsd_dir: str | Path | None = None) -> None:
    """Compile both schemas in the calling thread, before any other thread touches XML Schema.

    libxml2 initialises its built-in schema types on the first compilation, and that initialisation is not
    thread-safe: a web worker's application threads compiling their first schemas together sometimes got "not a
    valid XML Schema" (seen once under the threaded serving model). The serving process calls this at start-up."""
    for kind in ("edoc", "status"):
        schema_for(kind, xsd_dir)


def _compile(path: Path) -> etree.XMLSchema:
    try:
        doc = parse_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot read XSD {path}: {exc.strerror or exc}", xsd=str(path)) from exc
    except GatewayError as exc:
        raise ConfigError(f"XSD {path} is not acceptable XML: {exc.message}", xsd=str(path)) from exc
    try:
        with _compiling:
            return etree.XMLSchema(doc)
    except etree.XMLSchemaParseError as exc:
        raise ConfigError(f"XSD {path} is not a valid XML Schema: {exc}", xsd=str(path)) from exc


def validate(tree: etree._ElementTree | etree._Element, kind: str, *, xsd_dir: str | Path | None = None) -> None:
    """Check a parsed package against the XSD of ``kind`` (``"edoc"`` or ``"status"``).

    Returns ``None`` when the package is valid; otherwise raises :class:`EdxmlSchemaError` whose ``path``
    is the element path of the first error in local names and whose ``detail`` holds ``line``,
    ``error_count`` and ``errors`` (at most :data:`MAX_REPORTED_ERRORS` of ``{path, line, message}``).
    """
    name = _kind_name(kind)
    schema = schema_for(name, xsd_dir)
    target = _as_qcvn(tree)
    if schema.validate(target):
        return
    root = target.getroot() if isinstance(target, etree._ElementTree) else target
    entries = [e for e in schema.error_log if _NOISE not in e.message] or list(schema.error_log)
    errors = [_describe(entry, root) for entry in entries[:MAX_REPORTED_ERRORS]]
    if not errors:  # libxml2 said "invalid" without a message: still refuse, never pass silently
        errors = [{"path": element_path(root), "line": root.sourceline, "message": "the package is not valid"}]
    first = errors[0]
    more = f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""
    raise EdxmlSchemaError(
        f"edXML {name} package does not match the schema: {first['message']}{more}",
        path=first["path"],
        line=first["line"],
        kind=name,
        error_count=max(len(entries), 1),
        errors=errors,
    )


def _as_qcvn(tree: etree._ElementTree | etree._Element) -> etree._ElementTree | etree._Element:
    """The tree itself, or a copy with legacy-namespace names moved into the QCVN 102 namespace.

    The copy costs memory proportional to the package, which is paid only by legacy producers.
    """
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    if next(root.iter(f"{_LEGACY_PREFIX}*"), None) is None and not _has_legacy_attribute(root):
        return tree
    clone = copy.deepcopy(root)
    for el in clone.iter(etree.Element):
        if el.tag.startswith(_LEGACY_PREFIX):
            el.tag = ns.q(el.tag[_LEGACY_LEN:])
        for attr in [a for a in el.attrib if a.startswith(_LEGACY_PREFIX)]:
            el.attrib[ns.q(attr[_LEGACY_LEN:])] = el.attrib.pop(attr)
    return clone


def _has_legacy_attribute(root: etree._Element) -> bool:
    return any(a.startswith(_LEGACY_PREFIX) for el in root.iter(etree.Element) for a in el.attrib)


def _describe(entry: etree._LogEntry, root: etree._Element) -> dict[str, Any]:
    # libxml2 reports line 0 for elements that were not parsed from text (built or moved in code).
    line = entry.line or None
    return {"path": _local_path(entry.path, root), "line": line, "message": _readable(entry.message)}


def _local_path(libxml_path: str | None, root: etree._Element) -> str:
    """Turn libxml2's node path (``/*/edXML:edXMLEnvelope/*[2]``) into local names with positions."""
    if not libxml_path:
        return "/"
    steps = libxml_path.strip("/").split("/")
    attribute = steps.pop()[1:] if steps and steps[-1].startswith("@") else None
    node = _follow(steps, root)
    if node is None:  # unexpected path syntax: strip the prefixes and keep libxml2's positions
        return _PREFIXED.sub("", libxml_path)
    path = element_path(node)
    if attribute:
        path += "/@" + attribute.rpartition(":")[2]
    return path


def _follow(steps: list[str], root: etree._Element) -> etree._Element | None:
    """Walk libxml2's path steps from ``root``, mirroring how xmlGetNodePath() numbers siblings.

    ``*[n]`` counts all element siblings (used for default-namespace elements); ``p:name[n]`` counts
    siblings with the same local name and prefix; ``name[n]`` siblings with that name and no namespace.
    """
    node: etree._Element | None = None
    for step in steps:
        m = _STEP.fullmatch(step)
        if m is None:
            return None
        if node is None:
            node = root
            continue
        prefix, name, index = m["prefix"], m["name"], int(m["index"] or 1)
        if name == "*":
            candidates = list(node.iterchildren(etree.Element))
        elif prefix is None:
            candidates = list(node.iterchildren(name))
        else:
            candidates = [
                c for c in node.iterchildren(etree.Element) if c.prefix == prefix and etree.QName(c).localname == name
            ]
        if index > len(candidates):
            return None
        node = candidates[index - 1]
    return node


def _readable(message: str) -> str:
    """libxml2's message without edXML namespace URIs, with our key constraints spelled out."""
    text = message.strip()
    text = _KEY_MISSING.sub(
        lambda m: (
            f"required element '{m['child'].replace('.', '/')}' is missing or its value is invalid"
            f" (exactly one is needed in '{m['parent']}')."
        ),
        text,
    )
    text = _KEY_DUPLICATE.sub(
        lambda m: (
            f"'{m['child'].replace('.', '/')}' must occur exactly once in '{m['parent']}' but occurs more than once."
        ),
        text,
    )
    text = text.replace("##other{" + ns.EDXML + "}*", "any element of another namespace")
    text = text.replace("{" + ns.EDXML + "}", "").replace(_LEGACY_PREFIX, "")
    text = _LONG_VALUE.sub(lambda m: f"{m['head']}'{m['value'][:_MAX_VALUE_CHARS]}…'{m['tail']}", text)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text
