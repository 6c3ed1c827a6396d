"""Your own model: weights files (safely), class names, greyscale, trusted factories."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torchvision

import vis_core
from vis_core import ModelError


@pytest.fixture(scope="module")
def resnet_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=7).state_dict()


def test_pt_state_dict(tmp_path, resnet_state):
    path = tmp_path / "mine.pt"
    torch.save(resnet_state, path)
    handle = vis_core.load_model("resnet18", weights=path, device="cpu", input_size=64)
    assert len(handle.labels) == 7 and handle.labels[0] == "class 0" and handle.input_size == (64, 64)
    assert handle.weights.startswith("file mine.pt sha256:") and not handle.grayscale
    expected = resnet_state["fc.weight"]
    assert torch.equal(handle.model.fc.weight, expected)
    prediction = vis_core.predict(handle, vis_core.sample_image("coffee"), k=3)
    assert len(prediction.indices) == 3
    result = vis_core.attribute(handle, vis_core.sample_image("coffee"), "gradcam")
    assert result.layer == "layer4.1" and np.isfinite(result.map).all()


def test_safetensors_and_labels(tmp_path, resnet_state):
    from safetensors.torch import save_file

    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in resnet_state.items()}, str(path))
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"thing {i}" for i in range(7)))
    handle = vis_core.load_model("resnet18", weights=path, labels=names, device="cpu")
    assert handle.labels[6] == "thing 6"
    as_json = tmp_path / "classes.json"
    as_json.write_text('["a", "b", "c", "d", "e", "f", "g"]')
    assert vis_core.load_model("resnet18", weights=path, labels=as_json, device="cpu").labels[1] == "b"
    with pytest.raises(ModelError, match="3 class names were given, but the model has 7"):
        vis_core.load_model("resnet18", weights=path, labels=["x", "y", "z"], device="cpu")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ModelError, match="not a valid safetensors"):
        vis_core.load_model("resnet18", weights=broken)


def test_greyscale_weights(tmp_path):
    torch.manual_seed(1)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    path = tmp_path / "grey.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)  # wrapped, DataParallel
    handle = vis_core.load_model("resnet18", weights=path, input_size=32, device="cpu")
    assert handle.grayscale and handle.input_channels == 1 and handle.mean == (0.449,)
    assert handle.preprocess(vis_core.sample_image("astronaut")).shape == (1, 1, 32, 32)
    maps = vis_core.feature_maps(handle, vis_core.sample_image("astronaut"), ["layer1"])
    assert maps.activations["layer1"].shape == (64, 8, 8)


def test_weights_that_do_not_fit(tmp_path, resnet_state):
    path = tmp_path / "resnet.pt"
    torch.save(resnet_state, path)
    with pytest.raises(ModelError, match="right architecture"):
        vis_core.load_model("mobilenet_v2", weights=path)
    other = torchvision.models.resnet34(weights=None, num_classes=7).state_dict()
    torch.save(other, tmp_path / "resnet34.pt")
    with pytest.raises(ModelError, match="do not fit resnet18: unexpected"):
        vis_core.load_model("resnet18", weights=tmp_path / "resnet34.pt")
    with pytest.raises(ModelError, match=r"must be a \.safetensors"):
        vis_core.load_model("resnet18", weights=tmp_path / "weights.bin")
    with pytest.raises(ModelError, match="Cannot read"):
        vis_core.load_model("resnet18", weights=tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="Unknown architecture"):
        vis_core.load_model("resnet9000", weights=path)


class _Canary:
    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary.txt"
    _Canary.path = str(canary)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"fc.weight": _Canary()}, protocol=2))
    with pytest.raises(ModelError, match="refused"):
        vis_core.load_model("resnet18", weights=evil)
    assert not canary.exists()
    whole = tmp_path / "whole-model.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=3), whole)  # a pickled module, not a state_dict
    with pytest.raises(ModelError, match="refused"):
        vis_core.load_model("resnet18", weights=whole)


def test_trusted_factory():
    handle = vis_core.load_factory("tests.factories:tiny_digits", device="cpu")
    assert handle.labels == ("zero", "one", "two") and handle.grayscale and handle.input_size == (32, 32)
    prediction = vis_core.predict(handle, vis_core.sample_image("camera"))
    assert set(prediction.labels) == {"zero", "one", "two"}
    for method in ("gradcam", "saliency", "guided_backprop", "cam"):
        assert np.isfinite(vis_core.attribute(handle, vis_core.sample_image("camera"), method).map).all()
    plain = vis_core.load_factory("tests.factories:plain_module", device="cpu")
    assert plain.labels == ("class 0", "class 1")
    with pytest.raises(ModelError, match="Cannot import"):
        vis_core.load_factory("tests.factories:nothing_here")
    with pytest.raises(ModelError, match="Cannot import"):
        vis_core.load_factory("no_such_package.module:build")


def test_cli_with_own_weights(capsys, tmp_path, resnet_state):
    import json

    from vis_core.cli import main

    path = tmp_path / "mine.pt"
    torch.save(resnet_state, path)
    names = tmp_path / "names.txt"
    names.write_text("\n".join("abcdefg"))
    assert main(["predict", "--model", "resnet18", "--weights", str(path), "--labels", str(names), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["top"][0]["label"] in "abcdefg"
    assert main(["predict", "--model", "tests.factories:tiny_digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["label"] in ("zero", "one", "two")
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Canary(), protocol=2))
    assert main(["predict", "--model", "resnet18", "--weights", str(evil)]) == 2
    assert "refused" in capsys.readouterr().err
