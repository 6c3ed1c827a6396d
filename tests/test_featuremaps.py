"""The channel summary and paging the feature-maps and filters pages read from the engine."""

from __future__ import annotations

import numpy as np
import pytest

import vis_core
from vis_core.featuremaps import ChannelPages, FeatureMaps


def _maps(array: np.ndarray) -> FeatureMaps:
    return FeatureMaps(activations={"layer": array}, logits=None, model="test", seconds=0.0)


def test_channel_summary_ranks_and_flags_odd_maps():
    array = np.stack(
        [
            np.full((4, 4), 2.0),  # flat, strongest mean
            np.arange(16.0).reshape(4, 4) / 16,  # ordinary, largest max after the NaN one
            np.zeros((4, 4)),  # flat at zero (a ReLU switched off everywhere)
            np.where(np.eye(4) > 0, np.nan, 0.0),  # not a number on the diagonal
        ]
    ).astype(np.float32)
    summary = _maps(array).channel_summary("layer")
    assert summary.finite.tolist() == [True, True, True, False]
    assert summary.flat.tolist() == [True, False, True, False]
    np.testing.assert_allclose(summary.mean[:3], [2.0, 7.5 / 16, 0.0])
    assert summary.max[2] == 0 and summary.zero_fraction.tolist()[1:3] == [1 / 16, 1.0]
    assert [summary.rank(c) for c in range(3)] == [1, 2, 3]
    assert summary.strongest(2) == [0, 1] and summary.strongest(3, by="max") == [0, 1, 2]
    assert _maps(array).top_channels("layer", 3, by="max") == summary.strongest(3, by="max")
    with pytest.raises(vis_core.ParameterError, match="Unknown ranking"):
        summary.strongest(1, by="median")


def test_channel_summary_of_a_real_layer(handle, cat):
    maps = vis_core.feature_maps(handle, cat, ["features.10"])
    array = maps.activations["features.10"]
    summary = maps.channel_summary("features.10")
    means = array.reshape(64, -1).mean(axis=1)
    assert summary.rank(5) == 1 + int((means > array[5].mean()).sum())
    assert summary.mean[5] == pytest.approx(float(array[5].mean()))
    assert summary.max[5] == array[5].max() and summary.finite.all()


def test_channel_pages():
    paging = ChannelPages(count=40, size=16)
    assert paging.pages == 3
    assert paging.page_of(0) == 1 and paging.page_of(15) == 1 and paging.page_of(16) == 2 and paging.page_of(39) == 3
    assert paging.channels(1) == list(range(16)) and paging.channels(3) == list(range(32, 40))
    assert ChannelPages(count=5, size=8).pages == 1 and ChannelPages(count=5, size=8).channels(1) == [0, 1, 2, 3, 4]
