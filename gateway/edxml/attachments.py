"""Attachments: add files to a package and get them back out, zip bombs refused (edxml.md §9).

The VNPT library zips every file that is not already a zip (one entry, named by a UUID plus the
extension), labels it ``application/zip`` and base64-encodes the zip; receivers must sniff and unzip.
We do the same on output and accept zipped and unzipped payloads on input.

Unzipping never trusts the sizes a zip declares: entries are inflated in chunks and counted, and the
count, the per-entry and total inflated size, and the compression ratio are all capped.
"""

from __future__ import annotations

import dataclasses
import io
import lzma
import mimetypes
import posixpath
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.edxml.model import Attachment, EdocPackage, ManifestReference
from gateway.errors import AttachmentError

ZIP_CONTENT_TYPE = "application/zip"
_CHUNK = 1 << 16
#: What :mod:`zipfile` raises on a malformed archive, besides BadZipFile: its header parsing is not hardened, so a
#: crafted zip reaches NotImplementedError (an unknown version or compression method), ValueError (a negative
#: seek from a bad offset, a name that is not UTF-8), IndexError, struct.error, EOFError, the decompressors'
#: own errors and OverflowError (issue 10: ``extract`` ended in these). Every one of them means "broken zip".
_ZIP_FAILURES = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    IndexError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
)


@dataclass(frozen=True)
class ZipLimits:
    """Caps applied while inflating an attachment; defaults suit official documents (a few MB each)."""

    max_entries: int = 64
    max_entry_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024
    #: inflated size / compressed size, per entry; office files compress 5–20×, text up to ~100×.
    max_ratio: float = 200.0


@dataclass(frozen=True)
class ExtractedFile:
    """A file as the recipient should see it: ``name`` is the AttachmentName (sanitised)."""

    name: str
    data: bytes
    content_type: str | None
    #: the zip entry the data came from, or None when the payload was not zipped
    zip_entry: str | None = None


def safe_file_name(name: str | None, fallback: str) -> str:
    """A bare file name that cannot escape a target directory (no separators, no ``..``, no NULs)."""
    base = posixpath.basename((name or "").replace("\\", "/")).replace("\x00", "").strip()
    if base in ("", ".", ".."):
        return fallback
    return base


def zip_payload(name: str, data: bytes) -> bytes:
    """Zip one file the VNPT way: a single deflated entry named ``<uuid><ext>``."""
    ext = posixpath.splitext(safe_file_name(name, "file"))[1]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(f"{uuid.uuid4()}{ext}", data)
    return buf.getvalue()


def unzip(data: bytes, limits: ZipLimits = ZipLimits()) -> list[tuple[str, bytes]]:
    """Inflate every file entry of a zip within ``limits``; raises ``EDXML.ATTACHMENT``."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_FAILURES as exc:
        raise AttachmentError(f"attachment is not a valid zip archive: {_brief(exc)}") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.filename.endswith("/")]  # is_dir() fails on an empty name
        if len(infos) > limits.max_entries:
            raise AttachmentError(
                f"zip has {len(infos)} entries, above the limit of {limits.max_entries}",
                reason="zip-entries",
            )
        total = 0
        out: list[tuple[str, bytes]] = []
        for info in infos:
            if info.flag_bits & 0x1:
                raise AttachmentError(f"zip entry {info.filename!r} is encrypted", reason="zip-encrypted")
            chunks: list[bytes] = []
            size = 0
            try:
                with zf.open(info) as fh:
                    while chunk := fh.read(_CHUNK):
                        size += len(chunk)
                        total += len(chunk)
                        _check_inflation(info, size, total, limits)
                        chunks.append(chunk)
            except AttachmentError:
                raise
            except _ZIP_FAILURES as exc:
                raise AttachmentError(f"zip entry {info.filename[:100]!r} is corrupt: {_brief(exc)}") from None
            out.append((info.filename, b"".join(chunks)))
        return out


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _check_inflation(info: zipfile.ZipInfo, size: int, total: int, limits: ZipLimits) -> None:
    if size > limits.max_entry_bytes:
        raise AttachmentError(
            f"zip entry {info.filename!r} inflates beyond {limits.max_entry_bytes} bytes", reason="zip-bomb"
        )
    if total > limits.max_total_bytes:
        raise AttachmentError(f"zip inflates beyond {limits.max_total_bytes} bytes in total", reason="zip-bomb")
    # Small entries may legitimately compress far (a page of zeros); judge the ratio past 1 MiB.
    if size > (1 << 20) and size > limits.max_ratio * max(info.compress_size, 1):
        raise AttachmentError(
            f"zip entry {info.filename!r} has a compression ratio above {limits.max_ratio:g}",
            reason="zip-bomb",
        )


def extract(attachment: Attachment, limits: ZipLimits = ZipLimits()) -> list[ExtractedFile]:
    """The files an attachment carries: the unzipped entries of a zip payload, else the payload itself.

    A single-entry zip (the VNPT convention) is named after ``AttachmentName``; the entries of a
    multi-entry zip keep their own (sanitised) names.
    """
    fallback = safe_file_name(attachment.attachment_name, attachment.content_id or "attachment")
    if not attachment.is_zip:
        return [ExtractedFile(fallback, attachment.data, attachment.content_type)]
    entries = unzip(attachment.data, limits)
    if len(entries) == 1:
        entry, data = entries[0]
        return [ExtractedFile(fallback, data, _guess_type(fallback), zip_entry=entry)]
    return [
        ExtractedFile(safe_file_name(entry, f"entry-{i}"), data, _guess_type(entry), zip_entry=entry)
        for i, (entry, data) in enumerate(entries, 1)
    ]


def _guess_type(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


def make_attachment(
    name: str,
    data: bytes,
    *,
    description: str | None = None,
    content_id: str | None = None,
    zip: bool = True,
    content_type: str | None = None,
) -> tuple[ManifestReference, Attachment]:
    """A manifest reference and its attachment for one file, zipped unless it already is a zip."""
    cid = content_id or uuid.uuid4().hex
    name = safe_file_name(name, "attachment")
    if zip and data[:4] != b"PK\x03\x04":
        payload, ctype = zip_payload(name, data), ZIP_CONTENT_TYPE
    else:
        payload = data
        ctype = content_type or (ZIP_CONTENT_TYPE if data[:4] == b"PK\x03\x04" else _guess_type(name))
        ctype = ctype or "application/octet-stream"
    desc = description if description is not None else name
    ref = ManifestReference(content_id=cid, content_type=ctype, description=desc, attachment_name=name)
    att = Attachment(content_id=cid, attachment_name=name, description=desc, content_type=ctype, data=payload)
    return ref, att


def add_files(pkg: EdocPackage, files: Iterable[tuple[str, bytes]], *, zip: bool = True) -> EdocPackage:
    """A copy of ``pkg`` with each ``(name, data)`` file added to the manifest and the attachments."""
    refs = list(pkg.references)
    atts = list(pkg.attachments)
    used = {r.content_id for r in refs} | {a.content_id for a in atts}
    for name, data in files:
        ref, att = make_attachment(name, data, zip=zip)
        if ref.content_id in used:  # uuid4 collision: practically impossible, never silently merged
            raise AttachmentError(f"duplicate ContentId {ref.content_id}")
        used.add(ref.content_id)
        refs.append(ref)
        atts.append(att)
    return dataclasses.replace(pkg, references=tuple(refs), attachments=tuple(atts))
