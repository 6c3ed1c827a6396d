"""Start the dashboard on a free loopback port, and Debian's Chromium to look at it.

Test and benchmark code (the browser tests and the browser and load benchmarks share it), not
part of the shipped product. The server binds 127.0.0.1 only; the browser runs headless with
the flags this closed network needs. A few helpers act as a viewer would (pick a sample photo,
move a slider) and read back what a chart shows, so tests can compare it with the engine's own
numbers.

Waiting: never a fixed sleep. :func:`settle` waits on the app's own state (Streamlit marks its
root element with ``data-test-script-state``; ``notRunning`` once a script run has finished);
since a rerun may not have started yet when an action returns, every check after an action
polls for the state it expects (Playwright's ``expect``, or :func:`wait_until`).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The app's root element once no script run is going on.
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ServerURL(str):
    """The dashboard's URL, carrying the server's process id (to read its memory) and the
    file its output goes to (None when discarded)."""

    pid: int
    log: Path | None


@contextmanager
def dashboard(runs_dir: str | Path, log: Path | None = None, timeout: float = 120) -> Iterator[ServerURL]:
    """Run the dashboard (``python -m dashboard``, as ``make run`` does) on a free port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env={**os.environ, "VIS_CORE_RUNS": str(runs_dir)},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid, url.log = process.pid, log
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the dashboard did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        if log:
            output.close()


@contextmanager
def module_dashboard(tmp_path_factory, *, keep_log: Path | None = None) -> Iterator[ServerURL]:
    """The dashboard for one browser-test module (its ``server`` fixture), with its own runs and
    atlases folders (``url.runs``, ``url.atlases``; no atlas until a test builds one). Skips
    without Debian's chromium (fails on CI, where ``make test`` installs it). When the module
    ends, the server's log must hold no traceback: whatever the pages showed, no script run
    raised, whichever tests ran and in what order. ``keep_log`` keeps a copy of the log."""
    import pytest

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `make test` installs Debian's chromium for these tests.")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    log = tmp_path_factory.mktemp("log") / "streamlit.log"
    runs, atlases = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("atlases")
    environment = pytest.MonkeyPatch()
    environment.setenv("VIS_CORE_ATLASES", str(atlases))
    try:
        with dashboard(runs, log=log) as url:
            url.runs, url.atlases = runs, atlases
            yield url
    finally:
        environment.undo()
    text = log.read_text(errors="replace")
    if keep_log is not None:
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        keep_log.write_text(text)
    assert "Traceback" not in text, text[text.find("Traceback") :][:6000]


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def settle(page, timeout: float = 90_000) -> None:
    """Wait until the app has no script run going on (Streamlit's own ``notRunning`` state).

    A rerun asked for a moment ago may not have started yet: after an action, check for the
    state you expect with ``expect`` or :func:`wait_until`, which poll.
    """
    page.locator(APP_IDLE).wait_for(timeout=timeout)


def wait_until(condition, timeout: float = 90.0, message: str = "condition"):
    """Poll ``condition()`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(0.1)


def set_slider(page, label: str, presses: int = 0, *, end: bool = False, scope: str = '[data-testid="stSidebar"]'):
    """Move the slider ``label`` to its start (or its ``end``) and ``presses`` steps right, as a
    keyboard user would. The browser sends every widget's value with each rerun it asks for, so
    a click that follows acts on these values even while the slider's own rerun is still going."""
    slider = page.locator(scope).get_by_role("slider", name=label)
    slider.focus()
    page.keyboard.press("End" if end else "Home")
    for _ in range(presses):
        page.keyboard.press("ArrowRight")


def choose_sample(page, name: str, *, wait: bool = True, timeout: float = 90_000) -> None:
    """Pick a sample photo in the sidebar, as a viewer would; with ``wait``, until the app is done."""
    box = page.get_by_role("combobox", name="Sample photo")
    box.click()
    box.fill(name)
    box.press("Enter")
    if wait:
        in_use(page, name).wait_for(timeout=timeout)
        settle(page, timeout)


def in_use(page, name: str):
    """The sidebar's caption for the image in use, once it is ``name`` (a sample's short name
    matches its display name too, e.g. ``chelsea`` for ``chelsea (cat)``)."""
    return page.get_by_text(re.compile(rf"^In use: {re.escape(name)}( \(.*\))?$"))


def alert(page, text: str):
    """The message box (error, warning, info, success) that says ``text``."""
    return page.locator('[data-testid="stAlert"]').filter(has_text=text)


def open_page(page, title: str) -> None:
    """Go to another page through the sidebar's navigation (a new URL would start a new session)."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()


def charts(page) -> list[dict]:
    """Every Plotly chart on the page as ``{"title": str, "traces": [...]}``; each trace keeps
    its ``type`` and, decoded to numpy, its ``x``, ``y`` and ``z`` (what the browser plots)."""
    import numpy as np

    raw = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
            title: (el.layout && el.layout.title && el.layout.title.text) || '',
            traces: el.data.map(t => ({type: t.type, x: t.x ?? null, y: t.y ?? null, z: t.z ?? null})),
        }))"""
    )

    def decode(value):
        if isinstance(value, dict) and "bdata" in value:  # plotly's typed-array form
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = [int(part) for part in str(value.get("shape", array.size)).split(",")]
            return array.reshape(shape)
        return (
            None if value is None else np.asarray(value, dtype=object if value and isinstance(value[0], str) else None)
        )

    for chart in raw:
        chart["title"] = chart["title"].replace("<b>", "").replace("</b>", "")
        for trace in chart["traces"]:
            for key in ("x", "y", "z"):
                trace[key] = decode(trace[key])
    return raw


def heatmap(page, title: str):
    """The values of the first heatmap in the chart titled ``title``, or None if none is shown."""
    for chart in charts(page):
        if chart["title"] == title:
            for trace in chart["traces"]:
                if trace["type"] == "heatmap":
                    return trace["z"]
    return None
