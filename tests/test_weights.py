"""Offline-first weight resolution: hub cache, packaged checkpoint (hash-checked), download."""

from __future__ import annotations

import shutil
import urllib.error

import pytest
import torch
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights

import vis_core
from vis_core import weights as weights_io

V1 = MobileNet_V2_Weights.IMAGENET1K_V1


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path / "hub" / "checkpoints"


def test_packaged_checkpoint_is_torchvisions_file():
    path = weights_io.packaged_checkpoint("mobilenet_v2-b0353104.pth")
    assert path is not None and path.name == weights_io.checkpoint_name(V1)
    assert weights_io.sha256_of(path).startswith("b0353104")
    assert weights_io.expected_hash_prefix(path.name) == "b0353104"
    weights_io.verify_checkpoint(path)  # the file's hash has the prefix its name promises...
    with pytest.raises(vis_core.ModelError, match="damaged"):  # ...which is really checked
        weights_io.verify_checkpoint(path, "mobilenet_v2-00000000.pth")


def test_packaged_file_is_verified_and_placed_in_hub_cache(empty_hub):
    assert not (empty_hub / "mobilenet_v2-b0353104.pth").exists()
    assert weights_io.offline_available(V1)
    placed = weights_io.ensure_cached(V1)
    assert placed == empty_hub / "mobilenet_v2-b0353104.pth" and placed.is_file()
    assert weights_io.sha256_of(placed).startswith("b0353104")
    handle = vis_core.load_model(device="cpu")  # from the cache now
    assert handle.weights == str(V1)


def test_damaged_packaged_file_is_refused(tmp_path, monkeypatch, empty_hub):
    bad = tmp_path / "mobilenet_v2-b0353104.pth"
    shutil.copyfile(weights_io.packaged_checkpoint(bad.name), bad)
    with open(bad, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(weights_io, "packaged_checkpoint", lambda name: bad)
    with pytest.raises(vis_core.ModelError, match="damaged"):
        vis_core.load_model(device="cpu")
    assert not (empty_hub / bad.name).exists()


def test_no_network_gives_a_clear_message(empty_hub, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert not weights_io.offline_available(ResNet18_Weights.IMAGENET1K_V1)
    with pytest.raises(vis_core.ModelError) as info:
        vis_core.load_model("resnet18", device="cpu")
    message = str(info.value)
    assert "mobilenet_v2" in message and "not on this machine" in message and "URLError" not in message


def test_download_path_is_used_when_nothing_is_on_disk(empty_hub, monkeypatch):
    """Without the package or cache, the real torchvision URL is fetched with its hash prefix."""
    calls = {}
    packaged = weights_io.packaged_checkpoint("mobilenet_v2-b0353104.pth")

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.update(url=url, hash_prefix=hash_prefix)
        shutil.copyfile(packaged, dst)

    monkeypatch.setattr(weights_io, "packaged_checkpoint", lambda name: None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    state = weights_io.load_state_dict(V1)
    assert calls == {"url": V1.url, "hash_prefix": "b0353104"}
    assert "features.0.0.weight" in state
