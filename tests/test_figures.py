"""Figure builders: the numbers a viewer reads on hover and the marks that orient them."""

from __future__ import annotations

import numpy as np

from dashboard import figures
from vis_core import LayerStats


def test_mosaic_places_every_channel_with_its_label_and_raw_values():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(10, 5, 7)).astype(np.float32)
    shown = [7, 2, 9, 0]
    figure = figures.channel_mosaic(activations, shown, columns=3, highlight=9)
    heatmap, labels = figure.data
    custom = np.asarray(heatmap.customdata)
    assert list(labels.text) == ["7", "2", "9", "0"]
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
    np.testing.assert_array_equal(np.asarray(figure.data[0].z), np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    (box,) = figure.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (2.5, 8.5, 1.5, 6.5)
