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

# A fresh process frees 120 MB of tensors and allocates them again, ten times: glibc's defaults
# give the freed top of the heap back to the kernel (its trim threshold adapts, but never past
# 64 MB), so every round faults many thousands of fresh pages in; kept, nothing does.
# Printed as JSON: what keep_freed_memory said, twice, and minor page faults per round.
PROBE = """
import json, resource, torch
import vis_core
state = vis_core.keep_freed_memory()
again = vis_core.keep_freed_memory()
block = 5 << 20  # bytes
torch.ones(block // 4)  # one mmapped block, freed at once: glibc's dynamic thresholds adapt to it
def round_trip():
    blocks = [torch.ones(block // 4) for _ in range(24)]  # touched, so faulted in if fresh
    del blocks
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
