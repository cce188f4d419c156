"""Give freed heap memory back to the system after a large request (issue 10, "RSS returns to idle").

Two glibc behaviours keep a worker's RSS high long after a large request: its *dynamic mmap threshold* (once a
20 MB buffer has been freed, glibc raises the threshold so that the next ones come from the heap, where they
fragment and stay), and freed chunks kept in per-thread arenas. :func:`configure_allocator` pins the threshold at
:data:`MMAP_THRESHOLD_BYTES`, so every large buffer is its own mapping, returned on ``free``;
:func:`release_free_memory` trims the arenas.

A 20 MB request leaves tens of MB of freed but retained heap behind: glibc keeps freed chunks in the arena of
the thread that freed them, and with a pool of application threads (gateway.web.front) there is one arena per
thread. ``malloc_trim(0)`` returns the free pages of every arena (glibc ≥ 2.8 also releases pages inside the
heap, not only at its top). It costs a few milliseconds, so it runs only after requests that moved more than
:data:`LARGE_REQUEST_BYTES`. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable
from typing import Final

#: Requests (body in or answer out) above this size are followed by a trim.
LARGE_REQUEST_BYTES: Final = 1 << 20


def _trimmer() -> Callable[[], None]:
    if platform.libc_ver()[0] != "glibc":
        return lambda: None
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - glibc without a findable libc
        return lambda: None
    trim = ctypes.CDLL(name).malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


#: Return free heap pages to the system now (thread-safe: glibc locks each arena while trimming it).
release_free_memory: Final = _trimmer()

#: Allocations at least this large get their own mapping (glibc's default starts at 128 KiB and grows to 32 MiB).
MMAP_THRESHOLD_BYTES: Final = 1 << 20
_M_MMAP_THRESHOLD: Final = -3  # malloc.h


def configure_allocator() -> bool:
    """Pin glibc's mmap threshold (module docstring); True when applied. Call once per process, early."""
    if platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover
        return False
    mallopt = ctypes.CDLL(name).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


__all__ = ["LARGE_REQUEST_BYTES", "MMAP_THRESHOLD_BYTES", "configure_allocator", "release_free_memory"]
