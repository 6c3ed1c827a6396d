"""``atlas``: build (or finish) a model's atlas, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from .framework import CliError, command, load, positive, seed


def _atlas_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", action="append", default=None, help="a layer to add (repeat for several)")
    parser.add_argument("--all", action="store_true", help="every block with a spatial map")
    parser.add_argument("--images", default="sample", help="a folder of images, 'sample' (default) or 'imagenette'")
    parser.add_argument("--out", default=None, help="the atlas folder (default: the model's folder in atlases/)")
    parser.add_argument("--steps", type=positive, default=256)
    parser.add_argument("--size", type=positive, default=128)
    parser.add_argument("--top-k", type=positive, default=9)
    parser.add_argument("--renders", type=positive, default=1, help="feature visualisations per unit (diverse)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: a local Ray of 2 CPUs, or the cluster at ADDRESS",
    )


class ProgressBar:
    """``[#####-----] 12/64 units  3.1/s  0:12 left  message`` on a stream: redrawn in place on a
    terminal, else one line at most every ``every`` seconds, the first after ``every`` seconds (and
    the last one), so a build refused within seconds prints its one line of error and nothing else;
    :meth:`clear` rubs out a terminal's bar before that line."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, every: float = 2.0) -> None:
        self.stream, self.width, self.every = stream or sys.stderr, width, every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.first: int | None = None
        self.first_at = self.start
        self.printed = self.start
        self.drawn = False

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.perf_counter()
        if self.first is None or done < self.first:
            self.first, self.first_at = done, now
        final = message == "Done"
        if not self.tty and not final and now - self.printed < self.every and done != total:
            return
        self.printed = now
        filled = int(self.width * done / total) if total else self.width
        rate = (done - self.first) / (now - self.first_at) if done > self.first and now > self.first_at else 0.0
        left = "0:00 left" if done >= total else f"{_clock((total - done) / rate)} left" if rate > 0 else "--:-- left"
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} units  {rate:.2f}/s  {left}  {message}"
        self.drawn = not final
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160) + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Rub out a bar drawn in place (before an error's line)."""
        if self.tty and self.drawn:
            self.stream.write("\r" + " " * 160 + "\r")
            self.stream.flush()
            self.drawn = False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@command("atlas", "atlas: every unit's feature visualisation, dataset examples and statistics", _atlas_args)
def _atlas(args: argparse.Namespace) -> dict[str, Any]:
    from ..atlas import atlas_path, build_atlas

    if bool(args.layer) == bool(args.all):
        raise CliError("give --layer NAME (one or more) or --all")
    handle = load(args)
    layers = args.layer or handle.spatial_blocks()
    out = args.out or atlas_path(handle)
    bar = ProgressBar()
    try:
        summary = build_atlas(
            handle,
            layers=layers,
            images=args.images,
            out=out,
            steps=args.steps,
            size=args.size,
            top_k=args.top_k,
            renders=args.renders,
            seed=args.seed,
            executor="local" if args.ray is None else "ray",
            address=args.ray or None,
            progress=bar,
        )
    except BaseException:
        bar.clear()  # the error is the one line left
        raise
    if not args.json:
        print(
            f"wrote {summary.path} ({summary.units} units built, {summary.skipped} already there, "
            f"{summary.bad_images} bad images skipped, {summary.seconds:.1f} s on {summary.executor})"
        )
    return {
        "command": "atlas",
        "model": handle.key,
        "out": str(summary.path),
        "layers": list(summary.layers),
        "units": summary.units,
        "skipped": summary.skipped,
        "bad_images": summary.bad_images,
        "seconds": round(summary.seconds, 3),
        "executor": summary.executor,
    }
