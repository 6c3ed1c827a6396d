"""A talk in the real browser at 1280x720: built from three pages, saved (a download), loaded in a
fresh session (an upload), and presented: no sidebar, Next/Back and the arrow keys move through
the slides, each slide shows its picture. Screenshots in ``test-artifacts/talk-*.png``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import browser as web
from tests.support.browser import settle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LONG = 180_000
SLIDES = [  # navigation entry, slide title
    ("Photo and guesses", "What the model sees"),
    ("Feature maps", "Strongest filters"),
    ("Where it looked", "Where it looked"),
]
#: A picture the page drew (a chart or an image), in the main area and not left over from the last run.
PICTURE = (
    '[data-testid="stMain"] [data-testid="stElementContainer"]:not([data-stale="true"]) '
    ':is(.js-plotly-plot .main-svg, [data-testid="stImage"] img)'
)

pytestmark = pytest.mark.e2e
expect.set_options(timeout=LONG)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with web.module_dashboard(tmp_path_factory, keep_log=ARTIFACTS / "talk-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def chromium():
    with web.chromium() as instance:
        yield instance


def new_tab(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    context.set_default_timeout(LONG)
    return context, context.new_page()


def add_view(page, title: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Add this view to my talk").click()
    box = page.get_by_label("Title (optional)")
    box.fill(title)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Add to my talk").click()
    expect(page.get_by_text("to your talk")).to_be_visible()
    settle(page)
    page.keyboard.press("Escape")  # close the popover


def open_page(page, title: str) -> None:
    """Go to a page through the sidebar's navigation (its "View more" first, where the window is short)."""
    link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if not link.count() and more.count() and "more" in more.inner_text():
        more.click()
    link.click()
    settle(page, LONG)


def no_exception(page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_a_talk_built_saved_loaded_and_presented(server, chromium, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = new_tab(chromium)
    page.goto(f"{server}/overview")
    settle(page, LONG)
    for number, (entry, title) in enumerate(SLIDES):
        if number:
            open_page(page, entry)
        if entry == "Feature maps":  # a page setting the slide must keep
            page.locator('[data-testid="stSidebar"]').get_by_text("Top-N by max").click()
            settle(page)
        add_view(page, title)
    open_page(page, "My talk")
    for number in (1, 2, 3):
        expect(page.get_by_text(f"Slide {number} ·")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "talk-built.png")
    with page.expect_download() as download:
        page.get_by_role("button", name="Save the talk (JSON)").click()
    saved = tmp_path / "talk.json"
    download.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert [slide["title"] for slide in document["slides"]] == [title for _, title in SLIDES]
    assert document["slides"][1]["settings"]["show"] == "top-n-by-max"
    no_exception(page)
    context.close()

    context, page = new_tab(chromium)  # a fresh session: nothing but the file
    received: list[int] = []  # the size of each message the server sends
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: received.append(len(frame))))
    page.goto(f"{server}/talk")
    settle(page, LONG)
    expect(page.get_by_text("No slides yet")).to_be_visible()
    page.locator('[data-testid="stMain"] [data-testid="stFileUploader"] input[type="file"]').set_input_files(saved)
    expect(page.get_by_text("Slide 3 ·")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Present").click()
    expect(page.get_by_text("Slide 1 of 3")).to_be_visible()
    expect(page.locator('[data-testid="stSidebar"]')).to_be_hidden()

    def shows(number: int) -> None:
        expect(page.get_by_text(f"Slide {number} of 3")).to_be_visible()
        expect(page.get_by_role("heading", name=SLIDES[number - 1][1]).first).to_be_visible()
        expect(page.locator(PICTURE).first).to_be_visible()
        settle(page, LONG)
        expect(page.locator('[data-testid="stSidebar"]')).to_be_hidden()
        no_exception(page)
        page.screenshot(path=ARTIFACTS / f"talk-slide-{number}.png")

    shows(1)
    page.keyboard.press("ArrowRight")
    shows(2)
    expect(page).to_have_url(re.compile(r"/feature_maps\?.*show=top-n-by-max"))  # the slide's own setting
    page.get_by_role("button", name="Next").click()
    shows(3)
    page.keyboard.press("ArrowLeft")
    shows(2)
    page.get_by_role("button", name="Back").click()
    shows(1)
    # a slide is its page's first screen; W (or "Whole page") draws the rest, the next slide does not
    page.keyboard.press("ArrowRight")
    shows(2)
    filters = page.get_by_text(re.compile(r"^All filters of"))
    expect(filters).to_have_count(0)
    page.keyboard.press("w")
    expect(filters).to_be_visible()
    settle(page)
    # back on a slide shown four slide changes ago: the browser still holds its charts (Streamlit's
    # message cache, kept for 20 runs in .streamlit/config.toml), so nothing large is sent again
    received.clear()
    page.keyboard.press("ArrowRight")
    shows(3)
    assert sum(received) < 60_000, f"{sum(received):,} bytes sent again"  # its Grad-CAM chart alone is 160 kB
    expect(page.get_by_role("heading", name="Compare methods")).to_have_count(0)
    page.get_by_role("button", name="Exit").click()
    expect(page.locator('[data-testid="stSidebar"]')).to_be_visible()
    # the sidebar, not drawn while presenting, comes back holding the slide shown (its filter)
    last = document["slides"][2]
    expect(page.get_by_role("spinbutton", name=re.compile(r"^Filter"))).to_have_value(str(last["filter"]))
    settle(page, LONG)  # the run after Exit replaces the slide's elements; until it ends the old ones may linger
    expect(page.locator("h1").filter(has_text="Where it looked")).to_have_count(1)
    expect(page.locator("h1").filter(has_text="Where it looked")).to_be_visible()
    expect(page.get_by_role("heading", name="Compare methods")).to_be_visible()  # the whole page again
    no_exception(page)
    context.close()
