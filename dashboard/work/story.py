"""The tour's steps, what each shows for a model and photo, and the slow results prepared early.

The Tour page (``dashboard/views/tour.py``) tells one story in :data:`STEPS` over the sidebar's
photo: what the model sees and guesses, the first layer's filters, simple to abstract maps, one
filter, where the decision looked, whether to trust that map, and a dream. :func:`plan` picks what
each step shows (the blocks, the filters, the class); no Streamlit here.

Three steps need work of several seconds: the chosen filter's feature visualisation (when the
model's atlas has no picture of it), the deletion/insertion curves of Grad-CAM beside a random map,
and a small deep dream. What each is comes from the full page's declaration, as a slide's would
(the Tour page passes them as :data:`Recipes`: One filter's quick painting, Where it looked's
faithfulness check of Grad-CAM, Deep dream's arguments at the tour's settings), so "Explore this"
opens the page that shows the same picture. :func:`prepare` starts them in a background thread as soon as the tour
opens, shared by every viewer of the same model and photo (one :class:`Preparation` per model key
and image key, the newest :data:`MAX_KEPT` kept), in the order of the steps, the step a viewer is
looking at first. Nobody asking for :data:`WATCH_SECONDS` stops the work (the page asks on each
run and every two seconds while the tour is open); results already made are kept and the rest
goes on when someone asks again. The work runs on the model's long-work twin, so clicks elsewhere
never wait for it. Pattern and clean-up as in :mod:`dashboard.work.refine`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

import vis_core
from dashboard.sidebar import layer_choice
from dashboard.work import refine
from dashboard.work.shelf import Shelf
from vis_core import FeatureMaps, ModelHandle, Prediction
from vis_core.filters import conv_layers
from vis_core.layers import depths
from vis_core.optim import Stopped

_LOG = logging.getLogger(__name__)

#: Slow results, in the order of the steps that show them.
RENDER, TRUST, DREAM = "render", "trust", "dream"
TASKS = (RENDER, TRUST, DREAM)
#: What each slow result is, by task: the arguments of its engine call, from the page that shows
#: it in full (``dashboard/views/tour.py`` derives them from the pages' declarations).
Recipes = dict[str, dict]
#: Seconds without anyone asking after which the preparation stops (it goes on when asked again).
WATCH_SECONDS = 20.0
#: Preparations kept (each holds a small render, a report and a 224-pixel dream: about 1.5 MB).
MAX_KEPT = 16
#: How deep the "early" block of step 3 is (0: the first block with maps, 1: the last).
EARLY = 0.15


@dataclass(frozen=True)
class Step:
    """One step of the tour.

    Attributes:
        name: what the page draws (``see``, ``filters``, ``depth``, ``unit``, ``decision``, ``trust``, ``dream``).
        title: a plain title.
        page: the full page with the same view (``views/<page>.py``) and its title in the navigation.
        task: the slow result it shows (one of :data:`TASKS`), prepared in the background, or None.
    """

    name: str
    title: str
    page: str
    page_title: str
    task: str | None = None


STEPS = (
    Step("see", "What the model sees", "views/overview.py", "Photo and guesses"),
    Step("filters", "The first layer's filters", "views/filters.py", "Filters"),
    Step("depth", "From simple to abstract", "views/feature_maps.py", "Feature maps"),
    Step("unit", "One filter up close", "views/unit.py", "One filter", RENDER),
    Step("decision", "Where the decision looked", "views/activation_maps.py", "Where it looked"),
    Step("trust", "Can we trust that map?", "views/activation_maps.py", "Where it looked", TRUST),
    Step("dream", "A dream", "views/deep_dream.py", "Deep dream", DREAM),
)


@dataclass(frozen=True)
class Plan:
    """What the tour shows for one model and photo (see :func:`plan`).

    Attributes:
        first_conv: the first convolution (step 2), or None when the model has none.
        depth: ``(layer, channel)`` of an early, a middle and a deep block (step 3), each with its
            strongest filter on the photo (by its largest activation); fewer for shallow models.
        unit: ``(layer, channel)`` of step 4: the middle block's strongest filter.
        top_class: the model's first guess (steps 5 and 6).
        cam_layer: where Grad-CAM reads (the last block with a spatial map, as on the full page).
        dream_layer: the block the dream amplifies (step 7).
    """

    first_conv: str | None
    depth: tuple[tuple[str, int], ...]
    unit: tuple[str, int]
    top_class: int
    cam_layer: str
    dream_layer: str


def plan(handle: ModelHandle, maps: FeatureMaps, prediction: Prediction) -> Plan:
    """Pick what each step shows for this model and photo: cheap (a few channel summaries of the
    feature maps the pages share).

    Raises:
        vis_core.ModelError: the model has no block with a spatial map (nothing to tour).
    """
    deep = handle.last_spatial_layer()
    spatial = [name for name in handle.spatial_blocks() if name in maps.activations]
    spatial = spatial[: spatial.index(deep) + 1] if deep in spatial else spatial or [deep]
    named = depths(handle.layers)
    early = min(spatial, key=lambda name: abs(named[name].relative - EARLY) if name in named else 1.0)
    middle = layer_choice.default_layer(handle)
    if middle not in spatial:
        middle = spatial[len(spatial) // 2]
    layers = list(dict.fromkeys((early, middle, deep)))
    strongest = {layer: int(maps.top_channels(layer, 1, by="max")[0]) for layer in layers}
    convolutions = conv_layers(handle)
    return Plan(
        first_conv=convolutions[0] if convolutions else None,
        depth=tuple((layer, strongest[layer]) for layer in layers),
        unit=(middle, strongest[middle]),
        top_class=int(prediction.indices[0]),
        cam_layer=deep,
        dream_layer=middle,
    )


def trust_verdict(report: vis_core.FaithfulnessReport) -> tuple[str, str]:
    """Step 6's answer in one plain line, and how sure (``yes``, ``partly``, ``no``), from the
    Grad-CAM curves of a faithfulness report beside its random map."""
    deletes, restores = report.beats_random(report.curves[0])
    if deletes and restores:
        return "yes", (
            "Yes, it passes: hiding its bright parts first takes the model's confidence away faster than hiding "
            "random parts, and showing them first brings it back faster."
        )
    if restores:
        return "partly", (
            "Partly: showing its bright parts first brings the model's confidence back faster than random parts, "
            "but hiding them first does not take it away faster. A hint, not a proof."
        )
    if deletes:
        return "partly", (
            "Partly: hiding its bright parts first takes the model's confidence away faster than random parts, "
            "but showing them first does not bring it back faster. A hint, not a proof."
        )
    return "no", "No: this map did no better than a random one, so it says little about this decision."


# ------------------------------------------------------------------ the slow results, in the background
Key = tuple[str, str]


@dataclass
class Preparation:
    """The slow results of one model and photo: made so far, failed, and what is being made."""

    key: Key
    plan: Plan
    tasks: list[str]
    recipes: Recipes = field(default_factory=dict)
    results: dict[str, object] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    working_on: str | None = None
    fraction: float = 0.0
    wanted: str | None = None
    seen: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = field(default=None, repr=False)

    def ready(self, task: str) -> bool:
        """Whether ``task``'s result (or its error) is here."""
        return task in self.results or task in self.errors

    @property
    def missing(self) -> list[str]:
        return [task for task in self.tasks if not self.ready(task)]

    @property
    def done(self) -> bool:
        return not self.missing

    def look(self, task: str | None) -> None:
        """Someone is on the tour, looking at the step that shows ``task`` (None: a quick step):
        keep working, and make that result next."""
        self.seen = time.monotonic()
        if task is not None:
            self.wanted = task

    def wait(self, task: str, timeout: float | None = None) -> bool:
        """Block until ``task`` is ready (waiting counts as looking at it); False after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready(task):
            self.look(task)
            thread = self.thread
            if thread is None:
                return self.ready(task)  # finished, or stopped (cleared, abandoned): nothing more is coming
            if deadline is not None and time.monotonic() > deadline:
                return False
            thread.join(0.25)
        return True


_SHELF: Shelf[Preparation] = Shelf(MAX_KEPT)


def prepare(
    handle: ModelHandle, image_key: str, image: Image.Image, tour: Plan, tasks: list[str], recipes: Recipes
) -> Preparation:
    """The shared preparation of this model and photo, with ``tasks`` (made by ``recipes``) added
    to it; its thread is started when something is missing and nobody is working on it."""
    key = (handle.key, image_key)
    with _SHELF.lock:
        current = _SHELF.get(key) or _SHELF.put(key, Preparation(key, tour, [], dict(recipes)))
        current.tasks = [task for task in TASKS if task in current.tasks or task in tasks]
        current.seen = time.monotonic()
        if current.missing and current.thread is None:
            _SHELF.start(current, _work, current, handle, image, name="tour-prepare")
    return current


def _work(preparation: Preparation, handle: ModelHandle, image: Image.Image) -> None:
    def abandoned() -> bool:
        return _SHELF.stopping() or time.monotonic() - preparation.seen > WATCH_SECONDS

    def progress(step: int, total: int, _preview=None) -> None:
        preparation.fraction = step / max(1, total)

    try:
        while True:
            with _SHELF.lock:
                missing = preparation.missing
                if not missing or abandoned():
                    preparation.thread = None  # under the lock: prepare() starts a new one if asked again
                    return
                task = preparation.wanted if preparation.wanted in missing else missing[0]
                preparation.working_on, preparation.fraction = task, 0.0
            try:
                recipe = preparation.recipes[task]
                preparation.results[task] = _RUNNERS[task](handle, image, recipe, progress, abandoned)
            except Stopped:
                continue  # the loop sees why and ends
            except vis_core.VisCoreError as exc:
                preparation.errors[task] = str(exc)
            except Exception as exc:  # noqa: BLE001 - a background thread must not die silently: the step says why
                _LOG.exception("The tour could not prepare %s", task)
                preparation.errors[task] = f"{type(exc).__name__}: {exc}"
            finally:
                preparation.working_on = None
    finally:
        with _SHELF.lock:
            if preparation.thread is threading.current_thread():
                preparation.thread = None


def _render(
    handle: ModelHandle, image: Image.Image, recipe: dict, progress, should_stop
) -> vis_core.FeatureVisualization:
    return vis_core.feature_visualization(handle, **recipe, on_step=progress, should_stop=should_stop)


def _trust(handle: ModelHandle, image: Image.Image, recipe: dict, progress, should_stop) -> vis_core.FaithfulnessReport:
    """The page's own check (shared with Where it looked: the page then shows it at once), waited for."""
    args = (recipe["image_key"], image, recipe["methods"], recipe["target"], recipe["layer"])
    job = refine.faithfulness(handle, *args)
    while not job.done:
        if should_stop():
            raise Stopped
        if job.stopped:  # abandoned meanwhile by its other watchers: ask again
            job = refine.faithfulness(handle, *args)
        job.seen = time.monotonic()  # the tour is watching
        progress(round(job.fraction * 100), 100)
        time.sleep(0.2)
    if job.error is not None:
        raise job.error
    return job.latest


def _dream(handle: ModelHandle, image: Image.Image, recipe: dict, progress, should_stop) -> vis_core.Dream:
    return vis_core.deep_dream(handle, image, **recipe, on_step=progress, should_stop=should_stop)


_RUNNERS: dict[str, Callable] = {RENDER: _render, TRUST: _trust, DREAM: _dream}


def clear(timeout: float = 120.0) -> None:
    """Stop the work in progress (waiting for it up to ``timeout`` s) and forget every result
    (tests call this between runs; it also runs at exit)."""
    _SHELF.clear(timeout)
