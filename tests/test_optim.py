"""Optimisation core, feature visualisation, deep dream and inversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vis_core
from vis_core import hook_count, objectives, optim, state_dict_hash, transforms
from vis_core.dream import deep_dream
from vis_core.featurevis import feature_visualization
from vis_core.inversion import reconstruct
from vis_core.param import _COLOR_SQRT, ImageParam

from .conftest import ReusedReLUNet, make_handle

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "camera"]


def _clean(handle) -> bool:
    return (
        hook_count(handle.model) == 0
        and all(p.grad is None for p in handle.model.parameters())
        and all(not p.requires_grad for p in handle.model.parameters())
        and not handle.model.training
    )


def _channel_mean(handle, image: np.ndarray, layer: str, index: int) -> float:
    x = handle.normalise(torch.tensor(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        return float(optim.activations(handle, x, frozenset([layer]))[layer][0, index].mean())


@pytest.fixture(scope="module")
def rendered(handle):
    return feature_visualization(handle, layer="features.10", channel=5, steps=64, size=224, seed=0)


def test_feature_visualisation_beats_photos_and_noise(handle, rendered):
    assert rendered.image.shape == (224, 224, 3) and rendered.image.dtype == np.float32
    assert rendered.image.min() >= 0 and rendered.image.max() <= 1
    assert rendered.objective[-1] > rendered.objective[0]
    score = _channel_mean(handle, rendered.image, "features.10", 5)
    for photo in PHOTOS:
        maps = vis_core.feature_maps(handle, vis_core.sample_image(photo), ["features.10"])
        assert score > float(maps.activations["features.10"][5].mean()), photo
    rng = np.random.default_rng(0)
    noise = [_channel_mean(handle, rng.random((224, 224, 3)).astype(np.float32), "features.10", 5) for _ in range(12)]
    assert score > np.mean(noise) + 10 * np.std(noise)
    assert _clean(handle) and state_dict_hash(handle.model) == handle.state_hash


def test_same_seed_same_image_and_other_seed_differs(handle):
    a = feature_visualization(handle, layer="features.4", channel=3, steps=6, size=64, seed=7)
    b = feature_visualization(handle, layer="features.4", channel=3, steps=6, size=64, seed=7)
    c = feature_visualization(handle, layer="features.4", channel=3, steps=6, size=64, seed=8)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_forward_stops_at_the_deepest_layer(handle):
    calls = []
    model = optim.rendering_twin(handle).model  # renders run on the long-work twin, BatchNorm folded
    hook = model.classifier[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        feature_visualization(handle, layer="features.10", channel=5, steps=3, size=64)
        assert calls == []  # the classifier never ran
        feature_visualization(handle, layer="features.10", channel=285, steps=2, size=64, mode="class")
        assert len(calls) == 2  # a class objective needs the logits
    finally:
        hook.remove()
    assert hook_count(model) == 0 and hook_count(handle.model) == 0


def test_gallery_and_diversity(handle):
    gallery = feature_visualization(handle, layer="features.7", channel=list(range(4)), steps=8, size=64)
    assert len(gallery.images) == 4 and gallery.channels == (0, 1, 2, 3)
    for index, image in enumerate(gallery.images):  # each image drives its own channel more than the others do
        own = _channel_mean(handle, image, "features.7", index)
        assert own > np.mean([_channel_mean(handle, other, "features.7", index) for other in gallery.images])
    diverse = feature_visualization(handle, layer="features.7", channel=2, steps=8, size=64, diversity=3)
    assert len(diverse.images) == 3 and not np.allclose(diverse.images[0], diverse.images[1])


def test_objectives_compose():
    acts = {"a": torch.arange(24.0).view(1, 2, 3, 4)}
    combined = objectives.channel("a", 0) + 2 * objectives.channel("a", 1) - objectives.layer_l2("a")
    expected = acts["a"][0, 0].mean() + 2 * acts["a"][0, 1].mean() - acts["a"].pow(2).mean()
    assert torch.allclose(combined(acts), expected[None]) and combined.layers == frozenset({"a"})
    assert float(objectives.neuron("a", 1)(acts)) == float(acts["a"][0, 1, 1, 2])
    assert float(objectives.feature_match("a", acts["a"])(acts)) == 0.0
    assert float((-objectives.channel("a", 0))(acts)) == -float(acts["a"][0, 0].mean())


def test_caps_are_enforced(handle, cat):
    with pytest.raises(vis_core.ParameterError, match="steps"):
        feature_visualization(handle, layer="features.10", channel=5, steps=10_000)
    with pytest.raises(vis_core.ParameterError, match="size"):
        feature_visualization(handle, layer="features.10", channel=5, size=4096)
    with pytest.raises(vis_core.ParameterError, match="octaves"):
        deep_dream(handle, cat, layer="features.7", octaves=20)
    with pytest.raises(vis_core.ParameterError, match="at most"):
        feature_visualization(handle, layer="features.18", channel=list(range(100)), steps=2)
    with pytest.raises(vis_core.ParameterError, match="spatial"):
        feature_visualization(handle, layer="classifier.1", channel=1)


def test_stop_is_honoured_mid_run(handle):
    steps = []
    with pytest.raises(optim.Stopped):
        feature_visualization(
            handle,
            layer="features.10",
            channel=5,
            steps=100,
            size=64,
            on_step=lambda step, total, preview: steps.append(step),
            should_stop=lambda: len(steps) >= 3,
        )
    assert steps == [1, 2, 3] and _clean(handle)


def test_deep_dream(handle, cat):
    result = deep_dream(handle, cat, layer="features.7", octaves=2, steps=3, seed=1, tile_size=128)
    assert result.image.shape == (cat.height, cat.width, 3) and 0 <= result.image.min() <= result.image.max() <= 1
    original = np.asarray(cat, dtype=np.float32) / 255
    assert np.abs(result.image - original).mean() > 0.01  # it changed the picture
    before = _channel_l2(handle, original)
    assert _channel_l2(handle, result.image) > before  # and the layer sees more
    again = deep_dream(handle, cat, layer="features.7", octaves=2, steps=3, seed=1, tile_size=128)
    np.testing.assert_array_equal(result.image, again.image)
    assert _clean(handle)


def _channel_l2(handle, image: np.ndarray) -> float:
    x = handle.normalise(torch.tensor(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        return float(optim.activations(handle, x, frozenset(["features.7"]))["features.7"].pow(2).mean())


def test_reconstruction_loses_detail_with_depth(handle, cat):
    early = reconstruct(handle, cat, layer="features.2", steps=80, seed=0)
    late = reconstruct(handle, cat, layer="features.14", steps=80, seed=0)
    assert early.image.shape == late.image.shape == (224, 224, 3)
    assert early.pixel_error < late.pixel_error
    assert _clean(handle)


def test_an_early_layer_is_inverted_closely(handle, cat):
    # features.1 has stride 2: a jitter of whole map cells would leave it misaligned (0.88 before)
    result = reconstruct(handle, cat, layer="features.1", steps=150, seed=0)
    assert result.feature_error < 0.1
    assert result.pixel_error < 0.02


def test_tricky_models():
    for channels in (3, 1):
        tiny = make_handle(ReusedReLUNet(channels, 32), size=32, grayscale=channels == 1)
        result = feature_visualization(tiny, layer="conv2", channel=1, steps=10, size=32)
        assert result.objective[-1] > result.objective[0] and _clean(tiny)
        dream = deep_dream(tiny, vis_core.sample_image("coffee"), layer="conv2", octaves=2, steps=2)
        assert dream.image.shape[2] == 3 and _clean(tiny)
        rebuilt = reconstruct(tiny, vis_core.sample_image("coffee"), layer="conv1", steps=10)
        assert rebuilt.image.shape == (32, 32, 3)
        assert tiny.model.relu.inplace  # restored after the out-of-place capture


@pytest.mark.parametrize(("fft", "decorrelate"), [(True, True), (True, False), (False, True), (False, False)])
def test_parameterisation_matches_the_textbook_formula(fft, decorrelate):
    """Olah et al.: image = sigmoid(colour_mix(irfft2(spectrum * 1/f) / 4))."""
    param = ImageParam(2, (40, 36), fft=fft, decorrelate=decorrelate, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if fft:
            fy, fx = torch.fft.fftfreq(40)[:, None], torch.fft.rfftfreq(36)[None, :]
            scale = 1.0 / torch.sqrt(fx**2 + fy**2).clamp_min(1.0 / 40)
            raw = torch.fft.irfft2(torch.view_as_complex(param.spectrum) * scale, s=(40, 36), norm="ortho") / 4.0
        else:
            raw = param.pixels
        if decorrelate:
            raw = torch.einsum("bchw,dc->bdhw", raw, _COLOR_SQRT)
        expected = torch.sigmoid(raw)
        torch.testing.assert_close(param(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_one_resampling_equals_affine_grid_and_grid_sample(batch):
    x = torch.rand(batch, 3, 50, 60, requires_grad=True)
    a, b, tx, c, d, ty = 0.97, -0.17, 0.05, 0.17, 0.97, -0.08
    theta = torch.tensor([[a, b, tx], [c, d, ty]]).expand(batch, 2, 3)
    grid = torch.nn.functional.affine_grid(theta, [batch, 3, 48, 56], align_corners=False)
    reference = torch.nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    weights = torch.rand_like(reference)
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    out = transforms.resample(x, (a, b, tx, c, d, ty), 48, 56)
    (gradient,) = torch.autograd.grad((out * weights).sum(), x)
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-4)


def test_standard_transform_keeps_the_image_and_pads_with_grey():
    image = torch.rand(1, 3, 64, 64)
    g = torch.Generator().manual_seed(0)
    identity = transforms.random_affine([1.0], [0], (64, 64), shift_before=0, shift_after=0)
    torch.testing.assert_close(identity(image, g), image, rtol=1e-4, atol=1e-4)
    shrink = transforms.random_affine([0.5], [0], (64, 64), shift_before=0, shift_after=0)(image, g)
    signed = 2 * shrink - 1  # grey is 0
    assert signed[..., :10, :].abs().max() == 0 and signed[..., 20:44, 20:44].abs().mean() > 0.2  # grey border
    (transform,) = transforms.standard_transforms((64, 64))
    outputs = [transform(image, torch.Generator().manual_seed(seed)) for seed in (0, 0, 1)]
    assert outputs[0].shape == (1, 3, 64, 64) and torch.equal(outputs[0], outputs[1])  # seeded
    assert not torch.equal(outputs[0], outputs[2])


def test_reading_hooks_once_for_a_whole_loop(handle):
    x = torch.rand(1, 3, 224, 224)
    with handle.guard(), torch.no_grad():
        alone = optim.activations(handle, x, frozenset(["features.4"]))["features.4"]
        with optim.reading(handle, frozenset(["features.4", objectives.LOGITS])) as read:
            assert hook_count(handle.model) == 1
            first, second = read(x), read(x.flip(-1))
            assert hook_count(handle.model) == 1
        assert hook_count(handle.model) == 0
    torch.testing.assert_close(first["features.4"], alone)
    # the loop feeds the network channels-last on a CPU: same numbers as the plain layout
    assert optim.fast_layout(x).is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = handle.model.features[:5](x)
    torch.testing.assert_close(alone, plain, rtol=1e-4, atol=1e-4)
    assert first[objectives.LOGITS].shape == (1, 1000)
    assert not torch.allclose(second["features.4"], alone)  # each read is a fresh pass
