"""Filters of any convolution layer: kinds, reductions, colour images, dead filters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import vis_core
from vis_core.filters import conv_layers, filters

from .conftest import make_handle


def test_kinds_on_the_default_model(handle):
    first = filters(handle, "features.0.0")
    assert first.kind == "rgb" and first.weight.shape == (32, 3, 3, 3)
    np.testing.assert_array_equal(first.weight, handle.modules["features.0.0"].weight.numpy())
    assert filters(handle, "features.10.conv.1.0").kind == "depthwise"
    assert filters(handle, "features.10.conv.0.0").kind == "pointwise"
    assert conv_layers(handle, "features.10") == ["features.10.conv.0.0", "features.10.conv.1.0", "features.10.conv.2"]
    assert len(conv_layers(handle)) == 52


def test_rgb_normalisation(handle):
    kernels = filters(handle, "features.0.0")
    per_filter, per_layer = kernels.rgb("filter"), kernels.rgb("layer")
    assert per_filter.shape == (32, 3, 3, 3) and per_filter.min() >= 0 and per_filter.max() <= 1
    extremes = np.abs(per_filter - 0.5).reshape(32, -1).max(axis=1)
    np.testing.assert_allclose(extremes, 0.5, atol=1e-6)  # every kernel reaches the end of the range
    assert (
        np.isclose(np.abs(per_layer - 0.5).max(), 0.5) and (np.abs(per_layer - 0.5).reshape(32, -1).max(1) < 0.49).any()
    )
    zero = np.argwhere(kernels.weight.transpose(0, 2, 3, 1) == 0)
    assert all(per_filter[tuple(i)] == 0.5 for i in zero)


def test_reductions_and_matrix(handle):
    kernels = filters(handle, "features.1.conv.1")  # 1x1 projection 32 -> 16
    assert kernels.kind == "pointwise" and kernels.matrix().shape == (16, 32)
    standard = nn.Conv2d(4, 6, 3)
    small = make_handle(nn.Sequential(nn.Conv2d(3, 4, 1), standard, nn.ReLU(), nn.Flatten()), size=8)
    kernels = filters(small, "1")
    assert kernels.kind == "standard"
    weight = standard.weight.detach().numpy()
    np.testing.assert_allclose(kernels.reduced("l2"), np.sqrt((weight**2).sum(axis=1)), rtol=1e-6)
    np.testing.assert_allclose(kernels.reduced("mean"), weight.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(kernels.norms, np.linalg.norm(weight.reshape(6, -1), axis=1), rtol=1e-6)
    assert not kernels.signed("l2") and kernels.signed("mean")  # an L2 norm over 4 inputs is a magnitude
    assert (kernels.reduced("l2") >= 0).all() and (kernels.reduced("mean") < 0).any()


def test_dead_filters_are_found():
    conv = nn.Conv2d(1, 5, 3)
    with torch.no_grad():
        conv.weight[2].zero_()
    small = make_handle(nn.Sequential(conv, nn.Flatten()), size=8, grayscale=True)
    kernels = filters(small, "0")
    assert kernels.kind == "gray" and kernels.dead() == [2]
    assert kernels.signed("l2") and kernels.signed("mean")  # one input channel: the signed kernel itself
    np.testing.assert_array_equal(kernels.reduced(), conv.weight.detach().numpy()[:, 0])


def test_not_a_convolution(handle):
    with pytest.raises(vis_core.ParameterError, match=r"It contains: features\.10\.conv\.0\.0"):
        filters(handle, "features.10")
    with pytest.raises(vis_core.ParameterError, match="Unknown layer"):
        filters(handle, "features.99")
