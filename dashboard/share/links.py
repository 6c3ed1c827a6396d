"""The address bar carries the whole view:
``/activation_maps?model=…&image=coffee&layer=…&filter=5&method=scorecam&class=285``.

Beside the sidebar's model, sample photo, layer and filter, a link carries the page's own settings
(:mod:`dashboard.share.settings`: method, class, mode...; only those that differ from where the page
starts, so links stay short). A lecturer can bookmark each view of a talk, a reload keeps the
view, and a link opens it for someone else. Links are read once per session and every value is
checked like a click; what does not fit is named in a toast and the usual default is used instead.

A talk's slide is the same thing as a link (:mod:`dashboard.share.talks`): :func:`check` checks both,
and :func:`stage` puts a checked view into the session for the next run to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

import vis_core
from dashboard import state
from dashboard.share import settings

#: The sidebar's part of a link; the page's own settings follow (``settings.PAGES``).
from dashboard.sidebar import image_source, layer_choice, model_choice, own_weights
from dashboard.words import escape

LINK_KEYS = ("model", "image", "layer", "filter")
#: Longest value read for each of :data:`LINK_KEYS`.
MAX_VALUE = 200


@dataclass(frozen=True)
class Checked:
    """A view's values that passed the checks (None: not given, or refused), and what was refused."""

    model: str | None = None
    sample: str | None = None
    layer: str | None = None
    channel: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def sample_named(text: str) -> str | None:
    """The sample photo a link names (its display name or short name), or None."""
    return next((name for name in vis_core.sample_names() if text in (name, image_source.slug(name))), None)


def check(page: str, params: dict[str, str], *, strict: bool = False) -> Checked:
    """Check a view's values (text, by link name) as clicks are checked, without changing the session.

    The model must be offered here; the photo one of the samples; the layer one of the model's
    layers with feature maps, the filter one of its filters; the page's settings what its widgets
    offer for that model and layer (``settings.parse``; with ``strict``, no other names). Each
    value refused is named in ``problems``.
    """
    problems: list[str] = []
    text = {key: str(params.get(key, ""))[:MAX_VALUE] for key in LINK_KEYS}
    model = None
    if text["model"]:
        if text["model"] in model_choice.choices():
            model = text["model"]
        else:
            problems.append(f"model {text['model']!r} is not available here")
    name = model or st.session_state.get(state.MODEL_NAME) or model_choice.trusted_model() or vis_core.DEFAULT_MODEL
    try:
        handle = model_choice.load_handle(name)
    except vis_core.VisCoreError as exc:
        return Checked(problems=[*problems, str(exc)])
    sample = None
    if text["image"]:
        sample = sample_named(text["image"])
        if sample is None:
            problems.append(f"photo {text['image']!r} is not one of the samples")
    layer = None
    if text["layer"]:
        info = handle.layers.get(text["layer"])
        if info is not None and layer_choice.has_maps(info):
            layer = text["layer"]
        else:
            problems.append(f"layer {text['layer']!r} is not one of {handle.name}'s layers with feature maps")
    shown_layer = layer or st.session_state.get(state.LAYER)
    if shown_layer not in handle.layers or not layer_choice.has_maps(handle.layers[shown_layer]):
        shown_layer = layer_choice.default_layer(handle)
    channel = None
    if text["filter"]:
        channels = handle.layers[shown_layer].channels
        if re.fullmatch(r"[0-9]{1,7}", text["filter"]) and int(text["filter"]) < channels:  # '²'.isdigit() is True
            channel = int(text["filter"])
        else:
            problems.append(f"filter {text['filter']!r} is not one of {shown_layer}'s 0–{channels - 1}")
    extra = {key: value for key, value in params.items() if key not in LINK_KEYS}
    values, refused = settings.parse(page, extra, handle, shown_layer, strict=strict)
    return Checked(model, sample, layer, channel, values, problems + refused)


def stage(page: str, view: Checked, *, reset: bool) -> None:
    """Put a checked view into the session before the sidebar's widgets are drawn: the model and
    photo now, the layer and filter as a request the sidebar applies once the model is loaded
    (``layer_choice.want``), the page's settings once ``page`` is the page being drawn
    (:func:`apply_settings`). With ``reset`` (a
    slide), the page's settings the view does not name go back to where the page starts."""
    if view.model is not None:
        st.session_state[state.MODEL_CHOICE] = view.model  # loaded with the usual checks
    if view.sample is not None:
        image_source.use_sample(view.sample)
    if view.layer is not None or view.channel is not None:
        layer_choice.want(view.layer, view.channel)
    st.session_state[state.LINK_SETTINGS] = (page, dict(view.values), reset)


def read(page: str) -> None:
    """Once per session, take the view from the URL: a toast names each value refused."""
    if st.session_state.get(state.LINK_READ):
        return
    st.session_state[state.LINK_READ] = True
    params = {key: st.query_params.get(key, "") for key in st.query_params}
    if not params:
        return
    view = check(page, params)
    for problem in view.problems:
        st.toast(escape.markdown(f"The link's {problem}: showing the usual default instead."))
    stage(page, view, reset=False)


def apply_settings(page: str) -> None:
    """Apply a staged view's page settings when ``page`` is the page it was staged for."""
    pending = st.session_state.get(state.LINK_SETTINGS)
    if pending is not None and pending[0] == page:
        del st.session_state[state.LINK_SETTINGS]
        settings.apply(page, pending[1], reset=pending[2])


def params(page: str, model_name: str, image_key: str, layer: str, channel: int, page_settings: dict) -> dict:
    """A view's link parameters (only what a link can reproduce: no uploads, no own weights)."""
    link = {"model": model_name, "layer": layer, "filter": str(channel)}
    if model_name in own_weights.own_models():  # this session's uploaded weights: nobody else has them
        del link["model"]
    if image_key.startswith(image_source.SAMPLE_PREFIX):
        link["image"] = image_source.slug(image_key.removeprefix(image_source.SAMPLE_PREFIX))
    return {**link, **page_settings}


def write(page: str, model_name: str, image_key: str, layer: str, channel: int) -> None:
    """Put the view in the address bar: the selection and the page's settings that differ from
    where the page starts."""
    own = settings.link(page, st.session_state, st.session_state[state.SELECTION])
    show(params(page, model_name, image_key, layer, channel, own))


def show(link: dict[str, str]) -> None:
    """Put a link's parameters in the address bar (the browser is told only when they change)."""
    if st.query_params.to_dict() != link:
        st.query_params.from_dict(link)
