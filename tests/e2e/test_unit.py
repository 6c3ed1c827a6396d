"""One place per unit (#15) in a real browser at 1280x720: a click on a tile of the Feature maps
grid chooses that filter in the sidebar and offers a link to the One filter page; the Layer menu's
plain label is not cut off in the sidebar. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import browser as web
from tests.support.browser import settle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LONG = 180_000  # ms: generous for a 2-core machine; a passing check returns as soon as it holds
CLICKED = 5  # a tile of features.10's grid that is not the default filter (14)

pytestmark = pytest.mark.e2e
expect.set_options(timeout=LONG)

#: The pixel of the click target of ``channel`` in the first grid on the page whose tiles carry
#: click targets (the scatter trace ``dashboard.figures.maps.click_targets`` adds).
_TARGET = """(channel) => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const trace = (plot._fullData || []).find(t => t.mode === 'markers' && t.customdata);
    if (!trace) continue;
    const index = trace.customdata.findIndex(c => c[0] === channel);
    if (index < 0) continue;
    plot.scrollIntoView({block: 'center'});
    const layout = plot._fullLayout, frame = plot.querySelector('.nsewdrag').getBoundingClientRect();
    return [frame.left + layout.xaxis.l2p(trace.x[index]), frame.top + layout.yaxis.l2p(trace.y[index])];
  }
  return null;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with web.module_dashboard(tmp_path_factory) as url:
        yield url


@pytest.fixture
def page():
    with web.chromium() as instance:
        context = instance.new_context(viewport={"width": 1280, "height": 720})
        context.set_default_timeout(LONG)
        yield context.new_page()
        context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_a_click_on_a_tile_chooses_its_filter_and_links_to_everything_about_it(server, page):
    page.goto(f"{server}/feature_maps")
    settle(page, LONG)
    expect(page.locator("h1").first).to_have_text("Feature maps")
    sidebar = page.locator('[data-testid="stSidebar"]')
    filter_box = sidebar.get_by_role("spinbutton", name=re.compile(r"^Filter \(channel\)"))
    expect(filter_box).to_have_value("14")  # the filter with the clearest response on chelsea

    # The Layer menu's label (name and plain depth) fits the sidebar: not cut off with an ellipsis.
    layer_text = sidebar.get_by_role("combobox", name="Layer")
    expect(layer_text).to_have_value("features.10 · parts of objects")
    fits = layer_text.evaluate("node => node.scrollWidth <= node.clientWidth + 1")
    assert fits, "the Layer menu's label is cut off in the sidebar"
    layer_text.scroll_into_view_if_needed()
    shot(page, "unit-sidebar-layer")

    where = web.wait_until(lambda: page.evaluate(_TARGET, CLICKED), message="the grid's click targets")
    page.mouse.move(*where)
    page.mouse.click(*where)
    expect(filter_box).to_have_value(str(CLICKED))
    expect(page.locator("text=features.10 · filter 5").first).to_be_visible()  # the large map follows
    expect(page).to_have_url(re.compile(r"filter=5"))
    link = page.get_by_role("link", name=f"Everything about filter {CLICKED}").last
    expect(link).to_be_visible()
    shot(page, "unit-after-tile-click")

    link.click()
    expect(page.locator("h1").first).to_have_text("One filter")
    expect(page).to_have_url(re.compile(r"/unit\b"))
    expect(page.get_by_role("heading", name=f"Filter {CLICKED} of features.10")).to_be_visible()
    expect(filter_box).to_have_value(str(CLICKED))
    settle(page, LONG)
    expect(page.get_by_text("The photo patches that excite it most", exact=True)).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    shot(page, "unit-page")
