"""Figure builders: the numbers a viewer reads on hover and the marks that orient them."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from dashboard import figures
from vis_core import LayerStats


def test_mosaic_places_every_channel_with_its_label_and_raw_values():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(10, 5, 7)).astype(np.float32)
    shown = [7, 2, 9, 0]
    figure = figures.channel_mosaic(activations, shown, columns=3, highlight=9)
    heatmap, labels, targets = figure.data
    custom = np.asarray(heatmap.customdata)
    assert list(labels.text) == ["7", "2", "9", "0"]
    assert [c[0] for c in targets.customdata] == shown  # a click on a tile says which channel it is
    for slot, channel in enumerate(shown):
        cells = custom[..., 0] == channel
        assert cells.sum() == 5 * 7
        raw = custom[..., 3][cells].reshape(5, 7)  # hover shows the raw activation, tile by tile
        np.testing.assert_array_equal(raw, activations[channel])
        rows, cols = np.nonzero(cells)
        # the label sits at the tile's top-left corner
        assert (labels.x[slot], labels.y[slot]) == (cols.min() - 0.5, rows.min() - 0.5)
    z = np.asarray(heatmap.z)
    assert np.nanmin(z) == 0.0 and np.nanmax(z) == 1.0  # each tile scaled to its own range
    (outline,) = figure.layout.shapes
    tile = custom[..., 0] == 9
    rows, cols = np.nonzero(tile)
    assert (outline.x0, outline.y0) == (cols.min() - 0.5, rows.min() - 0.5)


def test_layer_profile_marks_the_selected_block_on_two_axes():
    stats = [LayerStats(f"b{i}", mean=0.1 * i, zero_fraction=0.05 * i, channels=8, spatial=4) for i in range(6)]
    figure = figures.layer_profile(stats, selected="b4")
    mean, zeros = figure.data
    assert list(mean.y) == [row.mean for row in stats] and zeros.yaxis == "y2"
    assert figure.layout.yaxis2.overlaying == "y" and tuple(figure.layout.yaxis2.range) == (0, 1)
    (line,) = figure.layout.shapes
    assert line.x0 == line.x1 == 4
    assert not figures.layer_profile(stats, selected="missing").layout.shapes


def test_picture_converts_floats_and_outlines_the_box_at_its_edges():
    rgb = np.linspace(-0.2, 1.2, 10 * 12 * 3).reshape(10, 12, 3)
    figure = figures.picture(rgb, box=(2, 3, 7, 9))
    source = figure.data[0].source  # a PNG the browser decodes: lossless, so exactly the pixels
    assert source.startswith("data:image/png;base64,") and figure.data[0].z is None
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))
    np.testing.assert_array_equal(sent, np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    assert figure.data[0].hovertemplate.startswith("x=%{x}, y=%{y}")  # the hover still names the pixel
    (box,) = figure.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (2.5, 8.5, 1.5, 6.5)


def _rgba_alpha(colour: str) -> float:
    return float(colour.rsplit(",", 1)[1].rstrip(")"))


def test_attribution_colours_fade_out_at_zero_so_the_photo_shows_through():
    photo = np.zeros((8, 8, 3), dtype=np.uint8)
    heat = np.linspace(0, 2, 16).reshape(4, 4)
    unsigned = figures.attribution_overlay(photo, heat, title="t").data[-1]
    alphas = [_rgba_alpha(colour) for _, colour in unsigned.colorscale]
    assert (unsigned.zmin, unsigned.zmax) == (0, 2)  # zero sits at the bottom of the scale...
    assert alphas[0] == 0 and alphas[-1] == 1  # ...where the colour is transparent, not Inferno's black
    assert alphas == sorted(alphas)
    assert "attribution" in unsigned.hovertemplate and "activation" not in unsigned.hovertemplate
    signed = figures.attribution_overlay(photo, heat - 1, title="t", signed=True).data[-1]
    alphas = {stop: _rgba_alpha(colour) for stop, colour in signed.colorscale}
    assert (signed.zmin, signed.zmax, signed.zmid) == (-1, 1, 0)
    assert alphas[0.5] == 0 and alphas[0.0] == alphas[1.0] == 1  # no white band over the photo at zero


def test_a_coarse_attribution_map_is_smoothed_by_the_browser_and_a_fine_one_drawn_pixel_for_pixel():
    photo = np.zeros((8, 8, 3), dtype=np.uint8)
    coarse = figures.attribution_overlay(photo, np.eye(2), title="t")
    assert coarse.data[-1].zsmooth == "fast" and np.asarray(coarse.data[-1].z).shape == (2, 2)
    assert (coarse.data[0].x0, coarse.data[0].dx) == (-0.375, 0.25)  # the photo spans the 2x2 grid
    fine = figures.attribution_overlay(photo, np.eye(8), title="t")
    assert fine.data[-1].zsmooth is False


def test_kernel_animation_calls_its_values_weights():
    history = np.random.default_rng(0).normal(size=(3, 4, 5, 5)).astype(np.float32)
    figure = figures.kernel_animation(history, ["untrained", "epoch 1", "epoch 2"])
    for trace in (figure.data[0], *(frame.data[0] for frame in figure.frames)):
        assert "weight" in trace.hovertemplate and "activation" not in trace.hovertemplate
        assert trace.colorbar.title.text == "weight"


def test_a_digit_models_top5_names_its_classes_on_a_category_axis():
    from vis_core import Prediction

    prediction = Prediction(
        indices=[3, 8, 5, 9, 2], labels=["3", "8", "5", "9", "2"], probabilities=[0.6, 0.2, 0.1, 0.05, 0.05]
    )
    figure = figures.prediction_bars(prediction)
    assert figure.layout.yaxis.type == "category"  # "3" is a class name, not the number 3 on a scale
    assert [label.strip() for label in figure.data[0].y] == ["2", "9", "5", "8", "3"]


def _report(deletion_aucs, insertion_aucs):
    from vis_core.metrics import Faithfulness, FaithfulnessReport

    fractions = np.linspace(0, 1, 5)

    def curve(method, d, i):
        return Faithfulness(method, 1, fractions, np.full(5, d), np.full(5, i), d, i)

    methods = ("gradcam", "saliency", "guided_backprop")
    curves = tuple(curve(m, d, i) for m, d, i in zip(methods, deletion_aucs, insertion_aucs))
    return FaithfulnessReport(curves, curve("random", 0.3, 0.5))


def test_faithfulness_chart_uses_display_names_equal_axes_and_a_verdict():
    report = _report((0.1, 0.2, 0.4), (0.7, 0.4, 0.4))
    figure = figures.faithfulness_curves(report)
    legend = [trace.name for trace in figure.data if trace.showlegend is not False]
    assert legend[0].startswith("Grad-CAM: deletion AUC 0.10") and legend[1].startswith("Saliency (gradient)")
    assert legend[-1].startswith("random map (baseline)")
    random = [trace for trace in figure.data if trace.name.startswith("random")]
    assert len(random) == 2 and all(trace.line.dash == "dash" for trace in random)
    assert tuple(figure.layout.yaxis.range) == tuple(figure.layout.yaxis2.range) == (0, 1.02)
    assert figure.layout.yaxis2.matches == "y"  # shared: one scale for both panels
    assert figure.layout.title.text.replace("<br>", " · ") == (  # broken into lines between its parts
        "Beat the random map on both tests: Grad-CAM · on deletion only: Saliency (gradient) · "
        "on neither: Guided backprop"
    )


def test_sanity_chart_keys_its_line_styles_and_gives_a_verdict():
    from vis_core.metrics import SanityCheck

    check = SanityCheck(
        steps=["", "classifier.1", "features.18"],
        spearman={"gradcam": [1.0, 0.4, 0.1], "guided_backprop": [1.0, 0.9, 0.8]},
        ssim={"gradcam": [1.0, 0.5, 0.2], "guided_backprop": [1.0, 0.9, 0.9]},
    )
    figure = figures.sanity_chart(check)
    legend = [trace.name for trace in figure.data if trace.showlegend is not False]
    assert legend == ["Grad-CAM", "Guided backprop", "solid: rank correlation", "dotted: SSIM"]
    assert [trace.line.dash for trace in figure.data if trace.name.endswith("SSIM")] == ["dot", "dot", "dot"]
    assert figure.layout.title.text == (
        "Change with the weights (pass): Grad-CAM<br>still look the same with random weights (fail): Guided backprop"
    )


def test_layer_change_chart_plots_the_measures_per_snapshot():
    figure = figures.layer_change_chart(
        np.array([0.5, 0.2]), np.array([1.0, 0.4, 0.3]), np.array([0.0, 0.5, 0.6]), ["untrained", "epoch 1", "epoch 2"]
    )
    moved, likeness, smooth = figure.data
    assert list(moved.x) == ["epoch 1", "epoch 2"] and list(moved.y) == [0.5, 0.2]
    assert list(likeness.y) == [1.0, 0.4, 0.3] and list(smooth.y) == [0.0, 0.5, 0.6]
    assert list(figure.layout.xaxis.categoryarray) == ["untrained", "epoch 1", "epoch 2"]  # in training order


def test_a_quick_first_versions_verdict_says_it_may_change():
    from dataclasses import replace

    quick = replace(_report((0.1, 0.2, 0.4), (0.7, 0.4, 0.4)), exact=False, approximation="5 points")
    assert figures.faithfulness_curves(quick).layout.title.text.startswith(
        "So far (quick first version): Beat the random map on both tests: Grad-CAM"
    )


def test_kernel_mosaics_say_weight_not_activation():
    from dashboard import figures

    weights = np.random.default_rng(0).normal(size=(3, 3, 3)).astype(np.float32)
    heatmap = figures.channel_mosaic(weights, [0, 1, 2], per_channel_scale=False, quantity="weight").data[0]
    assert heatmap.colorbar.title.text == "weight"
    assert "weight" in heatmap.hovertemplate and "activation" not in heatmap.hovertemplate
    default = figures.channel_mosaic(weights, [0, 1, 2], per_channel_scale=False).data[0]
    assert default.colorbar.title.text == "activation"
