"""Logging: one structured event per line, configured once per process, and the context every line carries.

Why structlog over the standard library: operators feed the gateway's stderr (journald) to a log pipeline that
wants one JSON object per line, and every line written while a request or a delivery is handled must say which
one — ``edge``, ``operation``, ``system`` (the authenticated system id), ``doc_id`` / ``delivery_id`` (ours) and
``document_id`` (the edXML DocumentId) — without each log call repeating them. Those fields live in structlog's
context variables: the web edges and the worker bind them (:func:`request_scope`, :func:`scope`), the intake
pipeline adds the ids once it knows them (:func:`bind`), and every line emitted meanwhile carries them.

Standard-library loggers (ours are ``logging.getLogger(__name__)``; spyne, gunicorn and alembic use their own) are
routed through the same formatter (:func:`formatter`), so their lines are JSON too and carry the context as well.

Formats (setting ``log_format``): ``json`` (default; the service) or ``console`` (aligned key=value lines for a
human, e.g. ``make demo``). Never log a package body or a secret: the context holds identifiers only, and the
log calls of the gateway pass sizes, digests and codes, not content.

Log safety (issue 10 finding 4): whatever a client controls can reach a line — a path, a header, a user name, an
identifier read from a package, an exception message. :func:`escape_values` runs on every event of every logger
just before rendering, in both formats: control characters and line separators become visible escapes (``\\r``,
``\\n``, ``\\x1b``, ``\\u2028``), so no value can end a line and start a forged one; every context or extra
value is cut to :data:`MAX_VALUE_CHARS` (an identifier of 16 MB must not be copied into each line) and the message
to :data:`MAX_EVENT_CHARS`. A traceback keeps its line breaks, each continuation line prefixed with ``  | `` so
that nothing in an exception message can start a line of its own. The call sites still pass client text through
:func:`gateway.web.rawhttp.log_safe` where they build a one-line summary; this is the net under all of them.
"""

from __future__ import annotations

import logging
import sys
import unicodedata
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

import structlog
from structlog.types import Processor

from gateway.errors import ConfigError

FORMATS: Final = ("json", "console")
#: Longest context/extra value written (identifiers: system, DocumentId, sender, user …).
MAX_VALUE_CHARS: Final = 100
#: Longest message written (messages are short; one built from a hostile value must stay bounded).
MAX_EVENT_CHARS: Final = 2000
#: Longest traceback written: its head and its tail (the exception's message, which may echo client input).
MAX_EXCEPTION_CHARS: Final = 16000
#: Keys whose values are multi-line by nature: line breaks kept, continuation lines marked.
_MULTILINE: Final = frozenset({"exception", "stack"})
#: Keys the logging machinery itself writes (never client data, never cut).
_OURS: Final = frozenset({"timestamp", "level", "logger"})
_CONTINUATION: Final = "\n  | "

#: Processors every event goes through, whether it came from structlog or from a standard-library logger.
_SHARED: Final[list[Processor]] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _escape_char(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _needs_escape(ch: str) -> bool:
    # Not printable: C0/C1 controls (CR, LF, ESC, VT, FF, NEL …), U+2028/U+2029 (line ends to str.splitlines
    # and some log viewers), format characters (bidi overrides that reorder what an operator reads), lone
    # surrogates (which the JSON renderer cannot encode as UTF-8), unassigned and private-use code points.
    # Spaces other than U+0020 are not printable either but harmless: kept.
    return not ch.isprintable() and unicodedata.category(ch) != "Zs"


def escape_text(value: str, limit: int, *, keep_newlines: bool = False) -> str:
    """``value`` on one line (or, with ``keep_newlines``, with marked continuation lines), at most ``limit``
    characters of it kept (the cut says how much was left out)."""
    if len(value) > limit:
        if keep_newlines:
            half = limit // 2
            value = f"{value[:half]} …[{len(value) - limit} chars cut]… {value[-half:]}"
        else:
            value = f"{value[:limit]}…[+{len(value) - limit} chars]"
    if value.isprintable():  # the common case: nothing to escape (space is printable, \n is not)
        return value
    out = []
    for ch in value:
        if keep_newlines and ch == "\n":
            out.append(_CONTINUATION)
        elif _needs_escape(ch):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def _escaped(value: Any, limit: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return escape_text(value, limit)
    if isinstance(value, bytes | bytearray):
        return escape_text(repr(bytes(value[: limit + 1])), limit)
    if depth < 3 and isinstance(value, list | tuple):
        return [_escaped(v, limit, depth + 1) for v in value[:limit]]
    if depth < 3 and isinstance(value, dict):
        return {escape_text(str(k), limit): _escaped(v, limit, depth + 1) for k, v in list(value.items())[:limit]}
    return value


def escape_values(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every value made safe to write (module docstring, "Log safety")."""
    for key, value in event_dict.items():
        if key in _OURS:
            continue
        if key in _MULTILINE and isinstance(value, str):
            event_dict[key] = escape_text(value, MAX_EXCEPTION_CHARS, keep_newlines=True)
        elif key == "event":
            event_dict[key] = _escaped(value if isinstance(value, str) else str(value), MAX_EVENT_CHARS)
        else:
            event_dict[key] = _escaped(value, MAX_VALUE_CHARS)
    return event_dict


def _renderer(log_format: str) -> Processor:
    if log_format == "json":
        # ensure_ascii=False: Vietnamese agency names as UTF-8, one line per event either way.
        return structlog.processors.JSONRenderer(ensure_ascii=False)
    if log_format == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    raise ConfigError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}", log_format=log_format)


def formatter(log_format: str = "json") -> logging.Formatter:
    """The formatter of every handler: standard-library records rendered like structlog events.

    Usable from ``logging.config.dictConfig`` (``{"()": "gateway.logs.formatter", "log_format": "json"}``), which
    is how gunicorn's ``logconfig_dict`` (deploy/gunicorn.conf.py) installs it in the master and its workers.
    """
    renderer = _renderer(log_format)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            escape_values,
            renderer,
        ],
    )


def configure_structlog() -> None:
    """Route structlog loggers into the standard library (whose handlers use :func:`formatter`). Idempotent."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure(level: str, log_format: str) -> None:
    """A process outside gunicorn (``edoc-gateway worker``): one stderr handler on the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Migration chatter at every start is not news (as under gunicorn).
    logging.getLogger("alembic").setLevel(logging.WARNING)
    configure_structlog()


# ------------------------------------------------------------------------------------------------- context


def bind(**values: Any) -> None:
    """Add fields to every line logged from here on in this request or delivery (``None`` values are skipped)."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def bound(key: str) -> Any:
    """A field bound to the current context (``None`` when not bound)."""
    return structlog.contextvars.get_contextvars().get(key)


@contextmanager
def scope(**values: Any) -> Iterator[None]:
    """Fields for one unit of work inside a longer-lived context (a delivery in a worker batch, an upstream item):
    on exit the context is exactly what it was, so nothing bound inside leaks into the next unit's lines."""
    saved = structlog.contextvars.get_contextvars()
    bind(**values)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**saved)


@contextmanager
def request_scope(**values: Any) -> Iterator[None]:
    """One web request: starts from an empty context (a thread of the web worker's pool serves request after
    request, so the previous request's fields must not survive) and leaves it empty."""
    structlog.contextvars.clear_contextvars()
    bind(**values)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()


__all__ = [
    "FORMATS",
    "MAX_EVENT_CHARS",
    "MAX_VALUE_CHARS",
    "bind",
    "bound",
    "configure",
    "configure_structlog",
    "escape_text",
    "escape_values",
    "formatter",
    "request_scope",
    "scope",
]
