"""Many viewers at once: 8 threads share one cached model and run mixed techniques.

200 requests (8 threads x 25) of feature maps, predictions, Grad-CAM, saliency, guided
projections and filters on four different photos, as concurrent dashboard sessions would.
Every result is compared with the single-thread result for the same request; afterwards the
model must have no hooks, no ``.grad`` and an unchanged state_dict hash. Records p50/p95
latency per technique and resident memory before and after (bound: +1.5 GB over the
single-thread warm-up, far below the 24 GB machine).
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

import vis_core

THREADS = 8
REQUESTS = 200
MEMORY_BOUND_MB = 1536


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _requests(handle: vis_core.ModelHandle):
    images = {name: vis_core.sample_image(name) for name in ("chelsea", "coffee", "astronaut", "rocket")}

    def feature_maps(image):
        return vis_core.feature_maps(handle, image, ["features.4", "features.14"]).activations["features.14"]

    def predict(image):
        return np.array(vis_core.predict(handle, image).probabilities)

    def gradcam(image):
        return vis_core.attribute(handle, image, "gradcam", target=285).model_map

    def saliency(image):
        return vis_core.attribute(handle, image, "saliency", target=504).model_map

    def guided(image):
        return vis_core.project(handle, image, layer="features.7", channel=3, method="guided").model_map

    def filters(image):
        return vis_core.filters(handle, "features.0.0").weight

    techniques = {f.__name__: f for f in (feature_maps, predict, gradcam, saliency, guided, filters)}
    jobs = [(name, image) for name in techniques for image in images]
    return techniques, images, jobs


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    handle = vis_core.load_model(device=device)
    techniques, images, jobs = _requests(handle)
    reference = {(name, image): techniques[name](images[image]) for name, image in jobs}
    rss_before = _rss_mb()
    latencies: dict[str, list[float]] = {name: [] for name in techniques}
    mismatches = []
    lock = threading.Lock()

    def one(index: int) -> None:
        name, image = jobs[index % len(jobs)]
        start = time.perf_counter()
        result = techniques[name](images[image])
        elapsed = time.perf_counter() - start
        equal = np.allclose(result, reference[(name, image)], rtol=1e-5, atol=1e-6)
        with lock:
            latencies[name].append(elapsed)
            if not equal:
                mismatches.append((name, image))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(one, range(REQUESTS)))
    wall = time.perf_counter() - started
    rss_after = _rss_mb()
    clean = (
        vis_core.hook_count(handle.model) == 0
        and all(p.grad is None for p in handle.model.parameters())
        and vis_core.state_dict_hash(handle.model) == handle.state_hash
    )

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "model": handle.key,
        "threads": THREADS,
        "requests": REQUESTS,
        "wall_seconds": round(wall, 2),
        "latency_ms": {
            name: {"p50": round(1e3 * statistics.median(v), 2), "p95": pct(v, 0.95), "n": len(v)}
            for name, v in latencies.items()
        },
        "results_equal_single_thread": not mismatches,
        "mismatches": mismatches[:10],
        "model_clean_afterwards": clean,
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(rss_after, 1),
        "rss_bound_mb": f"after <= before + {MEMORY_BOUND_MB}",
        "meets_target": not mismatches and clean and rss_after <= rss_before + MEMORY_BOUND_MB,
    }
