"""Commands that look at a model as it is: ``predict``, ``layers``, ``featuremaps``, ``weights``
and ``filters``."""

from __future__ import annotations

import argparse
from typing import Any

from .framework import CliError, command, image, image_flag, load, load_handle_or_run, non_negative, positive, write_png


def _predict_args(parser: argparse.ArgumentParser) -> None:
    image_flag(parser)
    parser.add_argument("--top", type=positive, default=5, help="how many classes to list (default 5)")


@command("predict", "top-k classes of an image", _predict_args)
def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from ..prediction import predict

    handle = load(args)
    prediction = predict(handle, image(args), k=args.top)
    rows = [
        {"index": i, "label": label, "probability": round(p, 6)}
        for i, label, p in zip(prediction.indices, prediction.labels, prediction.probabilities)
    ]
    if not args.json:
        for row in rows:
            print(f"{row['probability'] * 100:6.2f}%  {row['label']}  (class {row['index']})")
    return {"command": "predict", "model": handle.key, "image": args.image, "top": rows}


def _layers_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blocks", action="store_true", help="list only block-level layers")


@command("layers", "the model's layers with output shape and parameter count", _layers_args)
def _layers(args: argparse.Namespace) -> dict[str, Any]:
    handle = load(args)
    infos = handle.blocks() if args.blocks else list(handle.layers.values())
    if not args.json:
        width = max(len(info.name) for info in infos)
        for info in infos:
            print(f"{info.name:<{width}}  {info.type_name:<22} {info.shape_text:<14} {info.params:>10,}")
    return {
        "command": "layers",
        "model": handle.key,
        "count": len(infos),
        "layers": [
            {"name": i.name, "type": i.type_name, "shape": list(i.output_shape), "params": i.params} for i in infos
        ],
    }


def _featuremaps_args(parser: argparse.ArgumentParser) -> None:
    image_flag(parser)
    parser.add_argument("--layer", default=None, help="layer name (default: the last spatial block)")
    parser.add_argument("--channel", type=non_negative, default=None, help="draw only this channel")
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("featuremaps", "a PNG of a layer's feature maps (all channels, or one)", _featuremaps_args)
def _featuremaps(args: argparse.Namespace) -> dict[str, Any]:
    from .. import render
    from ..featuremaps import feature_maps

    handle = load(args)
    layer = args.layer or handle.last_spatial_layer()
    handle.layer(layer)
    if args.channel is not None:
        handle.check_channel(layer, args.channel)
    maps = feature_maps(handle, image(args), [layer])
    activation = maps.activations[layer]
    if args.channel is not None:
        picture = render.upscale(render.colorize(activation[args.channel]), 224)
    else:
        picture = render.channel_grid(activation)
    path = write_png(picture, args.out)
    if not args.json:
        print(f"wrote {path} ({layer}, {activation.shape[0]} channels of {activation.shape[1]}x{activation.shape[2]})")
    return {
        "command": "featuremaps",
        "model": handle.key,
        "layer": layer,
        "channel": args.channel,
        "shape": list(activation.shape),
        "out": str(path),
        "mean": float(activation.mean()),
    }


def _weights_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 2 unless the weights are available offline")


@command("weights", "where the model's weights come from (hub cache, offline package, download)", _weights_args)
def _weights(args: argparse.Namespace) -> dict[str, Any]:
    from .. import weights as weights_io
    from ..loading import DEFAULT_MODEL, resolve_weights

    name = args.model or DEFAULT_MODEL
    enum = resolve_weights(name, args.weights)
    local = weights_io.ensure_cached(enum)
    if local is None and args.check:
        raise CliError(f"{enum} are not available offline; they will be downloaded on first use.")
    source = str(local) if local is not None else f"download from {enum.url}"
    if not args.json:
        print(f"{enum}: {source}")
    return {"command": "weights", "model": name, "weights": str(enum), "offline": local is not None, "source": source}


def _filters_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", required=True, help="a Conv2d layer, e.g. features.0.0")
    parser.add_argument("--channel", type=non_negative, default=None, help="draw only this filter")
    parser.add_argument("--reduce", choices=["l2", "mean"], default="l2", help="over input channels (default l2)")
    parser.add_argument("--run", default=None, help="a training run (its name, or its folder) instead of --model")
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("filters", "a PNG of a convolution layer's filters (all, or one)", _filters_args)
def _filters(args: argparse.Namespace) -> dict[str, Any]:
    from .. import render
    from ..arrays import to_uint8
    from ..filters import filters

    handle = load_handle_or_run(args)
    kernels = filters(handle, args.layer)
    if args.channel is not None and args.channel >= kernels.out_channels:
        raise CliError(f"--channel {args.channel} is out of range for {args.layer} (0..{kernels.out_channels - 1})")
    if kernels.kind == "rgb":
        tiles = [render.upscale(to_uint8(picture), 48) for picture in kernels.rgb("filter")]
    elif args.channel is not None and kernels.in_per_group > 1:
        tiles = [render.upscale(render.colorize(kernel), 48) for kernel in kernels.weight[args.channel]]
    else:
        tiles = [render.upscale(render.colorize(kernel), 48) for kernel in kernels.reduced(args.reduce)]
    if args.channel is not None and (kernels.kind == "rgb" or kernels.in_per_group == 1):
        tiles = [render.upscale(tiles[args.channel], 192)]
    path = write_png(render.grid(tiles), args.out)
    norms = kernels.norms
    if not args.json:
        print(f"wrote {path} ({args.layer}: {kernels.kind}, weights {tuple(kernels.weight.shape)})")
    return {
        "command": "filters",
        "model": handle.key,
        "layer": args.layer,
        "kind": kernels.kind,
        "shape": list(kernels.weight.shape),
        "channel": args.channel,
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "dead": kernels.dead(),
        "out": str(path),
    }
