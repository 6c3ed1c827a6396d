"""The sidebar shared by every page: model, image, layer and filter (channel).

Each part has its module: :mod:`dashboard.sidebar.model_choice` (the Model menu and
:mod:`dashboard.sidebar.own_weights`), :mod:`dashboard.sidebar.image_source`, :mod:`dashboard.sidebar.layer_choice`,
and :mod:`dashboard.share.links` (the address bar, with the page's own settings). This module draws
them in order and hands pages a :class:`Selection`; it also draws "Add this view to my talk"
and, while a talk is presented, the presenter's controls instead of the sidebar
(:mod:`dashboard.share.talks`). The keys they keep in ``st.session_state`` are named in
:mod:`dashboard.state`. Anything a person can get wrong (an unreadable upload, a model whose
weights cannot be fetched) becomes a message while the previous, working choice stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import vis_core
from dashboard import state
from dashboard.share import links, present, settings, talks
from dashboard.sidebar import image_source, layer_choice, model_choice, own_weights
from dashboard.sidebar.image_source import ImageEntry
from dashboard.sidebar.model_choice import choose_model, run_models  # pages call these through the sidebar
from dashboard.views import declare
from dashboard.words import escape
from vis_core import LayerInfo, ModelHandle

__all__ = [
    "Selection",
    "choose_model",
    "current",
    "current_page",
    "page_titles",
    "render",
    "require_spatial",
    "run_models",
]

#: Largest file each uploader takes, in megabytes. The server's own limit
#: (``server.maxUploadSize`` in ``.streamlit/config.toml``) is the largest of them, so no widget
#: promises more than the server takes; each widget states its own.
UPLOAD_LIMITS_MB = {
    "image": image_source.MAX_IMAGE_MB,
    "labels": own_weights.MAX_LABELS_MB,
    "weights": own_weights.MAX_WEIGHTS_MB,
    "talk": talks.MAX_BYTES / 2**20,
}


@dataclass(frozen=True)
class Selection:
    """What the sidebar selected, for the pages."""

    handle: ModelHandle
    image: ImageEntry
    layer: str
    channel: int

    @property
    def model_key(self) -> str:
        return self.handle.key


def _pages() -> dict:
    ctx = get_script_run_ctx()
    return ctx.pages_manager.get_pages() if ctx is not None else {}


def current_page() -> str:
    """The page being drawn, by its file name in ``views/`` (``feature_maps``; its address too)."""
    ctx = get_script_run_ctx()
    info = _pages().get(ctx.page_script_hash) if ctx is not None else None
    return Path(info["script_path"]).stem if info else ""


def page_titles() -> dict[str, str]:
    """Each page's title in the navigation, by file name."""
    return {Path(info["script_path"]).stem: info["page_name"] for info in _pages().values()}


def render() -> Selection:
    """Draw the shared sidebar and return the current selection (``app.py`` calls it once per run)."""
    page = current_page()
    links.read(page)
    talks.show_pending(page)  # presenting: the slide Next or Back asked for (may switch page)
    options = model_choice.settle()
    state.show_flash()
    if present.presenting():  # the slide's view; no sidebar (see talks.present_bar)
        try:
            view = talks.present_bar()
        except vis_core.VisCoreError as exc:  # the slide's model cannot be loaded here now
            st.error(escape.markdown(f"This slide cannot be shown: {exc}"), icon=":material/error:")
            st.stop()
        links.apply_settings(page)
        links.show(talks.shown().params)  # the slide's link: a reload shows this view
        selection = Selection(view.handle, view.image, view.layer, view.channel)
        st.session_state[state.SELECTION] = selection
        return selection
    with st.sidebar:
        handle = model_choice.controls(options)
        image = image_source.controls()
        layer, channel = layer_choice.controls(handle)
        st.caption(
            "The address bar holds this view (page, model, photo, layer, filter and the page's settings): "
            "bookmark it or share it."
        )
        if page != "talk":
            with st.popover("Add this view to my talk", icon=":material/add_to_queue:", width="stretch"):
                st.text_input("Title (optional)", key=state.TALK_NEW_TITLE, max_chars=talks.MAX_TITLE)
                st.text_area("Note (optional)", key=state.TALK_NEW_NOTE, max_chars=talks.MAX_NOTE, height=90)
                st.button("Add to my talk", type="primary", key="talk_add", on_click=talks.add_view, args=(page,))
    links.apply_settings(page)  # before the page draws its widgets
    selection = Selection(handle, image, layer, channel)
    st.session_state[state.SELECTION] = selection
    declare.current(settings.page(page))  # the page's settings for this selection, before any is drawn
    links.write(page, st.session_state[state.MODEL_NAME], image.key, layer, channel)
    return selection


def current() -> Selection:
    """The selection the sidebar made in this run (``app.py`` draws it before every page)."""
    selection = st.session_state.get(state.SELECTION)
    return selection if selection is not None else render()


def require_spatial(info: LayerInfo) -> None:
    """Stop the page with a plain explanation when the chosen layer has no (C, H, W) map."""
    if not info.is_spatial:
        st.info(f"{info.name} has no spatial map ({info.shape_text}); choose a convolutional layer in the sidebar.")
        st.stop()
