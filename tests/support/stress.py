"""Run the browser tests again and again while another process keeps one core busy.

``python -m tests.support.stress [--runs 5] [pytest args...]``: a flaky check shows up here
long before it shows up in CI. Prints one line per run and exits non-zero if any run failed.

``--viewer N`` runs the whole-app state machine (``tests/test_one_view.py``) instead, each run
with N random sequences of 30 steps (``make test`` runs 4 fixed ones of 10).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def _spin() -> None:  # pragma: no cover - runs in the busy process
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--viewer", type=int, default=0, help="random sequences per run of the state machine")
    args, pytest_args = parser.parse_known_args(argv)
    environment = dict(os.environ)
    tests = ["tests/e2e"]
    if args.viewer:
        environment.update(VIEWER_EXAMPLES=str(args.viewer), VIEWER_STEPS="30", VIEWER_RANDOM="1")
        tests = ["tests/test_one_view.py", "-k", "Viewer"]
    busy = multiprocessing.Process(target=_spin, daemon=True)
    busy.start()
    failures = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *pytest_args]
            done = subprocess.run(command, capture_output=True, text=True, env=environment)
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
