"""Checks of single setting values that need more than a comparison (their grammar), kept beside
:class:`gateway.config.Settings`, which runs them when it is made."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

from gateway.errors import ConfigError

#: A ``legacy_paths`` entry; its first segment must not be one another edge owns.
_LEGACY_PATH = re.compile(r"^/(?!(soap|vdxp|rest|admin|console|metrics|healthz|readyz|gateway)(/|$))[\w.~/-]+$")


def check_public_url(url: str) -> None:
    """``public_url`` must be an absolute http(s) URL without query or fragment (it is written into the WSDL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"public_url must be an absolute http:// or https:// URL without query or fragment, not {url!r}"
        )
    if any(ch in url for ch in " \"<>\\'") or not url.isprintable():
        raise ConfigError(f"public_url {url!r} contains characters a URL cannot carry")


def check_legacy_paths(paths: Iterable[str]) -> None:
    """``legacy_paths``: plain URL paths (they are routes), none under a path another edge owns."""
    if bad := [p for p in paths if not _LEGACY_PATH.match(p) or "//" in p]:
        raise ConfigError(f"legacy_paths: {bad} must be paths like /services/EdocProxy, not another edge's")
