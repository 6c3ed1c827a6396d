"""Feature maps of every layer in one pass vs a bare forward of the same model and image.

Both sides include preprocessing (the PIL image to the model's input tensor), and both run
under ``torch.no_grad``. Target: ratio at most 1.15x. Also measured: the block-level layers
only (what the sidebar lists by default), and one layer with early stopping. Minor page
faults per call are recorded too: a capture keeps every output, and when the allocator cannot
recycle that memory each new page costs a trip into the kernel.

Two floors show what any eager capture of every module must pay on this machine: the bare
forward with a no-op hook on every module (the Python cost of observing every module), and
with hooks that only keep a reference to each output (the memory cost of keeping every
output instead of recycling a few cache-hot buffers; in-place ReLUs left on, so some kept
values are even wrong). Neither clones, converts or checks anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import vis_core

from .common import interleaved

TARGET_RATIO = 1.15


def measure(device: torch.device, repeats: int) -> dict[str, Any]:
    handle = vis_core.load_model(device=device)
    image = vis_core.sample_image("chelsea")
    blocks = [info.name for info in handle.blocks() if len(info.output_shape) in (1, 3)]

    def bare() -> None:
        with torch.no_grad():
            handle.model(handle.preprocess(image))

    def floor(keep: bool) -> Callable[[], None]:
        modules = [m for name, m in handle.modules.items() if name and not handle.layers[name].alias_of]

        def run() -> None:
            kept: list[torch.Tensor] = []
            hook = (lambda module, args, output: kept.append(output)) if keep else (lambda module, args, output: None)
            handles = [module.register_forward_hook(hook) for module in modules]
            try:
                bare()
            finally:
                for removable in handles:
                    removable.remove()

        return run

    timings = interleaved(
        {
            "bare_forward": bare,
            "floor_noop_hooks": floor(keep=False),
            "floor_keep_outputs": floor(keep=True),
            "feature_maps_all_layers": lambda: vis_core.feature_maps(handle, image),
            "feature_maps_blocks": lambda: vis_core.feature_maps(handle, image, blocks),
            "feature_maps_features.10_only": lambda: vis_core.feature_maps(handle, image, ["features.10"]),
        },
        device,
        repeats,
    )
    base = timings["bare_forward"]["median_ms"]
    maps = vis_core.feature_maps(handle, image)
    return {
        "model": handle.key,
        "layers_captured_all": len(maps.activations),
        "captured_megabytes_all": round(sum(a.nbytes for a in maps.activations.values()) / 1e6, 1),
        "layers_captured_blocks": len(blocks),
        "timings": timings,
        "ratio_vs_bare": {name: round(values["median_ms"] / base, 3) for name, values in timings.items()},
    }


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    result = measure(device, repeats)
    ratio = result["ratio_vs_bare"]["feature_maps_all_layers"]
    return {
        "image": "skimage chelsea",
        "repeats": repeats,
        **result,
        "target": {"feature_maps_all_layers": f"<= {TARGET_RATIO}x bare forward"},
        "meets_target": ratio <= TARGET_RATIO,
    }
