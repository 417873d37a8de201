"""How the daemon's C heap (glibc malloc) holds large buffers: handed back at once, or reused within a short burst.

Rules:
  1. lean_heap (the daemon on the onnx engine, once): blocks over LEAN_MMAP_BYTES (activations, image pyramids)
     are served by mmap, so freeing one hands it back to the OS at once and RSS does not stay at its peak.
  2. The price of rule 1 is a page fault for every page of every such block at every use: an MTCNN pass over a
     1920x1080 frame faulted about 49,000 pages (190 MB of fresh zeroed memory, 115 of its 290 ms, measured here).
     So inside `reusing_freed_memory()` large blocks come from the heap and a freed one is kept for the next
     allocation (mmap and trim thresholds raised to REUSE_BYTES). It suits a run of same-size buffers (MTCNN's
     R-Net batches); around the whole detector, blocks of ever-changing sizes raised its 1080p peak from +45 to
     +86 MB, so it is not used there ...
  3. ... and at the end of the outermost window the lean thresholds come back and release_freed_memory hands
     every free page back: the buffers live only as long as the window.
  4. release_freed_memory (glibc's malloc_trim) is deferred while a window is open, to its end.
  5. Without rule 1 (tests, the CLI's one-off commands, another C library) the window changes nothing.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
LEAN_MMAP_BYTES = 128 * 1024  # glibc's own default mmap threshold, fixed instead of growing with use
LEAN_TRIM_BYTES = 128 * 1024  # glibc's default: free memory above this at the heap's top goes back at once
REUSE_BYTES = 32 * 2**20  # glibc's largest mmap threshold: the integral image of a 1080p frame is 25 MB

_libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
_state = threading.Lock()
_lean = False
_windows = 0  # open reusing_freed_memory() windows, any thread


def _call(name: str, *args: int) -> None:
    """Call a glibc malloc function if this C library has it (musl and others do not)."""
    function = getattr(_libc, name, None)
    if function is not None:
        function(*args)


def lean_heap() -> None:
    """Rule 1, process-wide: the daemon's call, before its networks are loaded."""
    global _lean
    with _state:
        _call("mallopt", M_MMAP_THRESHOLD, LEAN_MMAP_BYTES)
        _lean = True


def release_freed_memory() -> None:
    """Hand the memory the C heap holds freed back to the OS (glibc's malloc_trim); rule 4 inside a window.

    ONNX Runtime frees its load-time copies of the weights, and without the arena each run's activations, but
    glibc keeps freed blocks in the heap: RSS would stay at the peak (+150 MB after loading FaceNet fp32).
    """
    with _state:
        if _windows == 0:
            _call("malloc_trim", 0)


@contextmanager
def reusing_freed_memory() -> Iterator[None]:
    """Rules 2-3: large buffers freed inside the window are reused there and handed back at its end."""
    global _windows
    with _state:
        _windows += 1
        if _windows == 1 and _lean:
            _call("mallopt", M_MMAP_THRESHOLD, REUSE_BYTES)
            _call("mallopt", M_TRIM_THRESHOLD, REUSE_BYTES)
    try:
        yield
    finally:
        with _state:
            _windows -= 1
            last = _windows == 0
            if last and _lean:
                _call("mallopt", M_MMAP_THRESHOLD, LEAN_MMAP_BYTES)
                _call("mallopt", M_TRIM_THRESHOLD, LEAN_TRIM_BYTES)
        if last:
            release_freed_memory()
