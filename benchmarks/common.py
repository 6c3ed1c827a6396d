"""Timing helpers shared by the benchmark suites.

Rules: a baseline and the thing measured run in the same process, interleaved (A, B, A, B,
...) so that noise from a shared machine hits both alike; we report medians and the ratio
of medians. On CUDA every timed call ends with a synchronize.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vis_core.memory import keep_freed_memory

RESULTS = Path(__file__).resolve().parent / "results"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int = 3):
    """Median seconds of each function, timed in alternation."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    faults: dict[str, int] = dict.fromkeys(fns, 0)
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - start)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {
        name: {
            "median_ms": round(statistics.median(values) * 1e3, 3),
            "p10_ms": round(sorted(values)[len(values) // 10] * 1e3, 3),
            "p90_ms": round(sorted(values)[(len(values) * 9) // 10] * 1e3, 3),
            "minor_page_faults_per_call": round(faults[name] / repeats, 1),
        }
        for name, values in samples.items()
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {cpu}, {torch.get_num_threads()} threads"


def device_slug(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).replace("NVIDIA", "").strip().split()[0]
        return f"cuda-{name.lower()}"
    return "cpu"


def write(suite: str, device: torch.device, payload: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "suite": suite,
        "device": device_description(device),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "keep_freed_memory": keep_freed_memory(),
        **payload,
    }
    path = out_dir / f"{suite}-{device_slug(device)}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
