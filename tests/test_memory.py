"""keep_freed_memory: applied once, respects the user's own allocator choice, and does its job."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A fresh process mallocs, touches and frees 120 MB in 5 MB blocks, ten times (straight through
# libc, as torch's CPU allocator does, with nothing else allocating in between to pin the heap):
# glibc's defaults give the freed top of the heap back to the kernel (their trim threshold
# adapts, but never past 64 MB), so every round faults ~30,000 pages in again; kept, none.
# Printed as JSON: what keep_freed_memory said, twice, and minor page faults per round.
PROBE = """
import ctypes, json, resource
import vis_core
state = vis_core.keep_freed_memory()
again = vis_core.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
block = 5 << 20
libc.free(libc.malloc(block))  # one mmapped block freed: glibc's dynamic thresholds adapt to it
def round_trip():
    pointers = [libc.malloc(block) for _ in range(24)]
    for pointer in pointers:
        ctypes.memset(pointer, 1, block)  # touched, so faulted in if fresh
    for pointer in reversed(pointers):
        libc.free(pointer)
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"state": state, "again": again, "faults": faults}))
"""


def probe(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    environment.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_keeping_freed_memory_removes_the_page_faults():
    kept, default = probe(), probe(VIS_CORE_KEEP_FREED_MEMORY="0")
    assert kept["state"] == kept["again"] == "applied"
    assert default["state"] == "skipped: VIS_CORE_KEEP_FREED_MEMORY=0"
    assert default["faults"] > 10_000, default  # >56 MB given back and faulted in again each round
    assert kept["faults"] < 100, kept


def test_a_users_own_allocator_settings_win():
    assert probe(MALLOC_TRIM_THRESHOLD_="1000000")["state"].startswith("skipped")
    assert probe(GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")["state"].startswith("skipped")
    assert probe(LD_PRELOAD="/usr/lib/x86_64-linux-gnu/libjemalloc.so.2-missing")["state"].startswith("skipped")
