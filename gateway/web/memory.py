"""Give a large request's memory back to the system when it is done (issue 10 finding 3: worker RSS).

A request of several MB (a package, or a hostile multi-MB identifier) leaves its freed blocks in glibc's heap:
Python and libxml2 have released them, but the allocator keeps the pages, so the resident size of a worker ratchets
up with each large request and stays there (measured: +80–110 MB after 24 requests of 8 MB identifiers, none of it
reachable from Python). ``malloc_trim(0)`` hands the free pages back; it costs well under a millisecond per MB of
free heap, so it runs only after requests above :data:`LARGE_REQUEST_BYTES`. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from typing import Final

#: Requests at least this large are followed by a trim.
LARGE_REQUEST_BYTES: Final = 1024 * 1024


#: glibc's ``M_MMAP_THRESHOLD`` (malloc.h).
_M_MMAP_THRESHOLD: Final = -3


def _glibc() -> Callable[[int], int] | None:
    """Pin glibc's mmap threshold and return ``malloc_trim``; None where there is no glibc.

    By default glibc RAISES its mmap threshold to the size of each large block freed (up to 32 MB): after one 8 MB
    request, later 8 MB blocks come from the heap instead of their own mapping, and the heap fragments. A fixed
    threshold of :data:`LARGE_REQUEST_BYTES` keeps every block that large in a mapping of its own, returned to the
    system when it is freed; the trim then returns what smaller blocks left free."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim, mallopt = libc.malloc_trim, libc.mallopt
    except (OSError, AttributeError):  # musl and others
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, LARGE_REQUEST_BYTES)
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM: Final = _glibc()


def release_after(request_bytes: int) -> None:
    """Return free heap pages to the system after a request of ``request_bytes`` (the Content-Length)."""
    if _TRIM is not None and request_bytes >= LARGE_REQUEST_BYTES:
        _TRIM(0)
