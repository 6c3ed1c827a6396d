"""The verb: :func:`attribute` (the exact map) and :func:`attribute_stages` (a fast first
picture, then refinements, the exact map last)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from ..errors import ParameterError
from ..models import ModelHandle
from .gradients import IG_COMPLETENESS
from .registry import (
    METHODS,
    Attribution,
    Method,
    ProgressCallback,
    RawMap,
    default_layer,
    resolve_target,
    scale,
    upsample,
)


def attribute(
    handle: ModelHandle,
    image: Image.Image,
    method: str,
    *,
    target: int | str | None = None,
    layer: str | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Attribution:
    """Explain the model's score for ``target`` on ``image`` with ``method``.

    Args:
        handle: the model.
        image: an RGB PIL image.
        method: a name from :data:`METHODS`.
        target: class index, class name, or None for the top prediction.
        layer: the layer for CAM-family methods (default: the last spatial block).
        progress: ``progress(done, total)`` for long methods (Score-CAM).
        should_stop: polled by long methods; they raise :class:`vis_core.optim.Stopped` when it
            returns True.
        **options: method options (``samples``/``noise`` for SmoothGrad, ``steps`` for
            integrated gradients, ``window`` for occlusion).

    Raises:
        ParameterError: unknown method, class or layer, or a method that cannot work on this
            model (the message says why, e.g. CAM without global pooling).
    """
    return attribute_tensor(
        handle,
        handle.preprocess(image),
        method,
        image_size=image.size,
        target=target,
        layer=layer,
        progress=progress,
        should_stop=should_stop,
        **options,
    )


def attribute_stages(
    handle: ModelHandle,
    image: Image.Image,
    method: str,
    *,
    target: int | str | None = None,
    layer: str | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Iterator[Attribution]:
    """:func:`attribute`, progressively: a method that refines (:attr:`Method.refines`) first
    yields fast approximations (``exact`` False, ``approximation`` saying what they are), then
    the exact map; any other method yields its exact map alone."""
    yield from _stages(
        handle,
        handle.preprocess(image),
        method,
        progressive=True,
        image_size=image.size,
        target=target,
        layer=layer,
        progress=progress,
        should_stop=should_stop,
        **options,
    )


def attribute_tensor(
    handle: ModelHandle,
    inputs: torch.Tensor,
    method: str,
    *,
    image_size: tuple[int, int] | None = None,
    target: int | str | None = None,
    layer: str | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Attribution:
    """:func:`attribute` for a preprocessed ``(1, C, h, w)`` input (``image_size`` maps it back)."""
    (result,) = _stages(
        handle,
        inputs,
        method,
        progressive=False,
        image_size=image_size,
        target=target,
        layer=layer,
        progress=progress,
        should_stop=should_stop,
        **options,
    )
    return result


def _stages(
    handle: ModelHandle,
    inputs: torch.Tensor,
    method: str,
    *,
    progressive: bool,
    image_size: tuple[int, int] | None,
    target: int | str | None,
    layer: str | None,
    **options,
) -> Iterator[Attribution]:
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    spec = METHODS[method]
    start = time.perf_counter()
    if spec.runs_long:
        handle = handle.for_long_work()
    inputs = inputs.to(handle.device)
    # The top class is found in the method's own forward pass where it can be (Method.finds_top).
    target_index = None if target is None and spec.finds_top else resolve_target(handle, target, inputs)
    used_layer = default_layer(handle, layer) if spec.uses_layer else None
    for output in spec.run(handle, inputs, target_index, layer=used_layer, progressive=progressive, **options):
        yield _finish(handle, spec, output, inputs, image_size, used_layer, start)


def _finish(
    handle: ModelHandle,
    spec: Method,
    output: RawMap,
    inputs: torch.Tensor,
    image_size: tuple[int, int] | None,
    layer: str | None,
    start: float,
) -> Attribution:
    """A method's raw map as an :class:`Attribution`: at the model's input and the image's
    resolution, with the notes a viewer must read."""
    raw, target = np.asarray(output.values, dtype=np.float32), output.target
    label = handle.labels[target]
    note = None
    if output.exact and output.completeness_error is not None and output.completeness_error > IG_COMPLETENESS:
        note = (
            f"The attributions add up to the score change only within {output.completeness_error:.1%} "
            f"(the goal is {IG_COMPLETENESS:.0%}), even with {output.steps} steps, the most allowed: "
            "read the map as approximate."
        )
    if not np.isfinite(raw).all():
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        note = "Some values were not finite (NaN or infinite) and are shown as zero."
    size = tuple(inputs.shape[-2:])
    if spec.cam_style:
        if float(raw.max()) <= 0:
            note = (
                f"{spec.label} is zero everywhere: no part of {layer} speaks for "
                f"'{label}' (its evidence is all negative). Try another class or an earlier layer."
            )
        model_map = scale(upsample(np.maximum(raw, 0), size))  # pytorch-grad-cam's display of a CAM
    else:
        model_map = raw if raw.shape == size else upsample(raw, size)
        if float(np.abs(model_map).max()) == 0:
            note = (
                f"{spec.label} is zero everywhere for '{label}': the class score does not "
                "react to any pixel here (e.g. saturated or dead units)."
            )
    model_map = model_map.astype(np.float32)
    return Attribution(
        map=model_map if image_size is None else handle.to_image_space(model_map, image_size),
        model_map=model_map,
        raw=raw if spec.cam_style else None,
        method=spec.name,
        target=target,
        target_label=label,
        layer=layer,
        signed=spec.signed,
        note=note,
        seconds=time.perf_counter() - start,
        completeness_error=output.completeness_error,
        steps=output.steps,
        exact=output.exact,
        approximation=output.approximation,
    )
