"""Long work inside a page run, with a progress bar, a live preview and a stop button.

The work runs in the script itself; the engine calls ``on_step`` after every step and we
update the bar and the preview there. Clicking Stop (or anything else) starts a new run of
the page, and Streamlit ends the old one at its next update: the engine's guard restores
the model on the way out, nothing stacks, and the last finished result stays on the page.
What the stopped work had made so far is kept too (:func:`partial`): its latest preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import streamlit as st

T = TypeVar("T")


def preview_image(images) -> np.ndarray:
    """The first image of a ``(B, C, H, W)`` tensor in [0, 1] as ``(H, W, 3)``."""
    array = images[0].detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


@dataclass(frozen=True)
class Partial:
    """What stopped work had made: its latest preview, after ``step`` of ``total`` steps."""

    image: np.ndarray
    step: int
    total: int


def partial(key: str) -> Partial | None:
    """The picture the last run of ``key`` had made when it was stopped (None if it finished)."""
    return st.session_state.get(f"{key}_partial")


def run(label: str, work: Callable[[Callable], T], *, key: str, preview_width: int = 320) -> T:
    """Run ``work(on_step)`` with a progress bar, a preview and a Stop button.

    Each preview is also kept as :func:`partial`, so a Stop keeps the picture made so far;
    it is dropped when the work finishes.
    """
    bar = st.progress(0.0, text=label)
    stop = st.empty()  # gone with the bar when the work ends: a Stop button with nothing to stop misleads
    stop.button("Stop", key=f"{key}_stop", help="Stops now; the picture made so far stays.")
    slot = st.empty()
    st.session_state.pop(f"{key}_partial", None)

    def on_step(step: int, total: int, preview) -> None:
        bar.progress(step / total, text=f"{label}: step {step} of {total}")
        if preview is not None:
            image = preview_image(preview)
            st.session_state[f"{key}_partial"] = Partial(image, step, total)
            slot.image(image, caption="work in progress", width=preview_width)

    try:
        result = work(on_step)
        st.session_state.pop(f"{key}_partial", None)
        return result
    finally:
        bar.empty()
        stop.empty()
        slot.empty()


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` float image in [0, 1] as PNG bytes, for download buttons."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
