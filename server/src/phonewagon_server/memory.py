"""Keep the memory of the last page for the next one, instead of faulting it in afresh.

A page is about 1 MB, built in a few large buffers. glibc hands buffers that large straight to
mmap and gives them back to the kernel when freed, so every page paid ~200 page faults per
buffer: 0.4-0.5 ms of a ~1.5 ms page (measured in process). Raised thresholds make glibc reuse
its heap for them; memory stays flat, a few MB higher (docs/benchmarks.md, "server RSS").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 16 * 2**20  # above any page
_TRIM_THRESHOLD_BYTES = 128 * 2**20  # free heap kept before it is returned


def keep_page_memory() -> bool:
    """Apply the thresholds to this process; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others: no mallopt, nothing to tune
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )
