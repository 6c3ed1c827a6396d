"""Each page's settings as a link and a talk's slide carry them, derived from the pages'
declarations (``dashboard.views.declare``; each page module in ``views/`` states its :class:`Page`).

Text from a link or a talk file is parsed and checked here exactly as a click would be: only a
value the setting offers for this model and layer gets through (a crafted link is a crafted
client: THREATS.md); anything else is named in a message and the setting keeps its start.
:func:`warm` computes a view's results ahead by calling the page's own ``work``, so presenting a
talk finds every slide in the caches.

Left out of a page's settings: widgets whose key or range changes with the layer (a page number
of the mosaic, a gallery's filter range) and results of buttons (a dream, a painting).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

import vis_core
from dashboard.sidebar.image_source import ImageEntry
from dashboard.views import (
    activation_maps,
    atlas,
    deep_dream,
    feature_maps,
    feature_vis,
    filters,
    overview,
    projection,
    reconstruction,
    tour,
    training_lab,
    unit,
)
from dashboard.views.declare import VARIES, Context, Invalid, Page, Setting, View, resolve, slug
from dashboard.words import escape
from dashboard.work import refine
from vis_core import ModelHandle

__all__ = ["PAGES", "VARIES", "View", "capture", "link", "parse", "warm"]

#: Longest text a link or a talk file may give for one setting (the longest list of layers fits).
MAX_TEXT = 600

#: Every page with a declaration, by its address.
PAGES: dict[str, Page] = {
    module.PAGE.name: module.PAGE
    for module in (
        tour,
        overview,
        feature_maps,
        filters,
        unit,
        projection,
        atlas,
        activation_maps,
        deep_dream,
        feature_vis,
        reconstruction,
        training_lab,
    )
}

for _page in PAGES.values():  # a link name or an option's slug must say one thing
    assert len({s.name for s in _page.settings}) == len(_page.settings), _page.name
    for _setting in _page.settings:
        _options = getattr(_setting.kind, "options", None)
        if _options is not None and not callable(_options):
            assert len({slug(o) for o in _options}) == len(_options), _setting.key


def page(name: str) -> Page:
    """The declaration of page ``name`` (a page without one has no settings and no work)."""
    return PAGES.get(name) or Page(name)


def of(name: str) -> tuple[Setting, ...]:
    """The settings of page ``name`` (none for a page that has none)."""
    return page(name).settings


def parse(
    name: str, params: Mapping[str, str], handle: ModelHandle, layer: str, *, strict: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Check a link's or a slide's settings (by link name, as text) the way a click is checked.

    Returns the values that page ``name`` offers for ``handle`` and ``layer`` (by key), and one
    message per text refused (its setting keeps its value). With ``strict``, a name that is not
    one of the page's settings is refused too (a talk file), else ignored (a link's other
    parameters).
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    known = {setting.name for setting in of(name)}
    if strict:
        problems += [f"{name} has no setting {str(key)[:40]!r}" for key in params if key not in known]
    for setting in of(name):
        if setting.name not in params:
            continue
        text = params[setting.name]
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            problems.append(f"setting {setting.name!r} is not a short text")
            continue
        try:
            values[setting.key] = setting.kind.parse(text, Context(handle, None, layer, 0, values))
        except Invalid as exc:
            problems.append(f"{setting.name} {text[:80]!r} {exc}")
        except (KeyError, ValueError, vis_core.VisCoreError) as exc:  # an offer that could not be listed
            problems.append(f"{setting.name} {text[:80]!r} cannot be checked here ({exc})")
    return values, problems


def _present(name: str, session: Mapping[str, Any]) -> list[tuple[Setting, Any]]:
    """The page's settings the session holds (None: nothing to offer now, e.g. no lab run yet)."""
    return [(s, session[s.key]) for s in of(name) if s.key in session and session[s.key] is not None]


def capture(name: str, session: Mapping[str, Any]) -> dict[str, str]:
    """Every setting of page ``name`` that the session holds (the page resolved them), as text."""
    return {setting.name: setting.kind.text(value) for setting, value in _present(name, session)}


def link(name: str, session: Mapping[str, Any], chosen: Any) -> dict[str, str]:
    """The settings a link needs: those that differ from where page ``name`` starts for the
    selection ``chosen`` (a ``shell.Selection``), so links stay short and a link opened elsewhere
    resolves the rest exactly as here (a start may depend on the settings before it)."""
    before: dict[str, Any] = {}
    needed: dict[str, str] = {}
    for setting in of(name):
        value = session.get(setting.key)
        if value is None:
            continue
        context = Context(chosen.handle, chosen.image, chosen.layer, chosen.channel, dict(before))
        before[setting.key] = value
        start = setting.start(context)
        if start is None or setting.kind.text(start) != setting.kind.text(value):
            needed[setting.name] = setting.kind.text(value)
    return needed


def apply(name: str, values: Mapping[str, Any], *, reset: bool) -> None:
    """Put checked ``values`` (by key) into the session before page ``name`` resolves its view;
    with ``reset`` (a slide is the whole view), the page's other settings go back to their start."""
    for setting in of(name):
        if setting.key in values:
            st.session_state[setting.key] = values[setting.key]
        elif reset:
            st.session_state.pop(setting.key, None)


def view(name: str, handle: ModelHandle, image: ImageEntry, layer: str, channel: int, values: Mapping) -> View:
    """A slide's view, to compute ahead: this selection and these checked values (every other
    setting at its start)."""
    resolved, _ = resolve(page(name), handle, image, layer, channel, values)
    return View(name, handle, image, layer, channel, resolved, ahead=True)


def cost(target: View) -> float:
    """Passes of the network the page's work needs for ``target`` (``vis_core.costs`` units)."""
    return float(page(target.page).cost(target))


def warm(target: View, *, wait: float = 600.0) -> Any:
    """Compute ``target``'s results into the caches its page reads, by the page's own ``work``
    (maps that refine are waited on, at most ``wait`` s); returns them."""
    results = page(target.page).work(target)
    jobs = list(results.values()) if isinstance(results, dict) else [results]
    refining = [job for job in jobs if isinstance(job, refine.Refinement)]
    deadline = time.monotonic() + wait
    while any(not job.done and not job.stopped for job in refining) and time.monotonic() < deadline:
        for job in refining:
            job.seen = time.monotonic()  # someone is waiting: keep refining
        time.sleep(0.1)
    return results


def describe(problems: Sequence[str]) -> str:
    """Messages for a notice, shown as text."""
    return escape.markdown("; ".join(problems))
