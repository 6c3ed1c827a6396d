"""Commands that make images by gradient ascent: ``dream`` (deep dream), ``featurevis``
(feature visualisation) and ``invert`` (feature reconstruction)."""

from __future__ import annotations

import argparse
from typing import Any

from .framework import (
    CliError,
    channel_range,
    command,
    image,
    image_flag,
    load,
    non_negative,
    positive,
    save_image,
    seeded_flags,
    write_png,
)


def _dream_args(parser: argparse.ArgumentParser) -> None:
    image_flag(parser)
    seeded_flags(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--channel", type=non_negative, default=None, help="dream one filter instead of the layer")
    parser.add_argument("--octaves", type=positive, default=4)
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("dream", "deep dream: amplify what a layer sees in an image", _dream_args)
def _dream(args: argparse.Namespace) -> dict[str, Any]:
    from ..dream import deep_dream

    handle = load(args)
    result = deep_dream(
        handle,
        image(args),
        layer=args.layer,
        channel=args.channel,
        octaves=args.octaves,
        steps=args.steps or 10,
        seed=args.seed,
    )
    path = save_image(result.image, args.out)
    if not args.json:
        print(f"wrote {path} ({result.image.shape[1]}x{result.image.shape[0]}, {result.seconds:.1f} s)")
    return {
        "command": "dream",
        "model": handle.key,
        "layer": args.layer,
        "channel": args.channel,
        "octaves": args.octaves,
        "steps": result.steps,
        "seed": args.seed,
        "out": str(path),
        "seconds": round(result.seconds, 3),
    }


def _featurevis_args(parser: argparse.ArgumentParser) -> None:
    seeded_flags(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--channel", type=non_negative, default=None)
    parser.add_argument("--channels", type=channel_range, default=None, help="a gallery, e.g. 0-15 (one batch)")
    parser.add_argument("--size", type=positive, default=224)
    parser.add_argument("--out", required=True, help="PNG file to write (a grid for a gallery)")


@command("featurevis", "feature visualisation: the image a filter likes most", _featurevis_args)
def _featurevis(args: argparse.Namespace) -> dict[str, Any]:
    from .. import render
    from ..arrays import to_uint8
    from ..featurevis import feature_visualization

    if (args.channel is None) == (args.channels is None):
        raise CliError("give either --channel N or --channels A-B")
    handle = load(args)
    result = feature_visualization(
        handle,
        layer=args.layer,
        channel=args.channel if args.channels is None else args.channels,
        steps=args.steps or 256,
        size=args.size,
        seed=args.seed,
    )
    tiles = [to_uint8(picture) for picture in result.images]
    path = write_png(render.grid(tiles) if len(tiles) > 1 else tiles[0], args.out)
    if not args.json:
        print(
            f"wrote {path} ({len(tiles)} image(s), objective {result.objective[0]:.3f} -> {result.objective[-1]:.3f})"
        )
    return {
        "command": "featurevis",
        "model": handle.key,
        "layer": args.layer,
        "channels": list(result.channels),
        "steps": len(result.objective),
        "size": args.size,
        "seed": args.seed,
        "out": str(path),
        "objective_first": result.objective[0],
        "objective_last": result.objective[-1],
        "seconds": round(result.seconds, 3),
    }


def _invert_args(parser: argparse.ArgumentParser) -> None:
    image_flag(parser)
    seeded_flags(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("invert", "feature reconstruction: rebuild the image from one layer", _invert_args)
def _invert(args: argparse.Namespace) -> dict[str, Any]:
    from ..inversion import reconstruct

    handle = load(args)
    result = reconstruct(handle, image(args), layer=args.layer, steps=args.steps or 200, seed=args.seed)
    path = save_image(result.image, args.out)
    if not args.json:
        print(f"wrote {path} (pixel error {result.pixel_error:.4f}, {result.seconds:.1f} s)")
    return {
        "command": "invert",
        "model": handle.key,
        "layer": args.layer,
        "steps": args.steps or 200,
        "seed": args.seed,
        "out": str(path),
        "pixel_error": result.pixel_error,
        "feature_error": result.feature_error,
        "seconds": round(result.seconds, 3),
    }
