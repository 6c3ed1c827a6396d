"""Every attribution method's first picture and exact map, on the default model at 224 px.

For each method and sample photo: seconds to the first picture :func:`vis_core.attribute_stages`
yields, seconds to the exact map, and the first picture's Pearson r with the exact map (1 when
the first picture is the exact map). Each method also gets the cost model's estimate of the
exact map (``vis_core.costs``) beside the time it took. Targets: the first picture within 2 s
for every method, and r >= 0.9 for every approximation.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

import vis_core
from vis_core import costs
from vis_core.attribution import METHODS, attribute_stages

PHOTOS = ("chelsea", "coffee")
FIRST_TARGET_S = 2.0
AGREEMENT_TARGET = 0.9


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    handle = vis_core.load_model(device=device)
    estimates = {name: costs.estimate_attribution(handle, name) for name in METHODS}
    methods: dict[str, Any] = {}
    for name in METHODS:
        rows = []
        for photo in PHOTOS:
            image = vis_core.sample_image(photo)
            vis_core.attribute(handle, image, "gradcam")  # warm the model and its twin
            start = time.perf_counter()
            stages = []
            for stage in attribute_stages(handle, image, name):
                stages.append((time.perf_counter() - start, stage))
            (first_s, first), (exact_s, exact) = stages[0], stages[-1]
            rows.append(
                {
                    "photo": photo,
                    "first_s": round(first_s, 3),
                    "exact_s": round(exact_s, 3),
                    "stages": len(stages),
                    "first_r": round(_pearson(first.model_map, exact.model_map), 4),
                    "first_is": first.approximation or "the exact map",
                }
            )
        worst_first = max(row["first_s"] for row in rows)
        worst_r = min(row["first_r"] for row in rows)
        methods[name] = {
            "photos": rows,
            "first_s_max": worst_first,
            "exact_s_median": round(statistics.median(row["exact_s"] for row in rows), 3),
            "estimated_exact_s": round(estimates[name], 3),
            "first_r_min": worst_r,
            "stated_agreement": METHODS[name].first_agreement,
            "meets_first_target": worst_first <= FIRST_TARGET_S,
            "meets_agreement_target": worst_r >= AGREEMENT_TARGET,
        }
    return {
        "model": "mobilenet_v2 (224 px input), default layer, top class",
        "photos": list(PHOTOS),
        "threads": torch.get_num_threads(),
        "pass_seconds": vars(costs.pass_seconds(handle)),
        "methods": methods,
        "targets": {"first_picture_s": FIRST_TARGET_S, "first_r": AGREEMENT_TARGET},
        "meets_targets": all(m["meets_first_target"] and m["meets_agreement_target"] for m in methods.values()),
    }
