"""What :func:`vis_core.keep_freed_memory` is worth: the same work in two fresh processes.

Fresh child processes, alternately with glibc's default thresholds (``VIS_CORE_KEEP_FREED_MEMORY=0``)
and with the setting the dashboard, the CLI and the runner apply, three of each (with the
defaults, whether memory is given back and faulted in again varies from process to process);
each times, interleaved:
a bare forward+backward of the default model to its input, our Grad-CAM, feature maps of every
layer, and 8 steps of feature visualisation. Reported: medians, minor page faults per call,
per process, and the ratio of the medians over processes (below 1: the setting helps).

The child's entry point: ``python -m benchmarks.bench_allocator --child``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def measure(device: torch.device, repeats: int) -> dict[str, Any]:
    import vis_core
    from vis_core.attribution import attribute_tensor
    from vis_core.featurevis import feature_visualization

    from .common import interleaved

    allocator = vis_core.keep_freed_memory()
    handle = vis_core.load_model(device=device)
    image = vis_core.sample_image("chelsea")
    x = handle.preprocess(image)

    def forward_backward() -> None:
        inputs = x.clone().requires_grad_(True)
        torch.autograd.grad(handle.model(inputs)[0, 285], inputs)

    timings = interleaved(
        {
            "forward_backward": forward_backward,
            "gradcam": lambda: attribute_tensor(handle, x, "gradcam", target=285, layer="features.18"),
            "feature_maps_all_layers": lambda: vis_core.feature_maps(handle, image),
            "featurevis_8_steps": lambda: feature_visualization(handle, layer="features.10", channel=5, steps=8),
        },
        device,
        repeats,
    )
    return {"keep_freed_memory": allocator, "timings": timings}


def _child(device: torch.device, repeats: int, keep: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIS_CORE_KEEP_FREED_MEMORY": "1" if keep else "0"}
    command = [sys.executable, "-m", "benchmarks.bench_allocator", "--child", "--device", str(device)]
    done = subprocess.run(
        [*command, "--repeats", str(repeats)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"the allocator benchmark's child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PROCESSES = 3


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    repeats = max(5, repeats // 3)
    default, kept = [], []
    for _ in range(PROCESSES):  # alternating fresh processes: glibc's behaviour varies run to run
        default.append(_child(device, repeats, keep=False))
        kept.append(_child(device, repeats, keep=True))

    def summary(children: list[dict[str, Any]]) -> dict[str, Any]:
        names = children[0]["timings"]
        return {
            "setting": children[0]["keep_freed_memory"],
            "median_ms_per_process": {n: [c["timings"][n]["median_ms"] for c in children] for n in names},
            "page_faults_per_call_per_process": {
                n: [c["timings"][n]["minor_page_faults_per_call"] for c in children] for n in names
            },
        }

    off, on = summary(default), summary(kept)
    ratios = {
        name: round(statistics.median(on["median_ms_per_process"][name]) / statistics.median(values), 3)
        for name, values in off["median_ms_per_process"].items()
    }
    return {
        "repeats": repeats,
        "processes_each": PROCESSES,
        "glibc_defaults": off,
        "keep_freed_memory_on": on,
        "ratio_on_over_defaults": ratios,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_allocator")
    parser.add_argument("--child", action="store_true", help="measure in this process and print JSON")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(measure(torch.device(args.device), args.repeats)))
