"""Run the benchmark suites and write JSON to ``benchmarks/results/``.

Usage: ``python -m benchmarks.run [--suite NAME ...] [--device auto|cpu|cuda] [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import sys

from vis_core.loading import resolve_device
from vis_core.memory import keep_freed_memory

from . import (
    bench_allocator,
    bench_atlas,
    bench_attribution,
    bench_browser,
    bench_cold_start,
    bench_featuremaps,
    bench_featurevis,
    bench_jobs,
    bench_load,
    bench_progressive,
    bench_training,
)
from .common import RESULTS, write

SUITES = {
    "allocator": bench_allocator.run,
    "featuremaps": bench_featuremaps.run,
    "cold_start": bench_cold_start.run,
    "training": bench_training.run,
    "attribution": bench_attribution.run,
    "featurevis": bench_featurevis.run,
    "load": bench_load.run,
    "progressive": bench_progressive.run,
    "browser": bench_browser.run,
    "atlas": bench_atlas.run,
    "jobs": bench_jobs.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="suite(s) to run (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"keep_freed_memory: {keep_freed_memory()}")  # as the dashboard and the CLI do (vis_core.memory)
    from pathlib import Path

    for name in args.suite or list(SUITES):
        payload = SUITES[name](device, args.repeats)
        path = write(name, device, payload, Path(args.out))
        print(f"{name}: {path}")
        print(json.dumps(payload, indent=1)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
