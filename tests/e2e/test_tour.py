"""The Tour in a real browser at 1280×720, the size of a lecture-room projector: every step fits the
screen without scrolling beside the open sidebar, draws its picture, and Next, Back and the arrow
keys walk through it. A screenshot of each step is kept in ``test-artifacts/`` (look at them).

No sleeps: each check waits on the app's state and on what it checks (``tests.support.browser``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboard.work import story
from tests.support import browser as web
from tests.support.browser import settle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LONG = 300_000  # ms: the slow steps are painted on a busy 2-core machine; a passing check returns at once
WIDTH, HEIGHT = 1280, 720

pytestmark = pytest.mark.e2e
expect.set_options(timeout=LONG)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with web.module_dashboard(tmp_path_factory) as url:  # no atlas: the tour paints
        yield url


@pytest.fixture
def page():
    with web.chromium() as browser:
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        context.set_default_timeout(LONG)
        yield context.new_page()
        context.close()


def step_is_drawn(page, number: int) -> None:
    """Step ``number`` (1-based) is shown with its picture, nothing still being prepared, no exception."""
    step = story.STEPS[number - 1]
    expect(page.locator("h1").first).to_have_text(step.title)
    expect(page.get_by_text(f"step {number} of {len(story.STEPS)}")).to_be_visible()
    body = page.locator(".st-key-tour_step")
    expect(body.get_by_text("Preparing")).to_have_count(0)
    expect(body.locator(".js-plotly-plot, [data-testid='stImage'] img").first).to_be_visible()
    if step.name in ("see", "unit", "dream"):  # the photo, the filter's painting, the dream: images
        expect(body.locator("[data-testid='stImage'] img").first).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def fits_the_screen(page) -> None:
    """Title, words, buttons and picture end above the bottom of the 1280×720 window."""
    settle(page, LONG)
    for part in (page.locator(".st-key-tour_step"), page.get_by_role("button", name="Next")):
        box = part.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, box
    sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
    assert sidebar is not None and sidebar["width"] > 200  # the sidebar is open beside it


def test_the_tour_from_first_to_last_step(server, page):
    page.goto(server)
    settle(page, LONG)
    last = len(story.STEPS)
    for number in range(1, last + 1):  # with the Next button
        step_is_drawn(page, number)
        fits_the_screen(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"tour-step-{number}.png"), full_page=True)
        if number < last:
            page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("button", name="Next")).to_be_disabled()

    for number in range(last - 1, 0, -1):  # back with the left arrow key
        page.keyboard.press("ArrowLeft")
        step_is_drawn(page, number)
    expect(page.get_by_role("button", name="Back")).to_be_disabled()
    for number in range(2, last + 1):  # and to the end with the right arrow key
        page.keyboard.press("ArrowRight")
        step_is_drawn(page, number)


def test_explore_this_opens_the_full_page(server, page):
    page.goto(server)
    step_is_drawn(page, 1)  # the buttons (and their keys) are there
    for number in (2, 3):
        page.keyboard.press("ArrowRight")
        step_is_drawn(page, number)
    page.get_by_role("button", name="Explore this: Feature maps").click()
    expect(page).to_have_url(re.compile(r"/feature_maps\?"))
    expect(page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Layer")).to_have_value(
        re.compile(r"^features\.10\b")
    )
    expect(page.get_by_role("spinbutton", name="Filter (channel) 0–63")).to_have_value("27")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
