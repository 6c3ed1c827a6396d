"""Keep freed tensor memory mapped, so the next engine call does not page-fault it back in.

Why: glibc's malloc hands large freed blocks back to the kernel (``munmap``, or trimming the
top of the heap) once its adaptive thresholds say so. The next call then touches fresh pages,
and the kernel faults them in and zeroes them one 4 KiB page at a time. Whether a process falls
into that depends on its allocation history, so the same call can be fast in one process and
slow in the next; ``benchmarks/bench_allocator.py`` measures it (results in
``benchmarks/results/``).

:func:`keep_freed_memory` raises glibc's mmap and trim thresholds (``mallopt``) so freed
blocks up to a bound stay in the process for the next call. PyTorch's CPU performance guide
recommends the same cure by another route (preloading jemalloc or tcmalloc); a user who chose
an allocator that way, or tuned glibc's malloc through ``MALLOC_*_`` or ``GLIBC_TUNABLES``, keeps
their choice, and ``VIS_CORE_KEEP_FREED_MEMORY=0`` turns it off. Blocks above glibc's ceiling
(32 MiB, e.g. a batch of 16 early feature maps) are still mapped afresh each time.

It changes the whole process, so the engine never calls it by itself: the entry points we own
(``python -m vis_core``, the dashboard's ``app.py``, the benchmark runner) do, and a researcher's
long-running Python session can opt in with one call. Not glibc (macOS, Windows, musl): a no-op
that says so.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Blocks below this come from the heap, not fresh mmaps (32 MiB is glibc's ceiling on 64-bit)."""

TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Free memory at a heap's top kept for reuse before glibc returns it to the kernel."""

OPT_OUT = "VIS_CORE_KEEP_FREED_MEMORY"
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_lock = threading.Lock()
_applied: str | None = None


def keep_freed_memory() -> str:
    """Apply the thresholds once per process; returns what was done, in words.

    Safe to call many times and from several threads. Never raises: where it does not apply,
    the answer says why (``"skipped: ..."``).
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> str:
    if os.environ.get(OPT_OUT, "1") == "0":
        return f"skipped: {OPT_OUT}=0"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "skipped: not glibc"
    if any(name in os.environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS):
        return "skipped: another allocator is preloaded"
    if any(os.environ.get(key) for key in _GLIBC_VARIABLES) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "skipped: glibc's malloc is configured in the environment"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    except (OSError, AttributeError) as error:
        return f"skipped: {error}"
    return "applied" if ok else "skipped: mallopt refused"
