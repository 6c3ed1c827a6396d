"""``python -m vis_core COMMAND``: the engine from the command line, without the UI.

Every command takes the common flags ``--model``, ``--device`` and ``--json`` (a one-line
JSON summary on stdout); those that read an image take ``--image PATH`` (or
``sample:NAME`` for a bundled photo, the default being ``sample:chelsea``).
Bad input exits with status 2 and one line on stderr, never a traceback.

Commands register themselves in :data:`COMMANDS`; later techniques add theirs the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import VisCoreError


class CliError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise CliError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Command:
    """A CLI command: its help, how to add its arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict[str, Any]]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> summary dict`` as the CLI command ``name``."""

    def register(run: Callable[[argparse.Namespace], dict[str, Any]]):
        COMMANDS[name] = Command(help, add_arguments, run)
        return run

    return register


# ---------------------------------------------------------------- shared flags
def _common(parser: argparse.ArgumentParser) -> None:
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


def _image_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", default="sample:chelsea", help="image file, or sample:NAME (default sample:chelsea)")


def _load(args: argparse.Namespace):
    from .loading import load_factory, load_model

    if args.model and ":" in args.model:  # the person at the terminal names their own code
        return load_factory(args.model, device=args.device)
    return load_model(args.model, weights=args.weights, device=args.device, labels=getattr(args, "labels", None))


def _image(args: argparse.Namespace):
    from .images import load_image, sample_image

    if args.image.startswith("sample:"):
        return sample_image(args.image.split(":", 1)[1])
    return load_image(args.image)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected 1 or more")
    return value


# -------------------------------------------------------------------- commands
def _predict_args(parser: argparse.ArgumentParser) -> None:
    _image_flag(parser)
    parser.add_argument("--top", type=_positive, default=5, help="how many classes to list (default 5)")


@command("predict", "top-k classes of an image", _predict_args)
def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from .prediction import predict

    handle = _load(args)
    prediction = predict(handle, _image(args), k=args.top)
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
    handle = _load(args)
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
    _image_flag(parser)
    parser.add_argument("--layer", default=None, help="layer name (default: the last spatial block)")
    parser.add_argument("--channel", type=_non_negative, default=None, help="draw only this channel")
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("featuremaps", "a PNG of a layer's feature maps (all channels, or one)", _featuremaps_args)
def _featuremaps(args: argparse.Namespace) -> dict[str, Any]:
    from . import render
    from .featuremaps import feature_maps

    handle = _load(args)
    layer = args.layer or handle.last_spatial_layer()
    handle.layer(layer)
    if args.channel is not None:
        handle.check_channel(layer, args.channel)
    maps = feature_maps(handle, _image(args), [layer])
    activation = maps.activations[layer]
    if args.channel is not None:
        picture = render.upscale(render.colorize(activation[args.channel]), 224)
    else:
        picture = render.channel_grid(activation)
    path = _write_png(picture, args.out)
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


def _write_png(picture, out: str):
    from . import render

    if not out.lower().endswith(".png"):
        raise CliError(f"--out must name a .png file, got {out!r}")
    try:
        return render.save_png(picture, out)
    except OSError as exc:
        raise CliError(f"cannot write {out!r}: {exc.strerror or exc}") from exc


# ------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    parser = _Parser(prog="python -m vis_core", description="See inside convolutional neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, spec in COMMANDS.items():
        child = sub.add_parser(name, help=spec.help, description=spec.help)
        _common(child)
        spec.add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 1 unexpected failure)."""
    try:
        args = build_parser().parse_args(argv)
        summary = COMMANDS[args.command].run(args)
    except (CliError, VisCoreError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m vis_core layers | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary, separators=(",", ":")))
    return 0


def _weights_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 2 unless the weights are available offline")


@command("weights", "where the model's weights come from (hub cache, offline package, download)", _weights_args)
def _weights(args: argparse.Namespace) -> dict[str, Any]:
    from . import weights as weights_io
    from .loading import DEFAULT_MODEL, resolve_weights

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
    parser.add_argument("--channel", type=_non_negative, default=None, help="draw only this filter")
    parser.add_argument("--reduce", choices=["l2", "mean"], default="l2", help="over input channels (default l2)")
    parser.add_argument("--run", default=None, help="a training run (its name, or its folder) instead of --model")
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("filters", "a PNG of a convolution layer's filters (all, or one)", _filters_args)
def _filters(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import render
    from .filters import filters

    handle = _handle_or_run(args)
    kernels = filters(handle, args.layer)
    if args.channel is not None and args.channel >= kernels.out_channels:
        raise CliError(f"--channel {args.channel} is out of range for {args.layer} (0..{kernels.out_channels - 1})")
    if kernels.kind == "rgb":
        tiles = [render.upscale((image * 255).round().astype(np.uint8), 48) for image in kernels.rgb("filter")]
    elif args.channel is not None and kernels.in_per_group > 1:
        tiles = [render.upscale(render.colorize(kernel), 48) for kernel in kernels.weight[args.channel]]
    else:
        tiles = [render.upscale(render.colorize(kernel), 48) for kernel in kernels.reduced(args.reduce)]
    if args.channel is not None and (kernels.kind == "rgb" or kernels.in_per_group == 1):
        tiles = [render.upscale(tiles[args.channel], 192)]
    path = _write_png(render.grid(tiles), args.out)
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


def _handle_or_run(args: argparse.Namespace):
    if getattr(args, "run", None):
        from .runs import load_run, run_path

        return load_run(run_path(args.run)).handle(device=args.device)
    return _load(args)


def _train_args(parser: argparse.ArgumentParser) -> None:
    from .datasets import DATASETS
    from .nets import ARCHITECTURES

    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="notebook")
    parser.add_argument("--epochs", type=_positive, default=10)
    parser.add_argument("--seed", type=_non_negative, default=0)
    parser.add_argument("--batch-size", type=_positive, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--snapshot-every", type=_non_negative, default=0, help="also snapshot every N steps")
    parser.add_argument(
        "--out",
        default=None,
        help="run name (a folder in the runs folder: $VIS_CORE_RUNS, or runs/ in the project; the dashboard "
        "lists it) or a folder path; default <dataset>-<arch>-seed<seed>-<time>",
    )


@command("train", "train a small CNN and save a run folder with snapshots", _train_args)
def _train(args: argparse.Namespace) -> dict[str, Any]:
    from .training import train

    def progress(step: int, total: int, preview) -> None:
        if not args.json and (step == total or step % max(1, total // 50) == 0):
            done = int(30 * step / total)
            print(
                f"\r[{'#' * done}{'.' * (30 - done)}] step {step}/{total} loss {preview.train_loss:.3f}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    device = "cpu" if args.device == "auto" else args.device
    run = train(
        args.dataset,
        args.arch,
        args.epochs,
        args.seed,
        args.out,
        batch_size=args.batch_size,
        lr=args.lr,
        snapshot_every=args.snapshot_every,
        device=device,
        on_step=progress,
    )
    if not args.json:
        print(file=sys.stderr)
        for snapshot in run.snapshots:
            print(f"{snapshot.label:>12}: test accuracy {snapshot.metrics['test_accuracy']:.2%}")
        print(f"saved {run.path}")
    last = run.snapshots[-1]
    return {
        "command": "train",
        "run": str(run.path),
        "dataset": args.dataset,
        "arch": args.arch,
        "epochs": args.epochs,
        "seed": args.seed,
        "snapshots": len(run.snapshots),
        "test_accuracy": last.metrics["test_accuracy"],
        "seconds": run.settings.get("seconds"),
    }


def _deconv_args(parser: argparse.ArgumentParser) -> None:
    from .projection import RULES

    _image_flag(parser)
    parser.add_argument("--layer", required=True, help="a layer with a (C, H, W) output")
    parser.add_argument("--channel", type=_non_negative, required=True)
    parser.add_argument("--method", choices=RULES, default="deconvnet")
    parser.add_argument("--max", action="store_true", help="project only the strongest position (Zeiler & Fergus)")
    parser.add_argument("--out", required=True, help="PNG file to write (the signed projection as a picture)")


@command("deconv", "project a channel back to pixels (deconvnet, guided backprop, gradient)", _deconv_args)
def _deconv(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import render
    from .projection import project

    handle = _load(args)
    handle.check_channel(args.layer, args.channel)
    result = project(
        handle,
        _image(args),
        layer=args.layer,
        channel=args.channel,
        method=args.method,
        position="max" if args.max else None,
    )
    picture = render.upscale((result.rgb * 255).round().astype(np.uint8), 224)
    path = _write_png(picture, args.out)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if not args.json:
        where = f" at {result.position}, receptive field {result.box}, focus {result.focus}" if result.position else ""
        print(f"wrote {path} ({args.method} projection of {args.layer}:{args.channel}{where})")
    return {
        "command": "deconv",
        "model": handle.key,
        "layer": args.layer,
        "channel": args.channel,
        "method": args.method,
        "position": result.position,
        "receptive_field": result.box,
        "focus": result.focus,
        "activation": result.activation,
        "out": str(path),
        "note": result.note,
    }


def _attribute_args(parser: argparse.ArgumentParser) -> None:
    from .attribution import METHODS

    _image_flag(parser)
    parser.add_argument("--method", choices=list(METHODS), required=True)
    parser.add_argument("--target", default=None, help="class index or name (default: the top prediction)")
    parser.add_argument("--layer", default=None, help="layer for CAM methods (default: the last spatial block)")
    parser.add_argument("--out", required=True, help="PNG: the map over the image")
    parser.add_argument("--npy", default=None, help="also save the (H, W) map as a .npy file")


@command("attribute", "an attribution map for a class (Grad-CAM family, gradients, occlusion...)", _attribute_args)
def _attribute(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import render
    from .attribution import attribute

    handle = _load(args)
    image = _image(args)
    result = attribute(handle, image, args.method, target=args.target, layer=args.layer)
    heat = render.colorize(np.abs(result.map) if result.signed else result.map).astype(np.float32)
    overlay = (0.5 * np.asarray(image, dtype=np.float32) + 0.5 * heat).round().astype(np.uint8)
    path = _write_png(overlay, args.out)
    if args.npy:
        if not args.npy.endswith(".npy"):
            raise CliError(f"--npy must name a .npy file, got {args.npy!r}")
        try:
            np.save(args.npy, result.map)
        except OSError as exc:
            raise CliError(f"cannot write {args.npy!r}: {exc.strerror or exc}") from exc
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if not args.json:
        print(
            f"wrote {path} ({args.method} for '{result.target_label}' (class {result.target})"
            + (f" at {result.layer}" if result.layer else "")
            + f", {result.seconds:.2f} s)"
        )
    return {
        "command": "attribute",
        "model": handle.key,
        "method": args.method,
        "target": result.target,
        "target_label": result.target_label,
        "layer": result.layer,
        "shape": list(result.map.shape),
        "out": str(path),
        "npy": args.npy,
        "seconds": round(result.seconds, 4),
        "note": result.note,
        "completeness_error": None if result.completeness_error is None else round(result.completeness_error, 5),
        "steps": result.steps,
    }


def _metrics_args(parser: argparse.ArgumentParser) -> None:
    from .attribution import METHODS

    _image_flag(parser)
    parser.add_argument(
        "--method", choices=list(METHODS), action="append", required=True, help="repeat for several methods"
    )
    parser.add_argument("--target", default=None)
    parser.add_argument("--layer", default=None)
    parser.add_argument("--steps", type=_positive, default=24, help="deletion/insertion steps")
    parser.add_argument(
        "--deletion-substrate", choices=("zero", "blur"), default="zero", help="what deleted pixels become (RISE: zero)"
    )
    parser.add_argument(
        "--insertion-substrate",
        choices=("zero", "blur"),
        default="blur",
        help="what pixels are inserted onto (RISE: blur)",
    )
    parser.add_argument("--sanity", action="store_true", help="also run the cascading randomisation check")


@command("metrics", "faithfulness (deletion/insertion AUC) and an optional sanity check", _metrics_args)
def _metrics(args: argparse.Namespace) -> dict[str, Any]:
    from .metrics import faithfulness, sanity_check

    handle = _load(args)
    image = _image(args)
    report = faithfulness(
        handle,
        image,
        args.method,
        target=args.target,
        layer=args.layer,
        steps=args.steps,
        deletion_substrate=args.deletion_substrate,
        insertion_substrate=args.insertion_substrate,
    )

    def scores(curve, verdict: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {
            "deletion_auc": round(curve.deletion_auc, 4),
            "insertion_auc": round(curve.insertion_auc, 4),
        }
        if verdict:
            row["beats_random_deletion"], row["beats_random_insertion"] = report.beats_random(curve)
            row["verdict"] = report.verdict(curve)
        return row

    summary: dict[str, Any] = {
        "command": "metrics",
        "model": handle.key,
        "target": report.target,
        "substrates": {"deletion": args.deletion_substrate, "insertion": args.insertion_substrate},
        "faithfulness": {**{c.method: scores(c) for c in report.curves}, "random": scores(report.random, False)},
    }
    if args.sanity:
        check = sanity_check(handle, image, args.method, target=args.target, layer=args.layer)
        summary["sanity"] = {
            "steps": check.steps,
            "spearman": {m: [round(v, 4) for v in values] for m, values in check.spearman.items()},
            "ssim": {m: [round(v, 4) for v in values] for m, values in check.ssim.items()},
        }
    if not args.json:
        for curve in (*report.curves, report.random):
            print(
                f"{curve.method:>22}: deletion AUC {curve.deletion_auc:.3f} (lower is better), "
                f"insertion AUC {curve.insertion_auc:.3f} (higher is better)"
                + ("" if curve is report.random else f"; {report.verdict(curve)}")
            )
        if args.sanity:
            for method, values in summary["sanity"]["spearman"].items():
                print(
                    f"{method:>22}: rank correlation with the original as layers are randomised: "
                    + " ".join(f"{v:.2f}" for v in values)
                )
    return summary


def _seeded(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_non_negative, default=0)
    parser.add_argument("--steps", type=_positive, default=None)


def _save_image(image, out: str):
    import numpy as np

    return _write_png(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), out)


def _dream_args(parser: argparse.ArgumentParser) -> None:
    _image_flag(parser)
    _seeded(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--channel", type=_non_negative, default=None, help="dream one filter instead of the layer")
    parser.add_argument("--octaves", type=_positive, default=4)
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("dream", "deep dream: amplify what a layer sees in an image", _dream_args)
def _dream(args: argparse.Namespace) -> dict[str, Any]:
    from .dream import deep_dream

    handle = _load(args)
    result = deep_dream(
        handle,
        _image(args),
        layer=args.layer,
        channel=args.channel,
        octaves=args.octaves,
        steps=args.steps or 10,
        seed=args.seed,
    )
    path = _save_image(result.image, args.out)
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


def _range(text: str) -> list[int]:
    try:
        first, last = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 0-15, got {text!r}") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"expected a range like 0-15, got {text!r}")
    return list(range(first, last + 1))


def _featurevis_args(parser: argparse.ArgumentParser) -> None:
    _seeded(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--channel", type=_non_negative, default=None)
    parser.add_argument("--channels", type=_range, default=None, help="a gallery, e.g. 0-15 (one batch)")
    parser.add_argument("--size", type=_positive, default=224)
    parser.add_argument("--out", required=True, help="PNG file to write (a grid for a gallery)")


@command("featurevis", "feature visualisation: the image a filter likes most", _featurevis_args)
def _featurevis(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import render
    from .featurevis import feature_visualization

    if (args.channel is None) == (args.channels is None):
        raise CliError("give either --channel N or --channels A-B")
    handle = _load(args)
    result = feature_visualization(
        handle,
        layer=args.layer,
        channel=args.channel if args.channels is None else args.channels,
        steps=args.steps or 256,
        size=args.size,
        seed=args.seed,
    )
    tiles = [np.round(image * 255).astype(np.uint8) for image in result.images]
    path = _write_png(render.grid(tiles) if len(tiles) > 1 else tiles[0], args.out)
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
    _image_flag(parser)
    _seeded(parser)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--out", required=True, help="PNG file to write")


@command("invert", "feature reconstruction: rebuild the image from one layer", _invert_args)
def _invert(args: argparse.Namespace) -> dict[str, Any]:
    from .inversion import reconstruct

    handle = _load(args)
    result = reconstruct(handle, _image(args), layer=args.layer, steps=args.steps or 200, seed=args.seed)
    path = _save_image(result.image, args.out)
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
