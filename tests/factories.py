"""Model factories for the trusted ``package.module:function`` path (used by the tests)."""

from torch import nn


def tiny_digits() -> dict:
    """A 1-channel 32x32 network with functional-free layers and named classes."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    return {
        "model": model,
        "labels": ["zero", "one", "two"],
        "input_size": 32,
        "grayscale": True,
        "mean": (0.5,),
        "std": (0.25,),
    }


def plain_module() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def nan_weights() -> nn.Module:
    """A network whose weights are NaN (a training run that diverged): every output is NaN."""
    model = plain_module()
    for parameter in model.parameters():
        parameter.data.fill_(float("nan"))
    return model


def tiny_atlas() -> dict:
    """A seeded 3-channel 32x32 network with two spatial layers (6 and 40 channels: three render chunks):
    an atlas of it builds in seconds."""
    import torch

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(13)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 40, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(40, 3),
    )
    torch.random.set_rng_state(generator_state)
    return {"model": model, "labels": ["a", "b", "c"], "input_size": 32, "mean": (0.5,) * 3, "std": (0.25,) * 3}
