"""Feature maps of every layer in one pass vs a bare forward of the same model and image.

Both sides include preprocessing (the PIL image to the model's input tensor), and both run
under ``torch.no_grad``. Target: ratio at most 1.15x. Also measured: the block-level layers
only (what the dashboard's layer chart shows), and one layer with early stopping.
"""

from __future__ import annotations

from typing import Any

import torch

import vis_core

from .common import interleaved

TARGET_RATIO = 1.15


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    handle = vis_core.load_model(device=device)
    image = vis_core.sample_image("chelsea")
    blocks = [info.name for info in handle.blocks() if len(info.output_shape) in (1, 3)]

    def bare() -> None:
        with torch.no_grad():
            handle.model(handle.preprocess(image))

    timings = interleaved(
        {
            "bare_forward": bare,
            "feature_maps_all_layers": lambda: vis_core.feature_maps(handle, image),
            "feature_maps_blocks": lambda: vis_core.feature_maps(handle, image, blocks),
            "feature_maps_features.10_only": lambda: vis_core.feature_maps(handle, image, ["features.10"]),
        },
        device,
        repeats,
    )
    base = timings["bare_forward"]["median_ms"]
    all_layers = len(vis_core.feature_maps(handle, image).activations)
    ratios = {name: round(values["median_ms"] / base, 3) for name, values in timings.items()}
    return {
        "model": handle.key,
        "image": "skimage chelsea",
        "layers_captured_all": all_layers,
        "layers_captured_blocks": len(blocks),
        "repeats": repeats,
        "timings": timings,
        "ratio_vs_bare": ratios,
        "target": {"feature_maps_all_layers": f"<= {TARGET_RATIO}x bare forward"},
        "meets_target": ratios["feature_maps_all_layers"] <= TARGET_RATIO,
    }
