"""The atlas (#13) on the default model.

* ``renders``: units per second of a local atlas build of ``features.10`` (64 units, 128 px,
  256 steps; collection pass, patches and writes included) against torch-lucent's
  ``render_vis`` one unit at a time with the same size, steps and parameterisation (FFT,
  decorrelated colour, standard transforms), a few units timed in the same run. Target: at
  least 8x lucent's throughput. (lucent also upsamples a 128 px image to 224 px before the
  network and runs the whole network; that is part of what it costs a user.)
* ``collection``: the collection pass's work per image batch (one forward capturing the
  layer, the per-channel max/argmax/sum/zeros and the running top-k) against a bare batched
  forward of the whole model on the same input tensors, interleaved. Target: at most 1.2x.
  The same with every spatial block captured (an ``--all`` atlas) is recorded beside it, and
  the pass with decoding and preprocessing included.
* ``ray``: the same small build (``features.10`` at 128 px, :data:`RAY_STEPS` steps) on the
  local executor and on a local Ray of 2 CPUs, with Ray's start-up and without it.

``VIS_CORE_BENCH_SMOKE=1`` runs a reduced configuration (to check the suite works; its
numbers mean nothing).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vis_core
from vis_core.atlas import examples as atlas_examples
from vis_core.atlas.collection import resolve

from .common import interleaved, sync

LAYER = "features.10"
SMOKE = os.environ.get("VIS_CORE_BENCH_SMOKE") == "1"
STEPS = 8 if SMOKE else 256
SIZE = 64 if SMOKE else 128
LUCENT_UNITS = 1 if SMOKE else 3
PASS_IMAGES = 16 if SMOKE else 64
RAY_STEPS = 4 if SMOKE else 32


def _lucent_unit(model: torch.nn.Module, channel: int, device: torch.device) -> None:
    from lucent.optvis import param, render, transform

    render.render_vis(
        model,
        f"features_10:{channel}",
        param_f=lambda: param.image(SIZE, fft=True, decorrelate=True),
        transforms=transform.standard_transforms,
        thresholds=(STEPS,),
        show_image=False,
        progress=False,
        verbose=False,
    )
    sync(device)


def _renders(handle: vis_core.ModelHandle, device: torch.device, work: Path) -> dict[str, Any]:
    lucent_model = copy.deepcopy(handle.model).to(device).eval()
    _lucent_unit(lucent_model, 0, device)  # warm-up
    start = time.perf_counter()
    for channel in range(LUCENT_UNITS):
        _lucent_unit(lucent_model, channel, device)
    lucent_seconds = (time.perf_counter() - start) / LUCENT_UNITS
    summary = vis_core.build_atlas(
        handle, layers=[LAYER], images="sample", out=work / "renders", steps=STEPS, size=SIZE, top_k=9
    )
    ours = summary.units / summary.seconds
    lucent = 1.0 / lucent_seconds
    return {
        "units": summary.units,
        "steps": STEPS,
        "size": SIZE,
        "vis_core_seconds": round(summary.seconds, 3),
        "vis_core_units_per_second": round(ours, 4),
        "lucent_units_timed": LUCENT_UNITS,
        "lucent_seconds_per_unit": round(lucent_seconds, 3),
        "lucent_units_per_second": round(lucent, 4),
        "throughput_over_lucent": round(ours / lucent, 3),
    }


def _pass_inputs(handle: vis_core.ModelHandle) -> list[torch.Tensor]:
    """``PASS_IMAGES`` model inputs from the sample photos (flipped and shifted copies), in batches."""
    base = [vis_core.sample_image(name.split(" ")[0]) for name in vis_core.sample_names()]
    tensors = []
    for index in range(PASS_IMAGES):
        tensor = handle.preprocess(base[index % len(base)])
        tensor = torch.roll(tensor.flip(-1) if index % 2 else tensor, shifts=index // len(base), dims=-1)
        tensors.append(tensor)
    batch = atlas_examples.BATCH
    return [torch.cat(tensors[i : i + batch]) for i in range(0, len(tensors), batch)]


def _collection(handle: vis_core.ModelHandle, device: torch.device, repeats: int, work: Path) -> dict[str, Any]:
    twin = handle.for_long_work()
    batches = _pass_inputs(twin)
    channels, height, width = twin.layers[LAYER].output_shape
    blocks = [info.name for info in twin.blocks() if info.is_spatial]

    def pass_of(layers: list[str]):
        def run() -> None:
            states = {name: None for name in layers}
            for index, inputs in enumerate(batches):
                numbers = atlas_examples.batch_stats(twin, inputs, layers)
                ids = np.arange(index * len(inputs), (index + 1) * len(inputs))
                result = atlas_examples.BatchResult(ids, 0, numbers)
                for name in layers:
                    if states[name] is None:
                        shape = twin.layers[name].output_shape
                        states[name] = atlas_examples.PassState(shape[0], 9, shape[1] * shape[2])
                    states[name].update(result, name)

        return run

    def bare() -> None:
        with twin.guard() as model, torch.no_grad():
            for inputs in batches:
                model(inputs)

    timings = interleaved(
        {"bare_forward": bare, "pass_features_10": pass_of([LAYER]), "pass_all_blocks": pass_of(blocks)},
        device,
        max(3, repeats // 3),
        warmup=1,
    )
    folder = work / "photos"  # the whole pass, decoding and preprocessing included, through the build's path
    folder.mkdir()
    for index, name in enumerate(vis_core.sample_names() * (PASS_IMAGES // len(vis_core.sample_names()) + 1)):
        if index < PASS_IMAGES:
            vis_core.sample_image(name.split(" ")[0]).save(folder / f"{index:03d}.jpg", quality=90)
    refs = resolve(folder).refs
    start = time.perf_counter()
    for first in range(0, len(refs), atlas_examples.BATCH):
        atlas_examples.run_batch(twin, refs[first : first + atlas_examples.BATCH], first, [LAYER])
    sync(device)
    with_decoding = time.perf_counter() - start
    median = {name: values["median_ms"] for name, values in timings.items()}
    return {
        "images": PASS_IMAGES,
        "batch": atlas_examples.BATCH,
        "layer_shape": [channels, height, width],
        "all_blocks": len(blocks),
        "timings": timings,
        "pass_over_bare": round(median["pass_features_10"] / median["bare_forward"], 3),
        "pass_all_blocks_over_bare": round(median["pass_all_blocks"] / median["bare_forward"], 3),
        "pass_with_decoding_ms": round(with_decoding * 1e3, 1),
    }


def _ray(handle: vis_core.ModelHandle, work: Path) -> dict[str, Any]:
    import ray

    def build(name: str, executor: str) -> float:
        summary = vis_core.build_atlas(
            handle, layers=[LAYER], images="sample", out=work / name, steps=RAY_STEPS, size=SIZE, executor=executor
        )
        return summary.seconds

    local = build("ray-local", "local")
    cold = build("ray-cold", "ray")  # starts and stops a local Ray of 2 CPUs
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        build("ray-warmup", "ray")  # workers started, the model in the object store once
        warm = build("ray-warm", "ray")
    finally:
        ray.shutdown()
    return {
        "steps": RAY_STEPS,
        "size": SIZE,
        "units": handle.layers[LAYER].output_shape[0],
        "local_seconds": round(local, 3),
        "ray_seconds_with_start": round(cold, 3),
        "ray_seconds_running": round(warm, 3),
        "ray_over_local_with_start": round(cold / local, 3),
        "ray_over_local_running": round(warm / local, 3),
    }


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    handle = vis_core.load_model(device=device)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        renders = _renders(handle, device, work)
        collection = _collection(handle, device, repeats, work)
        ray = _ray(handle, work)
    return {
        "model": handle.key,
        "layer": LAYER,
        "smoke": SMOKE,
        "renders": renders,
        "collection": collection,
        "ray": ray,
        "targets": {"throughput_over_lucent": ">= 8", "pass_over_bare": "<= 1.2"},
        "meets_target": renders["throughput_over_lucent"] >= 8 and collection["pass_over_bare"] <= 1.2,
    }
