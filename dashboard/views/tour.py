"""Tour: the landing page, a story in seven steps over the sidebar's photo (``dashboard.work.story``).

Each step: a plain title, a sentence or two, one large picture, Back/Next (and the arrow keys),
and "Explore this" to the full page with the same view. The slow pictures (a filter's ideal
image, the trust test, the dream) are prepared in the background from the moment the tour opens.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.data import atlases, cache
from dashboard.views import activation_maps, deep_dream, unit
from dashboard.views.declare import Number, Page, Setting, View, follow, resolve, show
from dashboard.views.parts import evidence, tour_steps
from dashboard.work import story

LAST = len(story.STEPS) - 1
#: The full pages' settings at the tour's steps (beside the layer and filter): what "Explore this"
#: opens, and what the slow pictures are made with (:func:`recipes`), from the pages' declarations.
#: The dream is small (3 scales of 5 steps: seconds on a CPU); the check is Grad-CAM's alone.
DREAM_VALUES = {"dd_octaves": 3, "dd_steps": 5}
TRUST_VALUES = {"am_method": "gradcam", "am_compare": ["gradcam"], state.FAITHFULNESS_ON: True}
SETTINGS = (Setting(state.TOUR_STEP, "step", Number(0, len(story.STEPS) - 1), 0),)  # counted from 0; Back/Next move it


def work(view: View):
    """The photo's maps, the guesses and the photo as the model sees it (the steps' pictures are
    prepared in the background, ``dashboard.work.story``)."""
    handle, entry = view.handle, view.image
    return (
        cache.feature_maps(handle.key, entry.key, handle, entry.image),
        cache.prediction(handle.key, entry.key, handle, entry.image),
        cache.model_view(handle.key, entry.key, handle, entry.image),
    )


def draw(page_view: View, results) -> None:
    handle, entry = page_view.handle, page_view.image
    maps, prediction, picture = results
    plan = story.plan(handle, maps, prediction)
    atlas = atlases.find(handle)
    atlas_unit = atlases.entry(atlas, *plan.unit)[0]  # a damaged entry: the tour paints its own
    atlas_render = atlas_unit.render if atlas_unit is not None and atlas_unit.renders else None
    tasks = tuple(task for task in story.TASKS if not (task == story.RENDER and atlas_render is not None))
    scene = tour_steps.Scene(
        handle, entry, maps, prediction, picture, plan, atlas_render, tasks, recipes(page_view, plan)
    )
    index = page_view.get(state.TOUR_STEP)
    step = story.STEPS[index]
    scene.preparation.look(step.task)

    st.title(step.title)
    back, forward, where, elsewhere = st.columns([1, 1, 2.2, 2.6], vertical_alignment="center")
    move = dict(on_click=_move, width="stretch")
    back.button(
        "Back", icon=":material/arrow_back:", key="tour_back", shortcut="Left", disabled=index == 0, args=(-1,), **move
    )
    forward.button(
        "Next",
        icon=":material/arrow_forward:",
        key="tour_next",
        shortcut="Right",
        type="primary",
        disabled=index == LAST,
        args=(1,),
        **move,
    )
    with where:
        _progress_line(scene, index)
    if elsewhere.button(f"Explore this: {step.page_title}", icon=":material/open_in_new:", key="tour_explore"):
        _explore(step, plan, handle)
    with st.container(key="tour_step"):
        tour_steps.STEPS[step.name](scene)


def _page_view(page: Page, view: View, layer: str, channel: int, values: dict) -> View:
    """Page ``page`` at this photo, ``layer``, ``channel`` and ``values`` (every other setting at its start)."""
    resolved, _ = resolve(page, view.handle, view.image, layer, channel, values)
    return View(page.name, view.handle, view.image, layer, channel, resolved, ahead=True)


def recipes(view: View, plan: story.Plan) -> story.Recipes:
    """How the slow pictures are made, from the declarations of the pages that show them in full:
    One filter's quick painting ("Paint it"), Where it looked's faithfulness check of Grad-CAM at
    its layer and the photo's top class, and Deep dream's arguments at :data:`DREAM_VALUES`."""
    layer, channel = plan.unit
    trust = _page_view(activation_maps.PAGE, view, view.layer, view.channel, TRUST_VALUES)
    methods, _ = evidence.methods(trust.get("am_compare"))
    dream = _page_view(deep_dream.PAGE, view, plan.dream_layer, 0, DREAM_VALUES)
    return {
        story.RENDER: unit.painting_args(layer, channel),
        story.TRUST: dict(
            image_key=view.image.key,
            methods=methods,
            target=trust.get("am_target"),
            layer=trust.get(state.ACTIVATION_LAYER),
        ),
        story.DREAM: deep_dream.dream_args(dream),
    }


def _move(by: int) -> None:
    """Back or Next: the step setting, one further (its button's callback)."""
    st.session_state[state.TOUR_STEP] = min(LAST, max(0, st.session_state.get(state.TOUR_STEP, 0) + by))


def _explore(step: story.Step, plan: story.Plan, handle) -> None:
    """Open the full page at this step's view, as a link would (``declare.follow``)."""
    values, layer, channel = {}, None, None
    if step.name == "filters" and plan.first_conv is not None:
        layer = handle.layers[plan.first_conv].block or plan.first_conv
        values = {state.FILTERS_LAYER: plan.first_conv}
    elif step.name in ("depth", "unit"):
        layer, channel = plan.unit
    elif step.name == "decision":
        values = {"am_method": "gradcam"}
    elif step.name == "trust":
        values = TRUST_VALUES
    elif step.name == "dream":
        layer, values = plan.dream_layer, DREAM_VALUES
    follow(step.page.removeprefix("views/").removesuffix(".py"), values, layer=layer, channel=channel)
    st.switch_page(step.page)


def _progress_line(scene: tour_steps.Scene, index: int) -> None:
    """Where the tour is; while later steps are being prepared, a line that says how far, polled
    every two seconds (which also tells the preparation someone is still here)."""
    where = f"Tour · step {index + 1} of {len(story.STEPS)} · the arrow keys move too"
    preparation, task = scene.preparation, story.STEPS[index].task
    if preparation.done or (task is not None and not preparation.ready(task)):
        st.caption(where)  # nothing to prepare, or the step's own progress line polls
        return

    @st.fragment(run_every=2.0)
    def poll() -> None:
        current = scene.preparation  # someone is here: keep going
        if current.done:
            st.rerun()  # once: the full run draws no poll
        ready = len(current.tasks) - len(current.missing)
        st.caption(f"{where} · later steps ready: {ready} of {len(current.tasks)}")

    poll()


PAGE = Page("tour", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
