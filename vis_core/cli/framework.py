"""The CLI's framework: how a command registers, the flags every command shares, argument
types, and the helpers commands use to load a model or an image and write a picture."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CliError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise CliError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Command:
    """A CLI command: its help, how to add its arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict[str, Any]]


#: Every command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> summary dict`` as the CLI command ``name``."""

    def register(run: Callable[[argparse.Namespace], dict[str, Any]]):
        COMMANDS[name] = Command(help, add_arguments, run)
        return run

    return register


# ------------------------------------------------------------------ shared flags
def common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="torchvision model name (default: the offline MobileNetV2), or package.module:function (your code)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="weights name (e.g. IMAGENET1K_V1), or a .safetensors/.pt/.pth state_dict for --model's architecture",
    )
    parser.add_argument("--labels", default=None, help="class names for your weights: a .txt (one per line) or .json")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary on stdout")


def image_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", default="sample:chelsea", help="image file, or sample:NAME (default sample:chelsea)")


def seeded_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--steps", type=positive, default=None)


# ---------------------------------------------------------------- argument types
def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def positive(text: str) -> int:
    value = non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected 1 or more")
    return value


def seed(text: str) -> int:
    """A seed: 0 to :data:`vis_core.optim.MAX_SEED` (64 bits; a larger one overflowed inside torch)."""
    from ..optim import MAX_SEED

    value = non_negative(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED}, got {text[:40]}")
    return value


def channel_range(text: str) -> list[int]:
    """``A-B``: channels A to B, at most :data:`vis_core.optim.MAX_BATCH` of them (checked before
    the list is made: ``0-1000000000`` was a MemoryError)."""
    from ..optim import MAX_BATCH

    try:
        first, last = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 0-15, got {text[:40]!r}") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"expected a range like 0-15, got {text[:40]!r}")
    if last - first + 1 > MAX_BATCH:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_BATCH} channels at once (one batch), got {last - first + 1:,} in {text[:40]!r}"
        )
    return list(range(first, last + 1))


# ----------------------------------------------------------------------- helpers
def load(args: argparse.Namespace):
    """The model the flags name: ``--model package.module:function`` or a torchvision model."""
    from ..loading import load_factory, load_model

    if args.model and ":" in args.model:  # the person at the terminal names their own code
        return load_factory(args.model, device=args.device)
    return load_model(args.model, weights=args.weights, device=args.device, labels=getattr(args, "labels", None))


def load_handle_or_run(args: argparse.Namespace):
    """The training run ``--run`` names, when given; else :func:`load`."""
    if getattr(args, "run", None):
        from ..runs import load_run, run_path

        return load_run(run_path(args.run)).handle(device=args.device)
    return load(args)


def image(args: argparse.Namespace):
    """The image ``--image`` names: a file, or ``sample:NAME``."""
    from ..images import load_image, sample_image

    if args.image.startswith("sample:"):
        return sample_image(args.image.split(":", 1)[1])
    return load_image(args.image)


def write_png(picture, out: str):
    """Save a uint8 picture as ``out``, which must end in ``.png``."""
    from .. import render

    if not out.lower().endswith(".png"):
        raise CliError(f"--out must name a .png file, got {out!r}")
    try:
        return render.save_png(picture, out)
    except OSError as exc:
        raise CliError(f"cannot write {out!r}: {exc.strerror or exc}") from exc


def save_image(picture, out: str):
    """Save a float picture in [0, 1] as ``out`` (a .png)."""
    from ..arrays import to_uint8

    return write_png(to_uint8(picture), out)
