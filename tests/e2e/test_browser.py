"""The real thing: `streamlit run` on 127.0.0.1 driven by Debian's Chromium through Playwright.

What AppTest cannot see: rendering, the websocket, uploads. Every page is opened and a
screenshot saved in ``test-artifacts/`` (look at them); uploads of good and bad files go
through the real upload path.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from dashboard import local_server
from dashboard.local_server import settle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = local_server.CHROMIUM
PAGES = {
    "": "Overview",
    "feature_maps": "Feature maps",
    "filters": "Filters",
    "projection": "Projection to pixels",
    "activation_maps": "Activation maps",
    "deep_dream": "Deep dream",
    "feature_vis": "Feature visualisation",
    "reconstruction": "Feature reconstruction",
    "training_lab": "Training lab",
}
NO_CHART_UNTIL_ASKED = {"training_lab", "deep_dream", "feature_vis", "reconstruction"}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `make test` installs Debian's chromium for these tests.")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    log = tmp_path_factory.mktemp("log") / "streamlit.log"
    with local_server.dashboard(tmp_path_factory.mktemp("runs"), log=log) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with local_server.chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    tab = context.new_page()
    yield tab
    context.close()


def no_exception(tab) -> None:
    assert tab.locator('[data-testid="stException"]').count() == 0, tab.inner_text("body")[:2000]


@pytest.mark.parametrize("path, title", list(PAGES.items()))
def test_every_page_renders(server, page, path, title):
    page.goto(f"{server}/{path}")
    settle(page)
    assert page.locator("h1").first.inner_text().strip() == title
    no_exception(page)
    if path not in NO_CHART_UNTIL_ASKED:
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{path or 'overview'}.png"), full_page=True)


def _upload(page, path: Path) -> None:
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').filter(
        has_text="Upload an image"
    )
    uploader.locator("input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(800)
    settle(page)


def test_uploads_good_and_bad(server, page, tmp_path):
    import vis_core
    from tests.test_images import png_claiming

    good = tmp_path / "rocket.jpg"
    vis_core.sample_image("rocket").save(good)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"%PDF-1.7 not an image")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(30000, 30000))
    page.goto(server)
    settle(page)
    page.get_by_test_id("stRadioGroup").get_by_text("Upload", exact=True).click()
    settle(page)
    _upload(page, good)
    assert page.get_by_text("In use: upload rocket.jpg").count() == 1
    for bad, reason in ((fake, "PDF document"), (bomb, "too large")):
        _upload(page, bad)
        alert = page.locator('[data-testid="stAlert"]').first
        assert reason in alert.inner_text() and "previous image is still in use" in alert.inner_text()
        assert page.get_by_text("In use: upload rocket.jpg").count() == 1  # nothing was lost
        no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "upload-refused.png"))


def test_filter_change_updates_the_page(server, page):
    page.goto(f"{server}/feature_maps")
    settle(page)
    box = page.get_by_role("spinbutton", name="Filter (channel) 0–63")
    box.fill("7")
    box.press("Enter")
    settle(page)
    assert page.locator("text=features.10 · filter 7").count() >= 1
    no_exception(page)


def test_a_link_opens_its_view_and_the_address_bar_follows(server, page):
    page.goto(f"{server}/feature_maps?image=coffee&layer=features.5.conv.1&filter=7")
    settle(page)
    assert page.get_by_text("In use: coffee").count() == 1
    assert page.locator("text=features.5.conv.1 · filter 7").count() >= 1
    box = page.get_by_role("spinbutton", name="Filter (channel) 0–191")
    box.fill("9")
    box.press("Enter")
    settle(page)
    assert "filter=9" in page.url and "layer=features.5.conv.1" in page.url and "image=coffee" in page.url
    local_server.open_page(page, "Overview")
    settle(page)
    assert "filter=9" in page.url and "image=coffee" in page.url  # the next page keeps the view
    no_exception(page)


class _Canary:
    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_own_weights_upload_and_refusal(server, page, tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "mine.pt"
    torch.save(torchvision.models.squeezenet1_1(weights=None, num_classes=4).state_dict(), weights)
    canary = tmp_path / "canary.txt"
    _Canary.path = str(canary)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Canary(), protocol=2))

    page.goto(server)
    settle(page)
    page.get_by_text("Use your own weights").click()
    architecture = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Architecture")
    architecture.click()
    page.keyboard.type("squeezenet1_1")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').filter(has_text="Weights")
    uploader.locator("input[type=file]").set_input_files(str(evil))
    page.get_by_role("button", name="Load my model").click()
    settle(page)
    assert "refused" in page.locator('[data-testid="stAlert"]').first.inner_text()
    assert not canary.exists()
    uploader.locator("input[type=file]").set_input_files(str(weights))
    page.get_by_role("button", name="Load my model").click()
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "own-weights.png"))
    body = page.inner_text("body")
    assert "each of the 4 things it knows" in body and "Filter (channel) 0–383" in body, body[:1500]  # a Fire block
    no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "own-weights.png"))


def test_short_dream_and_png_download(server, page, tmp_path):
    page.goto(f"{server}/deep_dream")
    settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    for label, value in (("Octaves", 1), ("Steps per octave", 2)):
        slider = sidebar.get_by_role("slider", name=label)
        slider.focus()
        page.keyboard.press("Home")
        for _ in range(value - 1):
            page.keyboard.press("ArrowRight")
        settle(page)
    page.get_by_role("button", name="Dream", exact=True).click()
    page.wait_for_selector("text=1 octave × 2 steps", timeout=120_000)
    no_exception(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download the dream (PNG, full size)").click()
    saved = tmp_path / "dream.png"
    download.value.save_as(saved)
    from PIL import Image

    assert Image.open(saved).size == (451, 300)  # full size of the sample photo
    page.screenshot(path=str(ARTIFACTS / "dream.png"), full_page=True)


def test_concurrent_viewers_each_see_their_own_image(server, browser):
    """Three sessions change photo at the same moment; each chart shows that viewer's numbers."""
    import numpy as np

    import vis_core

    handle = vis_core.load_model()
    photos = ["coffee", "astronaut", "rocket"]
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1200}) for _ in photos]
    try:
        pages = [context.new_page() for context in contexts]
        for tab in pages:
            tab.goto(f"{server}/feature_maps")
        for tab in pages:
            tab.wait_for_selector("text=features.10 · filter 0", timeout=90_000)
        for tab, name in zip(pages, photos):  # no waiting in between: the runs overlap on the server
            local_server.choose_sample(tab, name, wait=False)
        for tab, name in zip(pages, photos):
            local_server.in_use(tab, name).wait_for(timeout=90_000)
            settle(tab)
            no_exception(tab)
            (large,) = [chart for chart in local_server.charts(tab) if chart["title"] == "features.10 · filter 0"]
            shown = next(trace["z"] for trace in large["traces"] if trace["type"] == "heatmap")
            expected = vis_core.feature_maps(handle, vis_core.sample_image(name), ["features.10"])
            np.testing.assert_allclose(shown, expected.activations["features.10"][0], rtol=1e-5, atol=1e-6)
    finally:
        for context in contexts:
            context.close()


def test_the_server_logged_no_error(server):
    """Last in this module: whatever the browsers did, no script run raised (the page may hide it)."""
    text = Path(server.log).read_text(errors="replace")
    assert "Traceback" not in text, text[text.find("Traceback") :][:3000]
