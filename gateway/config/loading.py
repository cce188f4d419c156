"""Reading :class:`~gateway.config.Settings`: the TOML file, then ``EDOC_GATEWAY_*`` variables, typed per field.

Unknown keys are refused in both (``CONFIG.INVALID``), each named with the closest known key; the rules are in
:mod:`gateway.config`'s docstring.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from gateway.config import _TEST_ENV_PREFIX, ENV_PREFIX, FILE_TABLES, OTHER_ENV, Settings
from gateway.errors import ConfigError

_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _convert(name: str, raw: Any, tp: Any, base: Path) -> Any:
    text = str(raw) if not isinstance(raw, list) else raw
    try:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if tp is int:
            return int(raw)
        if tp is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
        if tp is str:
            return str(raw)
        if tp in (Path, Path | None):
            return None if raw in ("", None) else (base / Path(str(raw))).resolve()
        if tp in (tuple[str, ...], tuple[int, ...]):
            items = raw if isinstance(raw, list) else str(text).split(",")
            kind = int if tp == tuple[int, ...] else str
            return tuple(kind(str(item).strip()) for item in items if str(item).strip())
        if tp == tuple[Path, ...]:
            items = raw if isinstance(raw, list) else [p for p in str(text).split(",") if p.strip()]
            return tuple((base / Path(str(p).strip())).resolve() for p in items)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} has an invalid value {raw!r}") from None
    raise AssertionError(f"unhandled setting type {tp!r}")


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once. Relative paths in the file are relative to the file; in the environment, to cwd.

    Unknown keys (file or ``EDOC_GATEWAY_*``) are ``CONFIG.INVALID``, each named with the closest known key.
    """
    env = os.environ if env is None else env
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    path = path or env.get(f"{ENV_PREFIX}CONFIG") or None
    file_base = Path.cwd()
    extra: dict[str, Any] = {}
    if path:
        p = Path(path)
        doc = _read_file(p)
        file_base = p.resolve().parent
        _refuse_unknown_file_keys(doc, p)
        for key, raw in doc.items():
            if key in _FIELDS:
                values[key] = _convert(key, raw, hints[key], file_base)
            else:
                extra[key] = raw
    _refuse_unknown_env(env)
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _convert(name, raw, hints[name], Path.cwd())
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).resolve()
    else:
        values["data_dir"] = (file_base / Settings.data_dir).resolve() if path else Settings.data_dir.resolve()
    return Settings(**values, extra=extra)


def _read_file(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {p} is a directory") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {p} is not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from None


def _refuse_unknown_file_keys(doc: Mapping[str, Any], p: Path) -> None:
    """Top-level keys must be settings or one of the file-only tables (and those must be tables)."""
    unknown = [key for key in doc if key not in _FIELDS and key not in FILE_TABLES]
    if unknown:
        names = [_file_key(key) for key in unknown]
        raise ConfigError(f"unknown setting(s) in {p}: {', '.join(names)}", keys=unknown, file=str(p))
    not_tables = [key for key in FILE_TABLES if key in doc and not isinstance(doc[key], dict)]
    if not_tables:
        raise ConfigError(
            f"{p}: {', '.join(not_tables)} must be a table ([{not_tables[0]}] …), not a single value",
            keys=not_tables,
            file=str(p),
        )


def _refuse_unknown_env(env: Mapping[str, str]) -> None:
    """Every ``EDOC_GATEWAY_*`` variable must be a setting or one of :data:`OTHER_ENV` (or test tooling)."""
    unknown = sorted(
        name
        for name in env
        if name.startswith(ENV_PREFIX)
        and name[len(ENV_PREFIX) :].lower() not in _FIELDS
        and name not in OTHER_ENV
        and not name.startswith(_TEST_ENV_PREFIX)
    )
    if unknown:
        names = [_env_name(name) for name in unknown]
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(names)} (unset them, or fix the name)",
            keys=unknown,
        )


def _file_key(key: str) -> str:
    """``'wokers' (did you mean 'workers'?)``."""
    close = difflib.get_close_matches(key, [*_FIELDS, *FILE_TABLES], n=1, cutoff=0.6)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


def _env_name(name: str) -> str:
    """``EDOC_GATEWAY_WORKER (did you mean EDOC_GATEWAY_WORKERS?)``; a file-only table is named as such."""
    key = name[len(ENV_PREFIX) :].lower()
    table = key.split("_", 1)[0]
    if table in FILE_TABLES:
        return f"{name} ([{table}] is read from the settings file only)"
    close = difflib.get_close_matches(key, list(_FIELDS), n=1, cutoff=0.6)
    return f"{name} (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else name
