"""Run the browser tests again and again while another process keeps one core busy.

``python -m tests.support.stress [--runs 5] [pytest args...]``: a flaky check shows up here
long before it shows up in CI. Prints one line per run and exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time


def _spin() -> None:  # pragma: no cover - runs in the busy process
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args, pytest_args = parser.parse_known_args(argv)
    busy = multiprocessing.Process(target=_spin, daemon=True)
    busy.start()
    failures = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e", *pytest_args]
            done = subprocess.run(command, capture_output=True, text=True)
            summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
            failures += done.returncode != 0
            print(f"run {run}/{args.runs}: exit {done.returncode} in {time.monotonic() - started:.0f} s: {summary}")
            if done.returncode:
                print(done.stdout[-4000:])
    finally:
        busy.terminate()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
