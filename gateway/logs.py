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
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import structlog
from structlog.types import Processor

from gateway.errors import ConfigError

FORMATS: Final = ("json", "console")

#: Processors every event goes through, whether it came from structlog or from a standard-library logger.
_SHARED: Final[list[Processor]] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


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


__all__ = ["FORMATS", "bind", "bound", "configure", "configure_structlog", "formatter", "request_scope", "scope"]
