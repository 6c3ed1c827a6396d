"""Engine contracts: model handle, layer index, guard, feature maps, hooks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.models import MobileNet_V2_Weights

import vis_core
from vis_core import ModelHandle, hook_count, state_dict_hash
from vis_core.hooks import StopForward, capture

from .conftest import ReusedReLUNet, make_handle


def test_engine_imports_without_ui_libraries():
    code = (
        "import sys, vis_core, vis_core.cli, vis_core.render, vis_core.featuremaps;"
        "bad=[m for m in ('streamlit','plotly') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_model_is_offline_mobilenet(handle: ModelHandle):
    assert handle.name == "mobilenet_v2"
    assert handle.weights == "MobileNet_V2_Weights.IMAGENET1K_V1"
    assert len(handle.labels) == 1000 and handle.labels[285] == "Egyptian cat"
    assert handle.input_size == (224, 224) and handle.resize_size == 256
    assert not handle.model.training
    assert all(not p.requires_grad for p in handle.model.parameters())


def test_preprocess_matches_torchvision_transforms(handle: ModelHandle, cat):
    reference = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()(cat).unsqueeze(0)
    ours = handle.preprocess(cat)
    assert ours.shape == (1, 3, 224, 224)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_prediction_on_real_photos(handle: ModelHandle, cat):
    prediction = vis_core.predict(handle, cat, k=5)
    assert prediction.labels[0] in {"Egyptian cat", "tabby", "tiger cat"}
    assert sum(prediction.probabilities) <= 1.0 + 1e-9
    assert list(prediction.probabilities) == sorted(prediction.probabilities, reverse=True)
    coffee = vis_core.predict(handle, vis_core.sample_image("coffee"), k=5)
    assert "espresso" in coffee.labels or "cup" in coffee.labels


def test_layer_index_of_default_model(handle: ModelHandle):
    layers = handle.layers
    assert layers["features.10"].output_shape == (64, 14, 14)
    assert layers["features.0"].output_shape == (32, 112, 112)
    assert layers["classifier.1"].output_shape == (1000,)
    assert layers["features.10"].is_block and not layers["features.10.conv.0.0"].is_block
    assert not layers["features"].is_block  # a plain container
    modules = dict(handle.model.named_modules())
    assert layers["features.10"].params == sum(p.numel() for p in modules["features.10"].parameters())
    orders = [info.order for info in layers.values()]
    assert orders == sorted(orders)
    # In-place ReLU6 modules run out of place while capturing: nothing is overwritten.
    assert not any(info.overwritten_in_place for info in layers.values())
    assert handle.last_spatial_layer() == "features.18"


def test_reused_module_and_calls_are_indexed():
    tiny = make_handle(ReusedReLUNet(3, 32))
    assert tiny.layers["relu"].calls == 3
    assert tiny.layers["relu"].output_shape == (8, 32, 32)  # first call
    assert tiny.layers["conv3"].overwritten_in_place  # by torch.relu_, which cannot be switched off
    assert not tiny.layers["bn1"].overwritten_in_place  # the in-place ReLU module runs out of place
    assert tiny.model.relu.inplace  # and is restored afterwards
    # ...but only when a captured output needs it: the in-place ReLU overwrites bn1 and, on its
    # second call, conv2; nothing overwrites conv1 or the ReLU's own output
    flagged = {name for name, info in tiny.layers.items() if info.needs_out_of_place}
    assert flagged == {"bn1", "conv2"}
    assert not tiny.needs_out_of_place(["conv1", "relu", "conv3"]) and tiny.needs_out_of_place(["conv1", "bn1"])


@pytest.mark.parametrize("layers", [["conv1", "relu"], ["bn1"], ["conv2"], ["conv1", "conv3"]])
def test_subsets_with_in_place_modules_left_on_or_switched_off_are_exact(layers):
    torch.manual_seed(0)
    tiny = make_handle(ReusedReLUNet(3, 32))
    x = torch.randn(1, 3, 32, 32)
    expected = _independent_forward(tiny.model, x)
    maps = vis_core.feature_maps_from_tensor(tiny, x, layers)
    for name in layers:
        np.testing.assert_allclose(maps.activations[name], expected[name][0].numpy(), rtol=1e-5, atol=1e-6)
    if "bn1" in layers:
        assert maps.activations["bn1"].min() < 0  # before the ReLU, although that ReLU is in place
    assert tiny.model.relu.inplace and hook_count(tiny.model) == 0


def _independent_forward(model, x):
    """Activations recomputed by hand, without hooks."""
    with torch.no_grad():
        out = {}
        out["conv1"] = model.conv1(x)
        out["bn1"] = model.bn1(out["conv1"])
        out["relu"] = torch.relu(out["bn1"])
        out["conv2"] = model.conv2(out["relu"])
        out["conv3"] = model.conv3(torch.relu(out["conv2"]))
        out["head"] = model.head(torch.relu(torch.relu(out["conv3"]) - 0.1).flatten(1))
    return out


@pytest.mark.parametrize("channels", [3, 1])
def test_captured_activations_equal_independent_forward(channels):
    torch.manual_seed(0)
    handle = make_handle(ReusedReLUNet(channels, 32), grayscale=channels == 1)
    image = vis_core.sample_image("astronaut")
    maps = vis_core.feature_maps(handle, image)
    expected = _independent_forward(handle.model, handle.preprocess(image))
    for name, tensor in expected.items():
        want = tensor[0].numpy()
        want = want[:, None, None] if want.ndim == 1 else want
        np.testing.assert_allclose(maps.activations[name], want, rtol=1e-5, atol=1e-6, err_msg=name)
    # captured before an in-place ReLU could overwrite them
    assert (maps.activations["bn1"] < 0).any() and (maps.activations["conv3"] < 0).any()
    assert handle.model.relu.inplace
    np.testing.assert_allclose(maps.logits, expected["head"][0].numpy(), rtol=1e-5, atol=1e-6)


def test_feature_maps_of_real_model_match_truncated_forward(handle: ModelHandle, cat):
    maps = vis_core.feature_maps(handle, cat, ["features.10", "features.3.conv.0.1"])
    x = handle.preprocess(cat)
    with torch.no_grad():
        reference = handle.model.features[:11](x)[0].numpy()
        bn = handle.model.features[3].conv[0][1](handle.model.features[3].conv[0][0](handle.model.features[:3](x)))
    np.testing.assert_allclose(maps.activations["features.10"], reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps.activations["features.3.conv.0.1"], bn[0].numpy(), rtol=1e-4, atol=1e-5)
    assert maps.logits is None  # stopped after the deepest requested layer
    assert list(maps.activations) == ["features.3.conv.0.1", "features.10"] or set(maps.activations) == {
        "features.10",
        "features.3.conv.0.1",
    }


def test_all_layers_in_one_pass_and_stats(handle: ModelHandle, cat):
    maps = vis_core.feature_maps(handle, cat)
    assert maps.logits is not None and maps.logits.shape == (1000,)
    assert maps.prediction(handle).indices == vis_core.predict(handle, cat).indices
    assert len(maps.activations) >= 150
    stats = {row.name: row for row in maps.stats()}
    array = maps.activations["features.4"]
    assert stats["features.4"].mean == pytest.approx(float(array.mean()), rel=1e-5)
    relu = maps.activations["features.2.conv.0"]  # after ReLU6: no negatives, many zeros
    assert relu.min() >= 0 and stats["features.2.conv.0"].zero_fraction > 0.2
    again = maps.stats()  # memoised for the dashboard's reruns: same rows, and a fresh list each call
    assert again == list(stats.values()) and again is not maps.stats()
    top = maps.top_channels("features.10", 5, by="max")
    maxima = array_max = maps.activations["features.10"].reshape(64, -1).max(axis=1)
    assert top == list(np.argsort(-array_max, kind="stable")[:5]) and maxima[top[0]] == maxima.max()
    with pytest.raises(ValueError):
        maps.activations["features.10"][0, 0, 0] = 1.0  # read-only: safe to share between sessions


def _model_state(model):
    return (
        hook_count(model),
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def test_guard_restores_everything_after_exception(tiny: ModelHandle):
    before_state, before_hash = _model_state(tiny.model), state_dict_hash(tiny.model)
    with pytest.raises(RuntimeError, match="boom"), tiny.guard() as model:
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        model(torch.randn(2, tiny.input_channels, *tiny.input_size)).sum().backward()
        model.register_forward_hook(lambda *a: None)
        list(model.modules())[1].register_forward_pre_hook(lambda *a: None)
        raise RuntimeError("boom")
    after = _model_state(tiny.model)
    assert after[0] == before_state[0]
    assert after[1] == before_state[1] and after[2] == before_state[2]
    assert all(g is None for g in after[3])
    # train mode ran BatchNorm and changed running stats: that is a real change the guard
    # cannot undo, so engine code must never do it; the hash sees it.
    assert state_dict_hash(tiny.model) != before_hash


def test_guard_removes_only_the_hooks_added_inside(tiny: ModelHandle):
    seen = []
    first = list(tiny.model.modules())[1]
    kept = first.register_forward_hook(lambda *a: seen.append("kept"))  # the caller's own, from before
    try:
        with pytest.raises(RuntimeError, match="boom"), tiny.guard() as model:
            first.register_forward_hook(lambda *a: seen.append("new"), with_kwargs=True, always_call=True)
            first.register_forward_pre_hook(lambda *a: seen.append("new pre"))
            model.register_full_backward_hook(lambda *a: None)
            with tiny.guard():  # nested: the outer block's hooks survive the inner block
                pass
            assert hook_count(model) == 4
            raise RuntimeError("boom")
        assert hook_count(tiny.model) == 1
        tiny.model(torch.zeros(1, tiny.input_channels, *tiny.input_size))
        assert seen == ["kept"]
    finally:
        kept.remove()
    assert hook_count(tiny.model) == 0


def test_feature_maps_leave_model_untouched(tiny: ModelHandle):
    image = vis_core.sample_image("rocket")
    before_state, before_hash = _model_state(tiny.model), state_dict_hash(tiny.model)
    vis_core.feature_maps(tiny, image)
    some = [n for n, i in tiny.layers.items() if len(i.output_shape) in (1, 3)][:2]
    vis_core.feature_maps(tiny, image, some)
    assert _model_state(tiny.model) == before_state
    assert state_dict_hash(tiny.model) == before_hash


def test_capture_removes_hooks_after_exception(tiny: ModelHandle):
    names = list(tiny.layers)[:3]
    baseline = hook_count(tiny.model)
    with pytest.raises(ZeroDivisionError), capture(tiny.model, names) as record:
        tiny.model(torch.zeros(1, tiny.input_channels, *tiny.input_size))
        assert hook_count(tiny.model) == baseline + len(names)
        assert set(record.outputs) == set(names)
        _ = 1 / 0
    assert hook_count(tiny.model) == baseline


def test_stop_forward_skips_later_layers():
    handle = make_handle(ReusedReLUNet(3, 32))
    ran = []
    handle.model.head.register_forward_hook(lambda *a: ran.append("head"))
    try:
        with capture(handle.model, ["conv2"], stop_when_done=True) as record, pytest.raises(StopForward):
            handle.model(torch.zeros(1, 3, 32, 32))
    finally:
        handle.model.head._forward_hooks.clear()
    assert "conv2" in record.outputs and ran == []


def test_concurrent_feature_maps_equal_single_thread(handle: ModelHandle):
    from concurrent.futures import ThreadPoolExecutor

    names = ["chelsea", "coffee", "astronaut", "rocket"]
    images = [vis_core.sample_image(n) for n in names]
    layers = ["features.4", "features.14"]
    single = [vis_core.feature_maps(handle, im, layers) for im in images]
    before_hash = state_dict_hash(handle.model)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: vis_core.feature_maps(handle, images[i % 4], layers), range(12)))
    for i, result in enumerate(results):
        for layer in layers:
            np.testing.assert_array_equal(result.activations[layer], single[i % 4].activations[layer])
    assert hook_count(handle.model) == 0
    assert all(p.grad is None for p in handle.model.parameters())
    assert state_dict_hash(handle.model) == before_hash


def test_errors_are_clear(handle: ModelHandle, cat):
    with pytest.raises(vis_core.ParameterError, match=r"Did you mean 'features\.10'"):
        vis_core.feature_maps(handle, cat, ["features.100"])
    with pytest.raises(vis_core.ParameterError, match="out of range"):
        handle.check_channel("features.10", 64)
    with pytest.raises(vis_core.ModelError, match="Unknown model"):
        vis_core.load_model("not_a_model")
    with pytest.raises(vis_core.ModelError, match="Unknown weights"):
        vis_core.load_model("mobilenet_v2", weights="IMAGENET9K")


def test_elongated_image_is_bounded(handle: ModelHandle):
    from PIL import Image

    strip = Image.new("RGB", (10000, 3), (200, 10, 10))
    assert handle.preprocess(strip).shape == (1, 3, 224, 224)
    assert handle.preprocess(Image.new("RGB", (1, 1))).shape == (1, 3, 224, 224)


class _Explodes(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() > 0:  # the dry forward on zeros passes; a real image does not
            raise RuntimeError("kaboom")
        return x


def test_feature_maps_clean_up_after_a_failing_forward():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),  # no bias: the dry forward on zeros stays zero
        torch.nn.ReLU(inplace=True),
        _Explodes(),
        torch.nn.Flatten(),
    )
    handle = make_handle(model, size=16)
    before_state, before_hash = _model_state(handle.model), state_dict_hash(handle.model)
    with pytest.raises(RuntimeError, match="kaboom"):
        vis_core.feature_maps(handle, vis_core.sample_image("coffee"))
    assert _model_state(handle.model) == before_state
    assert handle.model[1].inplace is True
    assert state_dict_hash(handle.model) == before_hash
    assert handle.lock.acquire(blocking=False)  # the lock was released
    handle.lock.release()


class _RunsOutOfMemoryOnce(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.armed:
            self.armed = False
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return x


def test_out_of_memory_is_a_clear_error_and_the_next_request_works():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True), _RunsOutOfMemoryOnce(), torch.nn.Flatten()
    )
    handle = make_handle(model, size=16)
    before_state, before_hash = _model_state(handle.model), state_dict_hash(handle.model)
    model[2].armed = True
    with pytest.raises(vis_core.ResourceError, match="ran out of memory for this request"):
        vis_core.feature_maps(handle, vis_core.sample_image("coffee"))
    assert _model_state(handle.model) == before_state and state_dict_hash(handle.model) == before_hash
    assert hook_count(handle.model) == 0
    maps = vis_core.feature_maps(handle, vis_core.sample_image("coffee"))  # the next request works
    assert maps.activations["0"].shape == (4, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(handle: ModelHandle, cat):
    gpu = vis_core.load_model(device="cuda")
    assert gpu.device.type == "cuda"
    layers = ["features.4", "features.14"]
    on_gpu, on_cpu = vis_core.feature_maps(gpu, cat, layers), vis_core.feature_maps(handle, cat, layers)
    for layer in layers:
        np.testing.assert_allclose(on_gpu.activations[layer], on_cpu.activations[layer], rtol=1e-2, atol=1e-2)
    assert vis_core.predict(gpu, cat).indices[:3] == vis_core.predict(handle, cat).indices[:3]
