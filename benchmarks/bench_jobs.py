"""The server's memory during one viewer's job, at the heaviest settings the dashboard allows.

Issue #24: an atlas build from the Atlas page at 448 px took the server to 9 GB. Each job below
runs in a fresh child process (so its peak is its own), with the model loaded first; a sampling
thread reads the process's resident memory every 10 ms, and the job's memory is the peak above
what the process held before it started. The bound stated in the README (``BOUND_GIB`` above the
loaded model) must hold for every job; the baseline, measured in the same run, is the atlas
build as it was (32 pictures a batch whatever their size).

* ``atlas_448``: features.18 (1,280 filters) at 448 px, the largest size the page offers, one
  step (each render batch is one step's memory; a build's batches are alike), stopped after its
  first batch: what one click could start within ``costs.MAX_JOB_WORK``.
* ``atlas_448_before``: the same with the old batching (the baseline).
* ``gallery_448``: Ideal images' gallery at 448 px: as many filters as the page paints at that
  size, 8 steps.
* ``diverse_448``: Ideal images' diverse mode, 8 images of one filter at 448 px, 8 steps.
* ``dream``: Deep dream on the largest sample photo at the page's largest octave count and
  tile, 2 steps (the finest octave is the photo at its dreamed size, ``vis_core.dream.MAX_SIDE``).
* ``rebuild``: Rebuild the photo from the deepest block, 20 steps.

The child's entry point: ``python -m benchmarks.bench_jobs --child NAME``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
#: Most memory one viewer's job may add to the server, in GiB (the README's Safety section).
BOUND_GIB = 2.0
JOBS = ("atlas_448_before", "atlas_448", "gallery_448", "diverse_448", "dream", "rebuild")


def _job(name: str):
    import vis_core
    from dashboard.views import deep_dream, feature_vis
    from vis_core.atlas import renders

    handle = vis_core.load_model()
    if name.startswith("atlas_448"):
        if name.endswith("before"):
            renders.CHUNK_SIDE = 10_000  # 32 pictures a batch at any size, as before #24
        first = renders.jobs_for("features.18", 1280, seed=0, steps=1, size=448, renders=1)[0]
        return lambda: renders.render_jobs(handle, [first]), len(first.channels)
    if name in ("gallery_448", "diverse_448"):
        most = min(feature_vis.GALLERY, renders.chunk_images(448))
        channel = list(range(most)) if name == "gallery_448" else 0
        extra = {} if name == "gallery_448" else {"diversity": 8}
        args = dict(layer="features.10", channel=channel, steps=8, size=448, **extra)
        return lambda: vis_core.feature_visualization(handle, **args), most if name == "gallery_448" else 8
    if name == "dream":
        photos = [vis_core.sample_image(name) for name in vis_core.sample_names()]
        image = max(photos, key=lambda photo: photo.size[0] * photo.size[1])
        tile = max(deep_dream.PAGE.setting("dd_tile").kind.options)  # the page's largest tile: one pass, whole
        args = dict(layer="features.10", octaves=deep_dream.MAX_OCTAVES, octave_scale=1.1, steps=2, tile_size=tile)
        return lambda: vis_core.deep_dream(handle, image, **args), 1
    if name == "rebuild":
        image = vis_core.sample_image(vis_core.sample_names()[0])
        return lambda: vis_core.reconstruct(handle, image, layer="features.18", steps=20), 1
    raise ValueError(name)


def child(name: str) -> dict[str, Any]:
    import psutil

    from vis_core.memory import keep_freed_memory

    keep_freed_memory()  # as the dashboard runs
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work, images = _job(name)
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=watch, daemon=True)
    sampler.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return {
        "job": name,
        "images_in_one_batch": images,
        "before_gib": round(before / 2**30, 3),
        "peak_gib": round(peak[0] / 2**30, 3),
        "added_gib": round((peak[0] - before) / 2**30, 3),
        "seconds": round(seconds, 2),
    }


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    results = {}
    for name in JOBS:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_jobs", "--child", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(results[name], flush=True)
    before = results["atlas_448_before"]["added_gib"]
    within = {name: r["added_gib"] <= BOUND_GIB for name, r in results.items() if name != "atlas_448_before"}
    return {
        "bound_gib": BOUND_GIB,
        "jobs": results,
        "within_bound": within,
        "all_within_bound": all(within.values()),
        "atlas_448_vs_before": round(results["atlas_448"]["added_gib"] / before, 3) if before else None,
        "note": "peak resident memory above the loaded model, one fresh process per job (CPU)",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=JOBS, required=True)
    print(json.dumps(child(parser.parse_args().child)))
