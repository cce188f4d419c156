"""Intake limits as policy (issue 10 finding 8): the work a package may ask of the gateway, refused before it is stored.

A package under ``max_package_bytes`` can still ask for unbounded work downstream: a 1 MB zip that inflates to
1 GiB (every recipient that unzips it, our own ``extract``), 2,000 attachments, a To list of every agency in the
country. These checks run inside intake (:mod:`gateway.services.intake`), so SOAP, REST and VDXP — which all end
in :meth:`~gateway.services.intake.Intake.submit` — refuse the same packages with the same codes, and nothing is
stored:

* ``LIMIT.ATTACHMENTS`` — more than ``max_attachments`` attachments, or a zip attachment with more entries;
* ``LIMIT.RECIPIENTS`` — more than ``max_recipients`` ``To``;
* ``LIMIT.INFLATED`` — the zip attachments of the package inflate beyond ``max_inflated_bytes`` in total, or one
  entry beyond ``max_zip_ratio`` × its compressed size (judged past 1 MiB);
* ``LIMIT.STATUSES`` — checked by the status relay (:func:`gateway.services.status_relay.plan_status`), which
  knows the (document, recipient) pair.

The zip check STREAMS: the number of entries is bounded from the raw central directory before :mod:`zipfile`
builds its (per-entry) index; every entry is inflated in 64 KiB chunks that are counted and dropped, and the count
stops the inflation at the limit. The sizes the archive declares are never trusted: :mod:`zipfile` reads at most
the declared size and checks the CRC, so an archive that declares less than it holds ends in a CRC error after at
most the declared bytes (``EDXML.ATTACHMENT``), one that declares more is stopped by our count.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Final

from gateway.config import Settings
from gateway.edxml import EdocPackage, Package
from gateway.edxml.model import Attachment
from gateway.errors import AttachmentCountError, AttachmentError, InflatedSizeError, RecipientCountError

_CHUNK: Final = 1 << 16
#: An entry is judged by its compression ratio only past this many inflated bytes (a page of zeros is fine).
_RATIO_FLOOR: Final = 1 << 20
_EOCD: Final = b"PK\x05\x06"
_CENTRAL: Final = b"PK\x01\x02"
_EOCD_SIZE: Final = 22
_MAX_COMMENT: Final = 0xFFFF


@dataclass(frozen=True)
class IntakeLimits:
    """The policy, from :class:`~gateway.config.Settings` (each field documented there)."""

    max_attachments: int = 100
    max_inflated_bytes: int = 256 * 1024 * 1024
    max_zip_ratio: float = 150.0
    max_recipients: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(
            max_attachments=settings.max_attachments,
            max_inflated_bytes=settings.max_inflated_bytes,
            max_zip_ratio=settings.max_zip_ratio,
            max_recipients=settings.max_recipients,
        )


def check_counts(pkg: Package, limits: IntakeLimits) -> None:
    """The cheap checks, right after parsing: attachment and recipient counts."""
    if not isinstance(pkg, EdocPackage):
        return
    attachments = len(pkg.attachments)
    if attachments > limits.max_attachments:
        raise AttachmentCountError(
            f"the package carries {attachments} attachments, above the limit of {limits.max_attachments}",
            count=attachments,
            limit=limits.max_attachments,
        )
    recipients = len(pkg.recipients)
    if recipients > limits.max_recipients:
        raise RecipientCountError(
            f"the package names {recipients} recipients, above the limit of {limits.max_recipients}",
            count=recipients,
            limit=limits.max_recipients,
        )


def check_inflation(pkg: Package, limits: IntakeLimits) -> int:
    """Inflate every zip attachment of ``pkg`` in chunks against the limits; the total inflated bytes.

    Run after authorisation (an unauthorised package costs no inflation) and before the signature check.
    """
    if not isinstance(pkg, EdocPackage):
        return 0
    budget = _Budget(limits)
    for attachment in pkg.attachments:
        if attachment.is_zip:
            inspect_zip(attachment, budget)
    return budget.total


class _Budget:
    """The running count of inflated bytes of one package."""

    def __init__(self, limits: IntakeLimits) -> None:
        self.limits = limits
        self.total = 0


def inspect_zip(attachment: Attachment, budget: _Budget | IntakeLimits) -> int:
    """Count what one zip attachment inflates to without keeping it; raises the policy's refusals.

    Returns the bytes inflated (when called with an :class:`IntakeLimits`, the attachment alone is the budget).
    """
    if isinstance(budget, IntakeLimits):
        budget = _Budget(budget)
    limits = budget.limits
    name = attachment.attachment_name or attachment.content_id
    data = attachment.data
    entries = central_directory_entries(data, name)
    if entries > limits.max_attachments:
        raise AttachmentCountError(
            f"zip attachment {name!r} holds {entries} entries, above the limit of {limits.max_attachments}",
            count=entries,
            limit=limits.max_attachments,
            attachment=name,
        )
    start = budget.total
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise AttachmentError(f"attachment {name!r} is not a valid zip archive: {exc}", attachment=name) from None
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise AttachmentError(f"zip entry {info.filename!r} is encrypted", reason="zip-encrypted")
            _inflate_entry(zf, info, budget, name)
    return budget.total - start


def _inflate_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, name: str) -> None:
    limits = budget.limits
    size = 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                budget.total += len(chunk)
                if budget.total > limits.max_inflated_bytes:
                    raise InflatedSizeError(
                        f"the zip attachments inflate beyond {limits.max_inflated_bytes} bytes "
                        f"(stopped in {info.filename!r} of {name!r})",
                        limit=limits.max_inflated_bytes,
                        attachment=name,
                    )
                if size > _RATIO_FLOOR and size > limits.max_zip_ratio * max(info.compress_size, 1):
                    raise InflatedSizeError(
                        f"zip entry {info.filename!r} of {name!r} inflates more than {limits.max_zip_ratio:g} times "
                        "its compressed size",
                        ratio=limits.max_zip_ratio,
                        attachment=name,
                    )
    except (InflatedSizeError, AttachmentError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as exc:
        # A CRC mismatch lands here too: the archive declared less than it holds (or is damaged).
        raise AttachmentError(f"zip entry {info.filename!r} of {name!r} is corrupt: {exc}", attachment=name) from None


def central_directory_entries(data: bytes, name: str = "attachment") -> int:
    """An upper bound of the entries in a zip, read from the raw bytes before :mod:`zipfile` indexes them.

    :class:`zipfile.ZipFile` builds one ``ZipInfo`` per central-directory header, a few hundred bytes each: a
    50 MB archive of empty entries would cost over a GB before any limit could look. The End Of Central Directory
    record gives the directory's extent, where zipfile will read it (its declared entry count is not trusted); the
    headers' signatures in that extent are counted (a signature inside a file name only makes the bound higher).
    """
    tail_start = max(0, len(data) - (_EOCD_SIZE + _MAX_COMMENT))
    at = data.rfind(_EOCD, tail_start)
    if at < 0 or at + _EOCD_SIZE > len(data):
        raise AttachmentError(f"attachment {name!r} is not a valid zip archive: no end of central directory")
    declared, cd_size, cd_offset = struct.unpack_from("<xxxxxxxxxxHII", data, at)
    if declared == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        # ZIP64 (over 65,535 entries or 4 GiB): nothing a package under max_package_bytes needs; the whole body
        # bounds the count.
        return max(declared, data.count(_CENTRAL))
    # zipfile reads the directory as the cd_size bytes just before this record, whatever cd_offset says.
    return max(declared, data.count(_CENTRAL, max(0, at - cd_size), at))


__all__ = ["IntakeLimits", "central_directory_entries", "check_counts", "check_inflation", "inspect_zip"]
