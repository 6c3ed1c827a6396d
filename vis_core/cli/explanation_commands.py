"""Commands that explain one image's answer: ``deconv`` (projection to pixels), ``attribute``
(attribution maps) and ``metrics`` (how faithful those maps are)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .framework import CliError, command, image, image_flag, load, non_negative, positive, write_png


def _deconv_args(parser: argparse.ArgumentParser) -> None:
    from ..projection import RULES

    image_flag(parser)
    parser.add_argument("--layer", required=True, help="a layer with a (C, H, W) output")
    parser.add_argument("--channel", type=non_negative, required=True)
    parser.add_argument("--method", choices=RULES, default="deconvnet")
    parser.add_argument("--max", action="store_true", help="project only the strongest position (Zeiler & Fergus)")
    parser.add_argument("--out", required=True, help="PNG file to write (the signed projection as a picture)")


@command("deconv", "project a channel back to pixels (deconvnet, guided backprop, gradient)", _deconv_args)
def _deconv(args: argparse.Namespace) -> dict[str, Any]:
    from .. import render
    from ..arrays import to_uint8
    from ..projection import project

    handle = load(args)
    handle.check_channel(args.layer, args.channel)
    result = project(
        handle,
        image(args),
        layer=args.layer,
        channel=args.channel,
        method=args.method,
        position="max" if args.max else None,
    )
    path = write_png(render.upscale(to_uint8(result.rgb), 224), args.out)
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
    from ..attribution import METHODS

    image_flag(parser)
    parser.add_argument("--method", choices=list(METHODS), required=True)
    parser.add_argument("--target", default=None, help="class index or name (default: the top prediction)")
    parser.add_argument("--layer", default=None, help="layer for CAM methods (default: the last spatial block)")
    parser.add_argument("--out", required=True, help="PNG: the map over the image")
    parser.add_argument("--npy", default=None, help="also save the (H, W) map as a .npy file")


@command("attribute", "an attribution map for a class (Grad-CAM family, gradients, occlusion...)", _attribute_args)
def _attribute(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from .. import render
    from ..attribution import attribute

    handle = load(args)
    picture = image(args)
    result = attribute(handle, picture, args.method, target=args.target, layer=args.layer)
    heat = render.colorize(np.abs(result.map) if result.signed else result.map).astype(np.float32)
    overlay = (0.5 * np.asarray(picture, dtype=np.float32) + 0.5 * heat).round().astype(np.uint8)  # both 0..255
    path = write_png(overlay, args.out)
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
    from ..attribution import METHODS

    image_flag(parser)
    parser.add_argument(
        "--method", choices=list(METHODS), action="append", required=True, help="repeat for several methods"
    )
    parser.add_argument("--target", default=None)
    parser.add_argument("--layer", default=None)
    parser.add_argument("--steps", type=positive, default=24, help="deletion/insertion steps")
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
    from ..metrics import faithfulness, sanity_check

    handle = load(args)
    picture = image(args)
    report = faithfulness(
        handle,
        picture,
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
        check = sanity_check(handle, picture, args.method, target=args.target, layer=args.layer)
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
