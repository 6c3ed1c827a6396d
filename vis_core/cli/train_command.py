"""``train``: train one of the lab's small CNNs and save a run folder with snapshots."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .framework import command, non_negative, positive, seed


def _train_args(parser: argparse.ArgumentParser) -> None:
    from ..datasets import DATASETS
    from ..nets import ARCHITECTURES

    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="notebook")
    parser.add_argument("--epochs", type=positive, default=10)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--batch-size", type=positive, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--snapshot-every", type=non_negative, default=0, help="also snapshot every N steps")
    parser.add_argument(
        "--out",
        default=None,
        help="run name (a folder in the runs folder: $VIS_CORE_RUNS, or runs/ in the project; the dashboard "
        "lists it) or a folder path; default <dataset>-<arch>-seed<seed>-<time>",
    )


@command("train", "train a small CNN and save a run folder with snapshots", _train_args)
def _train(args: argparse.Namespace) -> dict[str, Any]:
    from ..training import train

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
