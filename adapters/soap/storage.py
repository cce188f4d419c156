"""The reference receiver's storage: one file per messageId, each written at most once, atomically.

Kept apart from :mod:`adapters.soap.receiver` so that tools (and tests) can read what a receiver stored without
importing spyne.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.soap.contract import MESSAGE_ID


class ConflictError(Exception):
    """A messageId already stored with different bytes."""


class ReceiverStore:
    """One file per messageId in ``directory``; each stored at most once, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._tmp = self.directory / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def path(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.edxml"

    def put(self, message_id: str, data: bytes, meta: dict[str, str]) -> tuple[bool, str]:
        """Store ``data`` under ``message_id`` unless already there: (written?, sha256 hex)."""
        if not MESSAGE_ID.match(message_id):
            raise ValueError("invalid messageId")
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(message_id)
        if final.exists():
            return self._duplicate(message_id, final, digest), digest
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=f"{message_id}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, 0o640)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, final)  # atomic, and refuses to replace: the first writer wins
            except FileExistsError:
                return self._duplicate(message_id, final, digest), digest
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        record = {"messageId": message_id, "sha256": digest, "size": len(data), "at": _now(), **meta}
        self._append("writes.log", record)
        return True, digest

    def written(self) -> list[dict[str, Any]]:
        """Every package stored, in order (one JSON record each)."""
        return self._read("writes.log")

    def duplicates(self) -> list[dict[str, Any]]:
        """Every duplicate ReceiveEdoc answered without storing."""
        return self._read("duplicates.log")

    def _duplicate(self, message_id: str, final: Path, digest: str) -> bool:
        if hashlib.sha256(final.read_bytes()).hexdigest() != digest:
            raise ConflictError(message_id)
        self._append("duplicates.log", {"messageId": message_id, "sha256": digest, "at": _now()})
        return False

    def _append(self, name: str, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)  # one write with O_APPEND: lines from concurrent workers do not interleave
        finally:
            os.close(fd)

    def _read(self, name: str) -> list[dict[str, Any]]:
        path = self.directory / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


__all__ = ["ConflictError", "ReceiverStore"]
