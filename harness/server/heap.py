"""Give freed C-heap memory back to the OS after a burst of large frees (a kicked slow WebSocket client).

Python's large `bytes` come from glibc malloc. After a big mmapped block is freed, glibc raises its mmap
threshold, so later large buffers come from the heap arenas, and freed arena memory is kept by the process.
`malloc_trim(0)` returns the free pages. It runs in a worker thread, debounced: several kicks in a row cost one
trim. On a C library without `malloc_trim` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import weakref

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.5

_trim = None
try:
    _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _trim = None

_pending: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> its scheduled trim


def trim_soon(loop: asyncio.AbstractEventLoop) -> None:
    """(event loop) Trim the C heap once, `DEBOUNCE_S` after the last call on this loop."""
    if _trim is None:
        return
    old = _pending.get(loop)
    if old is not None:
        old.cancel()
    _pending[loop] = loop.call_later(DEBOUNCE_S, _start, loop)


def _start(loop: asyncio.AbstractEventLoop) -> None:
    _pending.pop(loop, None)
    loop.run_in_executor(None, _run)


def _run() -> None:
    _trim(0)
    log.debug("trimmed the C heap")


__all__ = ["trim_soon"]
