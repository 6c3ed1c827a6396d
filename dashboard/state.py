"""The names of what a session keeps in ``st.session_state``, in one place.

Every key that code reads or writes through ``st.session_state`` is named here, so the
sidebar's modules, the pages and the tests agree on it; a key only given to a widget as its
identity (``key="fm_colorscale"``) stays beside that widget. Tests set these keys before a
session's first run (``start(page, **{state.LAYER: "features.2"})``) and read them after.

Also here: the messages a callback leaves for the top of the page (:func:`flash`).
"""

from __future__ import annotations

import streamlit as st

from dashboard.words import escape

# -- the sidebar: model
#: The model in use: a name the sidebar checked and loaded.
MODEL_NAME = "model_name"
#: The Model menu's value; a choice from outside the menu (a link, a test) is checked against
#: :data:`MODEL_NAME` at the start of the next run.
MODEL_CHOICE = "model_choice"
#: A model a page's button chose, applied at the start of the next run.
PENDING_MODEL = "_pending_model"
#: This session's models from uploaded weights (name -> handle).
OWN_MODELS = "own_models"

# -- the sidebar: image
#: The image in use (an ``image_source.ImageEntry``).
IMAGE = "image_entry"
#: The Image source radio: "Sample photo", "Upload", "Camera" or "Test image".
IMAGE_SOURCE = "image_source"
SAMPLE = "sample_choice"
TEST_IMAGE = "test_image_choice"
UPLOAD = "upload"
CAMERA = "camera"

# -- the sidebar: layer and filter
#: The chosen layer, kept across model changes (the Layer widget's key is per model).
LAYER = "layer_choice"
SHOW_SUBLAYERS = "show_sublayers"
#: The chosen filter (channel) of the layer.
CHANNEL = "channel_choice"
#: What the sidebar selected in this run (a ``sidebar.Selection``).
SELECTION = "selection"

#: A layer and filter asked for (a tile, a link, a slide, the tour: ``layer_choice.want``),
#: applied before the sidebar's widgets are drawn in the next run.
WANTED = "_wanted"

# -- the sidebar: links
#: Set once the address bar's parameters were read (once per session).
LINK_READ = "_link_read"

# -- talks and links that carry a page's own settings (issue #15: dashboard.share.talks, dashboard.share.settings)
#: A staged view's page settings: (page, values by widget key, reset the others), applied when that page is drawn.
LINK_SETTINGS = "_link_settings"
#: This session's talk (a ``talks.Talk``).
TALK = "talk"
#: Presenter mode is on, and the slide shown (index into the talk).
TALK_PRESENTING = "talk_presenting"
TALK_INDEX = "talk_index"
#: A slide to show at the start of the next run (its index), set by Next, Back and Present.
TALK_PENDING = "_talk_pending"
#: The presenter asked for the whole page under the slide ("Whole page"), not its first screen only.
TALK_WHOLE = "_talk_whole"
#: "Add this view to my talk": its title and note boxes; the talk page's file uploader.
TALK_NEW_TITLE = "talk_new_title"
TALK_NEW_NOTE = "talk_new_note"
TALK_UPLOAD = "talk_upload"

# -- messages
#: Errors from a callback, shown at the top of the page in the next run.
FLASH = "_flash"

# -- pages
FILTERS_LAYER = "fl_layer"
ACTIVATION_LAYER = "am_layer"
#: The sidebar's layer the activation-maps page last followed.
ACTIVATION_SIDEBAR_LAYER = "am_sidebar_layer"
FAITHFULNESS_ON = "am_faith_on"
SANITY_ON = "am_sanity_on"
FEATURE_VIS_RESULT = "fv_result"
DEEP_DREAM_RESULT = "dd_result"
RECONSTRUCTION_RESULTS = "rc_results"
LAB_JOB = "lab_job"
LAB_RUN = "lab_run"
LAB_FLASH = "lab_flash"
LAB_OUTCOME = "lab_outcome"
#: The Atlas page: its layer and filter (widgets a link or a test may set), the sidebar's layer
#: it last followed, its build job and that job's outcome, the atlas version it drew and when the
#: build's progress last redrew the grid.
ATLAS_LAYER = "at_layer"
ATLAS_UNIT = "at_unit"
ATLAS_SIDEBAR_LAYER = "at_sidebar_layer"
ATLAS_JOB = "at_job"
ATLAS_OUTCOME = "at_outcome"
ATLAS_STAMP = "at_stamp"
ATLAS_REDRAWN = "at_redrawn"

# -- tile clicks (#15, "words"): the clicks already applied, per chart (a chart keeps its
#    selection across reruns); the filter a click chose, for the "Everything about filter N"
#    link; the One filter page's quick painting.
CLICKS_SEEN = "_clicks_seen"
PICKED = "_picked"
UNIT_RENDER = "un_render"

# -- the tour (#15): the step shown (0-based index into dashboard.work.story.STEPS), kept when a visitor
#    explores a step on its full page and comes back.
TOUR_STEP = "tour_step"


def layer_widget(model_key: str) -> str:
    """The Layer widget's key for one model (see ``layer_choice``)."""
    return f"layer_widget:{model_key}"


def flash(message: str) -> None:
    """Keep ``message`` for the top of the page (from a callback, which runs before the page)."""
    st.session_state.setdefault(FLASH, []).append(message)


def show_flash() -> None:
    """Errors from the last interaction, at the top of the page where nobody misses them."""
    for message in st.session_state.pop(FLASH, []):
        st.error(escape.markdown(message), icon=":material/error:")
