"""The walkthrough's two crashing sequences (#23), in Chromium: what AppTest cannot show, because
it keeps a widget's value where the browser sends back the label it was drawn with.

1. Where it looked, Chelsea -> coffee -> rocket in the sidebar: the page crashed on the second
   change (a label, "Egyptian cat (71%)", reached ``ClassIndex.text``) and explained the first
   photo's class over the others.
2. The Atlas page's own build: the layer menu said "no atlas yet" right after it, and the address
   bar carried ``atlas_layer=features.1-16-filters-no-atlas-yet``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.support import browser as web
from tests.support.browser import alert, settle, wait_until

LONG = 180_000
pytestmark = pytest.mark.e2e
expect.set_options(timeout=LONG)


#: A projector's screen.
VIEWPORT = {"width": 1280, "height": 720}


def top_label(name: str) -> str:
    import vis_core

    return vis_core.predict(vis_core.load_model(), vis_core.sample_image(name)).labels[0]


def main_title(page) -> str:
    return page.evaluate(
        "() => { const el = document.querySelector('.js-plotly-plot');"
        " return (el && el.layout && el.layout.title && el.layout.title.text) || ''; }"
    )


def query(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def test_where_it_looked_through_two_photo_changes(server, page):
    page.goto(f"{server}/activation_maps")
    settle(page, LONG)
    for name in ("chelsea", "coffee", "rocket"):
        if name != "chelsea":
            web.choose_sample(page, name)
        label = top_label(name)
        wait_until(lambda label=label: f"for '{label}'" in main_title(page), 120, f"the map of '{label}' on {name}")
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        class_box = page.get_by_role("combobox", name="Explain the class")
        expect(class_box).to_have_value(re.compile(rf"^{re.escape(label)} \(\d+%\)$"))
        assert query(page)["image"] == name


def test_the_atlas_page_says_what_it_just_built(server, page):
    page.goto(f"{server}/atlas?layer=features.1")
    settle(page, LONG)
    main = page.locator('[data-testid="stMainBlockContainer"]')
    expect(main.get_by_text("features.1 has no atlas yet.")).to_be_visible()
    for label, value in (
        ("Steps per picture", "4"),
        ("Picture size (pixels)", "32"),
        ("Photo patches per filter", "2"),
    ):
        box = main.get_by_role("spinbutton", name=label)
        box.fill(value)
        box.press("Enter")
        settle(page, LONG)
    main.get_by_role("button", name="Build the atlas of features.1").click()
    expect(alert(page, "The atlas of features.1 is built")).to_be_visible()
    layer_box = main.get_by_role("combobox", name="Layer")
    expect(layer_box).to_have_value("features.1 · 16 filters · in the atlas")
    # the link names the layer by its id (here the sidebar's layer, where the page starts: left out)
    wait_until(lambda: query(page).get("layer") == "features.1", 60, "the link to name the layer")
    assert query(page).get("atlas_layer", "features.1") == "features.1", page.url
    expect(main.get_by_text("features.1 has no atlas yet.")).to_have_count(0)
    page.reload()  # the link opens the same view, with no notice
    settle(page, LONG)
    expect(main.get_by_role("combobox", name="Layer")).to_have_value("features.1 · 16 filters · in the atlas")
    expect(page.locator('[data-testid="stToast"]')).to_have_count(0)
