"""The Training lab's run: its numbers and curves, Use and Delete, how its first-layer filters
evolved (an animation, how far they moved) and one test image's feature maps through time."""

from __future__ import annotations

import streamlit as st

from dashboard import figures, state
from dashboard.data import cache
from dashboard.sidebar import model_choice
from dashboard.views.declare import Page, View, widget
from dashboard.words import escape
from vis_core import evolution, runs

INIT_HELP = {
    "faint": "faint noise (Glorot, first layer ×0.1)",
    "glorot": "Glorot (Keras' default, as in the notebook)",
    "pytorch": "PyTorch's default",
}


def key(run: runs.Run) -> str:
    """A run's cache key: its name and when its last snapshot was written."""
    return f"{run.name}@{run.snapshots[-1].weights.stat().st_mtime_ns}"


def summary(run: runs.Run) -> None:
    """Test accuracy, epochs, snapshots and time; the data and settings in words; the curves."""
    settings, last = run.settings, run.snapshots[-1]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Test accuracy", f"{last.metrics['test_accuracy']:.1%}")
    c2.metric("Epochs", f"{last.epoch:g}" + (" (stopped)" if run.stopped else ""))
    c3.metric("Snapshots", len(run.snapshots))
    c4.metric("Training time", f"{settings.get('seconds', 0):.0f} s")
    st.caption(
        f"**Data**: {settings['dataset_description']}. **Normalisation**: mean {settings['mean']}, "
        f"std {settings['std']} (from the training images). **Network**: {settings['arch']}; Adam, learning rate "
        f"{settings['lr']}, batch {settings['batch_size']}, seed {settings['seed']}, starting weights "
        f"{INIT_HELP.get(settings.get('init', 'pytorch'), settings.get('init'))}."
    )
    st.plotly_chart(figures.training_curves(evolution.training_curves(run)), width="stretch", key="lab_curves")
    b1, b2 = st.columns([1, 1])
    if b1.button("Use this network in the sidebar", key="lab_use"):
        model_choice.choose_model(cache.RUN_PREFIX + run.name)
    with b2.popover("Delete this run"):
        st.write(f"Delete **{escape.markdown(run.name)}** and all its snapshots? This cannot be undone.")
        if st.button("Yes, delete it", type="primary", key="lab_delete"):
            runs.delete_run(run.path)
            model_choice.run_models.clear()
            st.session_state.pop(state.LAB_RUN, None)  # the Run setting goes back to its start
            st.rerun()


def evolution_of_filters(view: View, run: runs.Run) -> None:
    """The first layer's filters at every snapshot, and how far they moved."""
    st.header("How the filters evolved")
    layer, history = cache.kernel_history(key(run), run)
    labels = [f"{s.label} · {s.metrics['test_accuracy']:.1%} test accuracy" for s in run.snapshots]
    st.caption(
        f"The {history.shape[1]} filters of the first layer, **{layer}**, at every snapshot. Press play, "
        "or drag the slider: red adds brightness, blue subtracts, the same colour scale throughout."
    )
    frames = history[:, :, 0] if history.shape[2] == 1 else history.transpose(0, 1, 3, 4, 2)
    if frames.ndim == 5:  # colour kernels: scale to [0, 1] with zero at grey
        frames = 0.5 + 0.5 * frames / max(float(abs(frames).max()), 1e-12)
    st.plotly_chart(figures.kernel_animation(frames, labels), width="stretch", key="lab_animation")
    changes = evolution.weight_change(history)
    if not len(changes):
        st.info("This run was stopped before its first training step: only the untrained network was kept.")
        return
    moved = evolution.relative_change(history)
    likeness, smooth = evolution.likeness_to_start(history), evolution.smoothness(history)
    names = [s.label for s in run.snapshots]
    st.plotly_chart(figures.layer_change_chart(moved, likeness, smooth, names), width="stretch", key="lab_moved")
    st.caption(
        f"How far {layer} moved: {names[1]} changed its weights by {moved[0]:.0%} of their starting size, "
        f"{names[-1]} by {moved[-1]:.0%}. After {names[-1]} its kernels correlate {likeness[-1]:.2f} with their "
        f"random start (1 would mean unchanged), and neighbouring weights inside a kernel correlate "
        f"{smooth[-1]:.2f}, up from {smooth[0]:.2f} (random noise is near 0, smooth strokes near 1)."
    )
    steps = [f"{a.label}→{b.label}" for a, b in zip(run.snapshots, run.snapshots[1:])]
    highlight = view.channel if view.handle.key.startswith(cache.RUN_PREFIX) else None
    st.plotly_chart(figures.weight_change_chart(changes, steps, highlight=highlight), width="stretch", key="lab_change")


def test_image(view: View, page: Page, run: runs.Run) -> None:
    """One test image's feature maps at every snapshot (the declared test image and layer)."""
    st.subheader("One test image through time")
    images, _ = cache.test_samples(key(run), run)
    labels = [f"{s.label} · {s.metrics['test_accuracy']:.1%} test accuracy" for s in run.snapshots]
    c1, c2 = st.columns([1, 3])
    with c1:
        widget(view, page, "lab_image")
        picture = images[view.get("lab_image")]
        st.image(picture if picture.shape[2] == 3 else picture[:, :, 0], width=140, clamp=True)
        widget(view, page, "lab_map_layer")
    layer = view.get("lab_map_layer")
    with c2:
        maps = cache.feature_map_history(key(run), view.get("lab_image"), layer, run)
        shown = maps[:, : min(32, maps.shape[1])]
        st.plotly_chart(figures.mosaic_animation(shown, labels, tile_px=64), width="stretch", key="lab_maps")
        st.caption(
            f"Feature maps of {layer} for this image at every snapshot, on one colour scale: press play. "
            "Untrained, they are blurry copies of the image; as the filters sharpen, each map picks out its "
            "own strokes or edges."
        )
