"""keep_freed_memory: applied once, respects the user's own allocator choice, and does its job."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from vis_core import memory

ROOT = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(
    not GLIBC, reason="keep_freed_memory tunes glibc's malloc; this C library is not glibc"
)

# What keep_freed_memory said, twice, printed as JSON.
STATE = """
import json, vis_core
print(json.dumps({"state": vis_core.keep_freed_memory(), "again": vis_core.keep_freed_memory()}))
"""

# A fresh process (glibc only) asks malloc for blocks straight through libc, as torch's CPU
# allocator does, and reads glibc's own accounting (mallinfo2; mallinfo before glibc 2.33):
# * a 31 MiB block, just under the 32 MiB mmap threshold: where it came from (bytes newly
#   mmapped for it), and whether its bytes stay in the heap after free (arena not shrunk,
#   free bytes at least the block);
# * a 40 MiB block, over the threshold: mmapped, and unmapped again on free;
# * minor page faults per round of mallocing, touching and freeing 120 MB in 5 MB blocks, ten
#   times, after a first round: memory kept in the process is not faulted in again.
PROBE = (
    STATE.strip()
    + """
import ctypes, resource
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
field = ctypes.c_size_t if hasattr(libc, "mallinfo2") else ctypes.c_int
class Info(ctypes.Structure):
    _fields_ = [(name, field) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                           "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
mallinfo = getattr(libc, "mallinfo2", None) or libc.mallinfo
mallinfo.restype = Info
def touched(size):
    pointer = libc.malloc(size)
    ctypes.memset(pointer, 1, size)  # touched, so faulted in if fresh
    return pointer
under, over = 31 << 20, 40 << 20
start = mallinfo()
pointer = touched(under)
holding = mallinfo()
libc.free(pointer)
freed = mallinfo()
pointer = touched(over)
holding_over = mallinfo()
libc.free(pointer)
freed_over = mallinfo()
block = 5 << 20
def round_trip():
    pointers = [touched(block) for _ in range(24)]
    for pointer in reversed(pointers):
        libc.free(pointer)
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({
    "under_mmapped": holding.hblkhd - start.hblkhd,
    "under_kept": freed.arena >= holding.arena and freed.fordblks >= under,
    "over_mmapped": holding_over.hblkhd - freed.hblkhd,
    "over_unmapped": freed_over.hblkhd == freed.hblkhd,
    "faults": faults,
}))
"""
)


def run(code: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    environment.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300, check=True
    )
    result: dict = {}
    for line in done.stdout.strip().splitlines():
        result.update(json.loads(line))
    return result


class _FakeLibc:
    def __init__(self, answer: int) -> None:
        self.answer, self.calls = answer, []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return self.answer


@pytest.mark.parametrize("answer", [1, 0])
def test_the_thresholds_it_sets_through_mallopt(monkeypatch, answer):
    fake = _FakeLibc(answer)
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: fake)
    monkeypatch.setattr(memory.platform, "system", lambda: "Linux")
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("glibc", "2.36"))
    for name in (memory.OPT_OUT, "LD_PRELOAD", "GLIBC_TUNABLES", *memory._GLIBC_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    said = memory._apply()
    # glibc's <malloc.h>: M_MMAP_THRESHOLD is -3, M_TRIM_THRESHOLD is -1
    assert fake.calls == [(-3, 32 * 2**20), (-1, 256 * 2**20)]
    assert said == ("applied" if answer == 1 else "skipped: mallopt refused")


@needs_glibc
def test_keeping_freed_memory_keeps_blocks_in_the_process():
    kept, default = run(PROBE), run(STATE, VIS_CORE_KEEP_FREED_MEMORY="0")
    assert kept["state"] == kept["again"] == "applied"
    assert default["state"] == default["again"] == "skipped: VIS_CORE_KEEP_FREED_MEMORY=0"
    # under the mmap threshold: from the heap, and still there after free, for the next call
    assert kept["under_mmapped"] == 0 and kept["under_kept"], kept
    # over it (glibc's ceiling): mapped afresh and given back, as the module says; this also
    # shows the probe sees an mmapped block when there is one
    assert kept["over_mmapped"] >= 40 << 20 and kept["over_unmapped"], kept
    assert kept["faults"] < 100, kept  # memory kept is not faulted in again


def test_a_users_own_allocator_settings_win():
    assert run(STATE, MALLOC_TRIM_THRESHOLD_="1000000")["state"].startswith("skipped")
    assert run(STATE, GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")["state"].startswith("skipped")
    assert run(STATE, LD_PRELOAD="/usr/lib/x86_64-linux-gnu/libjemalloc.so.2-missing")["state"].startswith("skipped")
