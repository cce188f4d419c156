"""The ``/readyz`` disk check (issue 11 item 7): free space as a share of the filesystem AND as an absolute floor.

A fixed 256 MiB threshold could not tell a small disk from a full one: on a 100 GiB volume 256 MiB left is an
outage minutes away, on a 2 GiB container volume it may be a normal day. So the check fails below EITHER floor —
``readyz_min_free_percent`` of the filesystem's size or ``readyz_min_free_mb`` (either set to 0 turns that floor
off) — or when the directory is not writable, and the answer says which floor failed, with the figures (free bytes,
percent, threshold, path), so an operator reading ``/readyz`` knows why the load balancer took the node out.

The free space counted is what an unprivileged process may use (``statvfs`` ``f_bavail``, what
:func:`shutil.disk_usage` reports as ``free``): the root-reserved blocks are not the gateway's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

_MB = 1024 * 1024


@dataclass(frozen=True)
class DiskCheck:
    """One directory's disk check: ``ok``, the figures, and why it failed (``failed`` names the floors)."""

    path: str
    ok: bool
    free_bytes: int | None = None
    total_bytes: int | None = None
    free_percent: float | None = None
    min_free_percent: float = 0.0
    min_free_bytes: int = 0
    #: ``free_percent`` / ``free_bytes`` (below that floor), ``not_writable`` or ``unreadable``.
    failed: tuple[str, ...] = field(default_factory=tuple)
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the ``details`` of ``/readyz``."""
        found = asdict(self)
        found["failed"] = list(self.failed)
        return found


def disk_paths(data_dir: Path | str, database_url: str) -> dict[str, Path]:
    """What ``/readyz`` checks: ``{"disk": data_dir}``, plus ``"database_disk"``, a SQLite database's directory,
    when it is on another filesystem (a full disk there fails every write, the WS-Security nonce's first)."""
    paths = {"disk": Path(data_dir)}
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and not database_url.startswith(prefix + "file:"):
        folder = Path(database_url[len(prefix) :].split("?", 1)[0]).parent
        try:
            if folder.stat().st_dev != Path(data_dir).stat().st_dev:
                paths["database_disk"] = folder
        except OSError:
            paths["database_disk"] = folder  # its check then says it cannot read it
    return paths


def check_disk(path: Path | str, *, min_free_percent: float, min_free_mb: int) -> DiskCheck:
    """Whether ``path`` is a writable directory with at least ``min_free_percent`` % of its filesystem AND
    ``min_free_mb`` MiB free."""
    where = str(path)
    floor = min_free_mb * _MB
    limits = {"min_free_percent": min_free_percent, "min_free_bytes": floor}
    try:
        usage = shutil.disk_usage(where)
        writable = os.access(where, os.W_OK)
    except OSError as exc:
        reason = f"cannot read the free space of {where}: {exc.strerror or exc}"
        return DiskCheck(where, False, failed=("unreadable",), reason=reason, **limits)
    percent = round(100.0 * usage.free / usage.total, 2) if usage.total else 0.0
    failed: list[str] = []
    reasons: list[str] = []
    if not writable:
        failed.append("not_writable")
        reasons.append(f"{where} is not writable")
    if min_free_percent > 0 and percent < min_free_percent:
        failed.append("free_percent")
        reasons.append(f"{percent}% of the filesystem free, below readyz_min_free_percent = {min_free_percent}%")
    if floor > 0 and usage.free < floor:
        failed.append("free_bytes")
        reasons.append(f"{usage.free // _MB} MiB free ({usage.free} bytes), below readyz_min_free_mb = {min_free_mb}")
    return DiskCheck(
        where,
        not failed,
        free_bytes=usage.free,
        total_bytes=usage.total,
        free_percent=percent,
        failed=tuple(failed),
        reason=f"{where}: " + "; ".join(reasons) if reasons else None,
        **limits,
    )


__all__ = ["DiskCheck", "check_disk", "disk_paths"]
