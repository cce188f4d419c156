"""Give freed heap memory back to the system after a large request (issue 10, "RSS returns to idle").

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

__all__ = ["LARGE_REQUEST_BYTES", "release_free_memory"]
