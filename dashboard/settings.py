"""Each page's own settings (method, class, mode, colour scale...), in one registry: what a link and
a talk's slide carry beside the sidebar's model, photo, layer and filter.

For each page (its address, which is its file name in ``views/``) :data:`PAGES` lists its
settings: the widget's key in ``st.session_state``, the short name a link uses, what values the
widget offers (:class:`Choice`, :class:`Number`, :class:`Flag`, :class:`Many`, :class:`ClassIndex`)
and the value it starts with. Text from a link or a talk file is parsed and checked here exactly as
a click would be: only a value the widget offers for this model and layer gets through (a crafted
link is a crafted client: THREATS.md); anything else is named in a message and the widget keeps
its default.

A page's settings are captured from the session while the page is shown (its widgets' values
are there from its last run), and applied into the session before the page draws its widgets
(:func:`apply`, from ``sidebar.render``): a widget's value cannot change once it is drawn.

:func:`warm` computes a view's results ahead, through the same ``dashboard.cache`` calls with the
same arguments its page makes, so presenting a talk finds every slide in the caches.

A page's settings that are left out: widgets whose key or range changes with the layer (a page
number of the mosaic, a gallery's filter range) and results of buttons (a dream, a painting).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

import vis_core
from dashboard import cache, escape, figures, refine, state, tour
from dashboard.image_source import ImageEntry
from vis_core import ModelHandle, costs

#: Longest text a link or a talk file may give for one setting (the longest list of layers fits).
MAX_TEXT = 600


@dataclass(frozen=True)
class Context:
    """What a setting's offer may depend on: the model, the sidebar's layer, and the page's settings
    parsed before it (by widget key)."""

    handle: ModelHandle
    layer: str
    values: Mapping[str, Any] = field(default_factory=dict)


Options = Sequence[Any] | Callable[[Context], Sequence[Any]]


def slug(option: object) -> str:
    """An option's short name in a link: ``Top-N by mean`` -> ``top-n-by-mean``."""
    return re.sub(r"[^a-z0-9+._]+", "-", str(option).lower()).strip("-")


def _options(options: Options, context: Context) -> list[Any]:
    return list(options(context) if callable(options) else options)


class Invalid(ValueError):
    """A text that is not a value the widget offers; the message says what it offers."""


@dataclass(frozen=True)
class Choice:
    """One of fixed options (a selectbox, radio or select slider); written as the option's slug."""

    options: Options
    what: str = "one of"

    def parse(self, text: str, context: Context) -> Any:
        options = _options(self.options, context)
        for option in options:
            if text in (slug(option), str(option)):
                return option
        shown = ", ".join(slug(option) for option in options[:12]) + (", …" if len(options) > 12 else "")
        raise Invalid(f"is not {self.what} {shown}")

    def text(self, value: Any) -> str:
        return slug(value)


@dataclass(frozen=True)
class Many:
    """Several of fixed options (a multiselect), comma-separated, each at most once."""

    options: Options

    def parse(self, text: str, context: Context) -> list[Any]:
        parts = [part for part in text.split(",") if part] if text else []
        chosen = [Choice(self.options).parse(part, context) for part in parts]
        if len(set(map(str, chosen))) != len(chosen):
            raise Invalid("names an option twice")
        return chosen

    def text(self, value: Any) -> str:
        return ",".join(slug(option) for option in value)


@dataclass(frozen=True)
class Number:
    """A number from ``low`` to ``high`` on the grid ``low + k * step`` (a slider or a number box);
    an integer unless one of the three is a float. ``high`` may depend on the context."""

    low: int | float
    high: int | float | Callable[[Context], int | float]
    step: int | float = 1

    @property
    def integer(self) -> bool:
        return all(isinstance(x, int) for x in (self.low, self.step)) and not isinstance(self.high, float)

    def parse(self, text: str, context: Context) -> int | float:
        high = self.high(context) if callable(self.high) else self.high
        span = f"a number from {self.low:g} to {high:g}" + (f" in steps of {self.step:g}" if self.step != 1 else "")
        sign = "-?" if self.low < 0 else ""
        if not re.fullmatch(sign + r"[0-9]{1,10}" + ("" if self.integer else r"(\.[0-9]{1,10})?"), text):  # ASCII
            raise Invalid(f"is not {span}")
        value = int(text) if self.integer else float(text)
        steps = round((value - self.low) / self.step)
        on_grid = self.low + steps * self.step
        if not self.low <= value <= high or not math.isclose(value, on_grid, rel_tol=0, abs_tol=1e-9):
            raise Invalid(f"is not {span}")
        return int(on_grid) if self.integer else round(float(on_grid), 10)

    def text(self, value: Any) -> str:
        return str(int(value)) if self.integer else f"{float(value):g}"


@dataclass(frozen=True)
class Flag:
    """On or off (a toggle or checkbox): ``1`` or ``0``."""

    def parse(self, text: str, context: Context) -> bool:
        if text in ("1", "true"):
            return True
        if text in ("0", "false"):
            return False
        raise Invalid("is not 1 (on) or 0 (off)")

    def text(self, value: Any) -> str:
        return "1" if value else "0"


@dataclass(frozen=True)
class ClassIndex:
    """One of the model's classes, by index (what the class menus keep)."""

    def parse(self, text: str, context: Context) -> int:
        classes = len(context.handle.labels)
        if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) >= classes:
            raise Invalid(f"is not one of {context.handle.name}'s classes 0–{classes - 1}")
        return int(text)

    def text(self, value: Any) -> str:
        return str(int(value))


Kind = Choice | Many | Number | Flag | ClassIndex
#: No fixed starting value (it depends on the photo, the layer or another setting): always written.
VARIES = object()


@dataclass(frozen=True)
class Setting:
    """One widget of a page: its key in the session, its name in a link, what it offers, and the
    value it starts with (:data:`VARIES` when that depends on the model, photo or layer)."""

    key: str
    name: str
    kind: Kind
    default: Any = VARIES


# ----------------------------------------------------------------- what models offer
def spatial_blocks(context: Context) -> list[str]:
    return [info.name for info in context.handle.blocks() if info.is_spatial]


def rebuild_layers(handle: ModelHandle) -> list[str]:
    """The blocks the photo can be rebuilt from (a map more than one cell wide)."""
    return [info.name for info in handle.blocks() if info.is_spatial and info.output_shape[1] > 1]


def rebuild_strip(handle: ModelHandle) -> list[str]:
    """Where the strip's layers start: four spread from shallow to deep."""
    layers = rebuild_layers(handle)
    return sorted({layers[int(f * (len(layers) - 1))] for f in (0.1, 0.35, 0.6, 0.9)}, key=layers.index)


def _rebuild_layers(context: Context) -> list[str]:
    return rebuild_layers(context.handle)


def _conv_layers(context: Context) -> list[str]:
    from vis_core.filters import conv_layers

    return conv_layers(context.handle)


def _top_n_max(context: Context) -> int:
    shape = context.handle.layers[context.layer].output_shape
    if len(shape) != 3:
        return 1
    channels, rows, cols = shape
    return min(64, figures.page_size_for(rows, cols, channels), channels)


def _atlas_unit_max(context: Context) -> int:
    layer = context.values.get("at_layer", context.layer)
    return context.handle.layers[layer].channels - 1


def _lab_runs(context: Context) -> list[str]:
    runs, _ = vis_core.list_runs(vis_core.runs_dir())
    return [run.name for run in runs]


METHODS = list(vis_core.METHODS)
#: Every page's own settings (pages not listed have none). Keep in step with the pages' widgets:
#: tests/test_talks.py checks that each page draws these keys with these starting values.
PAGES: dict[str, tuple[Setting, ...]] = {
    "tour": (Setting(state.TOUR_STEP, "step", Number(0, len(tour.STEPS) - 1), 0),),  # counted from 0
    "overview": (Setting("overview_blocks_only", "blocks", Flag(), False),),
    "feature_maps": (
        Setting("fm_show", "show", Choice(("All (paged)", "Top-N by mean", "Top-N by max")), "All (paged)"),
        Setting("fm_colorscale", "colors", Choice(("Automatic", *figures.COLORSCALES)), "Automatic"),
        Setting("fm_per_channel", "each", Flag(), True),
        Setting("fm_overlay", "overlay", Flag(), True),
        Setting("fm_opacity", "opacity", Number(0.0, 1.0, 0.05), 0.6),
        Setting("fm_top_n", "top", Number(1, _top_n_max)),
    ),
    "filters": (
        Setting("fl_layer", "conv", Choice(_conv_layers, "a convolution:")),
        Setting("fl_norm", "scaling", Choice(("each filter", "whole layer")), "each filter"),
        Setting("fl_reduce", "summary", Choice(("L2 norm", "mean")), "L2 norm"),
    ),
    "projection": (
        Setting("pr_scope", "project", Choice(("strongest position", "whole map")), "strongest position"),
        Setting("pr_top_k", "top", Number(4, 16, 4), 8),
        Setting("pr_top_rule", "rule", Choice(("deconvnet", "guided", "gradient")), "guided"),
    ),
    "atlas": (
        Setting("at_layer", "atlas_layer", Choice(spatial_blocks, "a spatial block:")),
        Setting(
            "at_order",
            "order",
            Choice(("channel number", "mean activation on this photo", "peak activation on this photo")),
            "channel number",
        ),
        Setting("at_unit", "unit", Number(0, _atlas_unit_max)),
    ),
    "activation_maps": (
        Setting("am_method", "method", Choice(METHODS), METHODS[0]),
        Setting("am_target", "class", ClassIndex()),
        Setting("am_opacity", "opacity", Number(0.0, 1.0, 0.05), 0.55),
        Setting("am_colorscale", "colors", Choice(("Inferno", "Viridis", "Jet", "Hot", "Cividis")), "Inferno"),
        Setting("am_absolute", "absolute", Flag(), False),
        Setting("am_layer", "cam_layer", Choice(spatial_blocks, "a spatial block:")),
        Setting("am_compare", "compare", Many(METHODS), ["gradcam", "layercam", "saliency", "guided_backprop"]),
    ),
    "deep_dream": (
        Setting("dd_target", "amplify", Choice(("the whole layer", "the sidebar's filter")), "the whole layer"),
        Setting("dd_octaves", "octaves", Number(1, 8), 4),
        Setting("dd_scale", "octave_scale", Number(1.1, 2.0, 0.1), 1.4),
        Setting("dd_steps", "steps", Number(1, 40), 10),
        Setting("dd_step_size", "step_size", Number(0.002, 0.05, 0.002), 0.01),
        Setting("dd_jitter", "jitter", Number(0, 64), 32),
        Setting("dd_smoothing", "smoothing", Number(0.0, 3.0, 0.25), 0.5),
        Setting("dd_tile", "tile", Choice((128, 256, 384, 512, 768, 1024)), 512),
        Setting("dd_seed", "seed", Number(0, 2**31 - 1), 0),
    ),
    "feature_vis": (
        Setting(
            "fv_mode",
            "mode",
            Choice(("one filter", "gallery of filters", "diverse images of one filter", "a class")),
            "one filter",
        ),
        Setting("fv_steps", "steps", Number(16, 512, 16), 128),
        Setting("fv_size", "size", Choice((64, 96, 128, 160, 224, 320, 448))),
        Setting("fv_fft", "fft", Flag(), True),
        Setting("fv_decorrelate", "decorrelate", Flag(), True),
        Setting("fv_transforms", "transforms", Flag(), True),
        Setting("fv_seed", "seed", Number(0, 2**31 - 1), 0),
        Setting("fv_count", "images", Number(2, 8), 4),
        Setting("fv_class", "class", ClassIndex(), 0),
    ),
    "reconstruction": (
        Setting("rc_steps", "steps", Number(20, 600, 10), 150),
        Setting("rc_tv", "tv", Number(0.0, 2.0, 0.05), 0.5),
        Setting("rc_beta", "beta", Number(1.0, 3.0, 0.5), 2.0),
        Setting("rc_alpha", "alpha", Choice((0.0, 1e-4, 1e-3, 1e-2, 1e-1)), 1e-3),
        Setting("rc_seed", "seed", Number(0, 2**31 - 1), 0),
        Setting("rc_layers", "strip", Many(_rebuild_layers)),
    ),
    "training_lab": (Setting("lab_run", "run", Choice(_lab_runs, "a run of the lab:")),),
}

for _page, _settings in PAGES.items():  # a link name or an option's slug must say one thing
    assert len({s.name for s in _settings}) == len(_settings), _page
    for _setting in _settings:
        if isinstance(_setting.kind, Choice | Many) and not callable(_setting.kind.options):
            assert len({slug(o) for o in _setting.kind.options}) == len(_setting.kind.options), _setting.key


def of(page: str) -> tuple[Setting, ...]:
    """The settings of ``page`` (none for a page that has none)."""
    return PAGES.get(page, ())


def parse(
    page: str, params: Mapping[str, str], handle: ModelHandle, layer: str, *, strict: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Check a link's or a slide's settings (by link name, as text) the way a click is checked.

    Returns the values that a widget of ``page`` offers for ``handle`` and ``layer`` (by widget
    key), and one message per text refused (its widget keeps its value). With ``strict``, a name
    that is not one of the page's settings is refused too (a talk file), else ignored (a link's
    other parameters).
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    known = {setting.name for setting in of(page)}
    if strict:
        problems += [f"{page} has no setting {str(name)[:40]!r}" for name in params if name not in known]
    for setting in of(page):
        if setting.name not in params:
            continue
        text = params[setting.name]
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            problems.append(f"setting {setting.name!r} is not a short text")
            continue
        try:
            values[setting.key] = setting.kind.parse(text, Context(handle, layer, values))
        except Invalid as exc:
            problems.append(f"{setting.name} {text[:80]!r} {exc}")
        except (KeyError, ValueError, vis_core.VisCoreError) as exc:  # an offer that could not be listed
            problems.append(f"{setting.name} {text[:80]!r} cannot be checked here ({exc})")
    return values, problems


def _present(page: str, session: Mapping[str, Any]) -> list[tuple[Setting, Any]]:
    return [(setting, session[setting.key]) for setting in of(page) if setting.key in session]


def capture(page: str, session: Mapping[str, Any]) -> dict[str, str]:
    """Every setting of ``page`` that the session holds (the page's widgets drew them), as text."""
    return {setting.name: setting.kind.text(value) for setting, value in _present(page, session)}


def link(page: str, session: Mapping[str, Any]) -> dict[str, str]:
    """The settings a link needs: those that differ from the value the widget starts with."""
    return {
        setting.name: setting.kind.text(value)
        for setting, value in _present(page, session)
        if setting.default is VARIES or setting.kind.text(setting.default) != setting.kind.text(value)
    }


def apply(page: str, values: Mapping[str, Any], *, reset: bool) -> None:
    """Put checked ``values`` (by widget key) into the session before ``page`` draws its widgets;
    with ``reset`` (a slide is the whole view), the page's other settings go back to their start."""
    for setting in of(page):
        if setting.key in values:
            st.session_state[setting.key] = values[setting.key]
        elif reset:
            st.session_state.pop(setting.key, None)


# ------------------------------------------------------------------------- warm-up
@dataclass(frozen=True)
class View:
    """A view to compute ahead: a page, the sidebar's choice, and the page's checked settings."""

    page: str
    handle: ModelHandle
    image: ImageEntry
    layer: str
    channel: int
    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """A setting's value: the view's, else the value its widget starts with."""
        if key in self.values:
            return self.values[key]
        return next(s.default for s in of(self.page) if s.key == key)


def _basics(view: View) -> None:
    handle, image = view.handle, view.image
    cache.model_view(handle.key, image.key, handle, image.image)
    cache.prediction(handle.key, image.key, handle, image.image)


def _feature_maps(view: View) -> None:
    cache.feature_maps(view.handle.key, view.image.key, view.handle, view.image.image)
    _basics(view)


def _filters(view: View) -> None:
    from vis_core.filters import conv_layers

    options = conv_layers(view.handle, view.layer) or conv_layers(view.handle)
    if options:
        layer = view.values.get("fl_layer")
        layer = layer if layer in options else options[0]
        cache.layer_filters(view.handle.key, layer, view.handle)


def _projection(view: View) -> None:
    handle, image, layer = view.handle, view.image, view.layer
    if not handle.layers[layer].is_spatial:
        return
    position = "max" if view.get("pr_scope") == "strongest position" else None
    cache.model_view(handle.key, image.key, handle, image.image)
    for rule in ("deconvnet", "guided", "gradient"):
        cache.projection(handle.key, image.key, layer, view.channel, rule, position, handle, image.image)
    cache.top_projections(
        handle.key, image.key, layer, view.get("pr_top_k"), view.get("pr_top_rule"), handle, image.image
    )


def _activation_maps(view: View, wait: float) -> None:
    handle, image = view.handle, view.image
    prediction = cache.prediction(handle.key, image.key, handle, image.image)
    cache.model_view(handle.key, image.key, handle, image.image)
    target = view.values.get("am_target", prediction.indices[0])
    cam_layer = view.values.get("am_layer", handle.last_spatial_layer())
    refining: list[refine.Refinement] = []
    for name in dict.fromkeys([view.get("am_method"), *view.get("am_compare")]):
        layer = cam_layer if vis_core.METHODS[name].layer_choice else None
        try:
            if vis_core.METHODS[name].refines:  # the exact map, shared with the page through refine
                refining.append(refine.refinement(handle, image.key, image.image, name, target, layer))
            else:
                cache.attribution(handle.key, image.key, name, target, layer, handle, image.image)
        except vis_core.VisCoreError:
            continue  # the page says why
    deadline = time.monotonic() + wait
    while any(not work.done and not work.stopped for work in refining) and time.monotonic() < deadline:
        for work in refining:
            work.seen = time.monotonic()  # someone is waiting: keep refining
        time.sleep(0.1)


def _atlas(view: View) -> None:
    _feature_maps(view)


def _frozen(args: Mapping[str, Any]) -> tuple:
    """Engine arguments as a cache key: their items in order, lists as tuples (``cache`` turns
    them back into lists)."""
    return tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in args.items()))


def dream_args(get: Callable[[str], Any], layer: str, channel: int) -> dict[str, Any]:
    """``vis_core.deep_dream``'s arguments from the Deep dream page's settings (``get``: a
    setting's value by its widget key): one place for the page and a talk's warm-up."""
    return dict(
        layer=layer,
        channel=channel if get("dd_target") == "the sidebar's filter" else None,
        octaves=int(get("dd_octaves")),
        octave_scale=float(get("dd_scale")),
        steps=int(get("dd_steps")),
        step_size=float(get("dd_step_size")),
        jitter=int(get("dd_jitter")),
        smoothing=float(get("dd_smoothing")),
        tile_size=int(get("dd_tile")),
        seed=int(get("dd_seed")),
    )


def dream_ahead(handle: ModelHandle, image: ImageEntry, args: Mapping[str, Any]) -> vis_core.Dream | None:
    """The dream a presented slide shows (made once, then cached), or None past the work one
    request may use (the page then says what to reduce, as it does for the Dream button)."""
    from vis_core.dream import dream_work

    work = dream_work(
        handle, image.image.size, octaves=args["octaves"], octave_scale=args["octave_scale"], steps=args["steps"]
    )
    if work > costs.MAX_WORK:
        return None
    return cache.dream(handle.key, image.key, _frozen(args), handle, image.image)


#: The Ideal images settings whose widgets start where :func:`painting_start` says (the others
#: start at their :class:`Setting`'s default).
PAINTING_START = ("fv_size", "fv_range", "fv_class")


def painting_start(handle: ModelHandle, image: ImageEntry, layer: str, mode: str) -> dict[str, Any]:
    """Where the Ideal images widgets whose start depends on the mode, layer or photo start: the
    size, the gallery's filters and the class (the photo's top guess: the class the audience just
    saw the network name)."""
    top = int(cache.prediction(handle.key, image.key, handle, image.image).indices[0])
    return {
        "fv_size": 224 if mode == "one filter" else 128,
        "fv_range": (0, min(handle.layers[layer].channels - 1, 7)),
        "fv_class": top if 0 <= top < len(handle.labels) else 0,
    }


def painting_args(
    get: Callable[[str], Any], handle: ModelHandle, image: ImageEntry, layer: str, channel: int
) -> dict[str, Any]:
    """``vis_core.feature_visualization``'s arguments from the Ideal images page's settings
    (``get``: a setting's value by widget key; None for one of :data:`PAINTING_START` not set):
    one place for the page and a talk's warm-up."""
    from vis_core.optim import MAX_SIZE

    mode = get("fv_mode")
    start = painting_start(handle, image, layer, mode)

    def value(key: str) -> Any:
        chosen = get(key)
        return start[key] if chosen is None else chosen

    args = dict(
        layer=layer,
        steps=int(get("fv_steps")),
        size=min(int(value("fv_size")), MAX_SIZE),
        seed=int(get("fv_seed")),
        fft=bool(get("fv_fft")),
        decorrelate=bool(get("fv_decorrelate")),
        transforms=bool(get("fv_transforms")),
    )
    if mode == "gallery of filters":
        first, last = value("fv_range")
        return {**args, "channel": list(range(first, first + min(16, last - first + 1)))}
    if mode == "diverse images of one filter":
        return {**args, "channel": channel, "diversity": int(get("fv_count"))}
    if mode == "a class":
        return {**args, "channel": int(value("fv_class")), "mode": "class"}
    return {**args, "channel": channel}


def painting_work(handle: ModelHandle, args: Mapping[str, Any]) -> float:
    """A painting's passes of the network (``vis_core.costs``): its steps over every image it paints."""
    from vis_core.featurevis import render_work

    channels = args["channel"]
    images = max(len(channels) if isinstance(channels, list) else 1, args.get("diversity", 1))
    return render_work(handle, steps=args["steps"], size=args["size"], images=images)


def painting_ahead(handle: ModelHandle, args: Mapping[str, Any]) -> vis_core.FeatureVisualization | None:
    """The painting a presented slide shows (made once, then cached), or None past the work one
    request may use."""
    if painting_work(handle, args) > costs.MAX_WORK:
        return None
    return cache.painting(handle.key, _frozen(args), handle)


def _feature_vis(view: View) -> None:
    def get(key: str) -> Any:  # a setting the slide does not hold starts where its widget does
        return view.values.get(key) if key in PAINTING_START else view.get(key)

    if view.handle.layers[view.layer].is_spatial:
        painting_ahead(view.handle, painting_args(get, view.handle, view.image, view.layer, view.channel))


def rebuild_args(get: Callable[[str], Any]) -> dict[str, Any]:
    """``vis_core.reconstruct``'s arguments (but the layer) from the Rebuild the photo page's
    settings (``get``: a setting's value by widget key): one place for the page and the warm-up."""
    return dict(
        steps=int(get("rc_steps")),
        tv_weight=float(get("rc_tv")),
        tv_beta=float(get("rc_beta")),
        alpha_weight=float(get("rc_alpha")),
        seed=int(get("rc_seed")),
    )


def rebuild_ahead(
    handle: ModelHandle, image: ImageEntry, layers: Sequence[str], args: Mapping[str, Any]
) -> list[vis_core.Reconstruction] | None:
    """The strip a presented slide shows (made once, then cached; a slide shows the strip, the
    page's story from shallow to deep), or None without layers or past the work one request may use."""
    if not layers or args["steps"] * len(layers) > costs.MAX_WORK:
        return None
    return cache.reconstructions(handle.key, image.key, tuple(layers), _frozen(args), handle, image.image)


def _reconstruction(view: View) -> None:
    _basics(view)
    layers = view.values.get("rc_layers") or rebuild_strip(view.handle)
    rebuild_ahead(view.handle, view.image, layers, rebuild_args(view.get))


def _deep_dream(view: View) -> None:
    if view.handle.layers[view.layer].is_spatial:
        dream_ahead(view.handle, view.image, dream_args(view.get, view.layer, view.channel))


def quick_painting_ahead(handle: ModelHandle, layer: str, channel: int) -> vis_core.FeatureVisualization | None:
    """The quick painting a presented One filter slide shows (made once, then cached), or None
    past the work one request may use."""
    if cache.quick_painting_work(handle) > costs.MAX_WORK:
        return None
    return cache.quick_painting(handle.key, layer, channel, handle)


def _unit(view: View) -> None:
    """What the One filter page shows: the map, the projection, the patches and, for a model
    without an atlas entry for the filter, the quick painting (where one request may run it)."""
    from dashboard import atlases

    handle, image, layer, channel = view.handle, view.image, view.layer, view.channel
    _feature_maps(view)
    if not handle.layers[layer].is_spatial:
        return  # the page says it needs a layer with a map
    cache.projection(handle.key, image.key, layer, channel, "guided", "max", handle, image.image)
    atlas = atlases.find(handle)
    unit = atlas.unit(layer, channel) if atlas is not None else None
    if unit is None or not unit.examples:
        cache.sample_patches(handle.key, layer, channel, handle)
    if unit is None:
        quick_painting_ahead(handle, layer, channel)


WARM: dict[str, Callable[[View], None]] = {
    "overview": _basics,
    "feature_maps": _feature_maps,
    "filters": _filters,
    "projection": _projection,
    "atlas": _atlas,
    "unit": _unit,
    "reconstruction": _reconstruction,
    "deep_dream": _deep_dream,  # a slide's dream is made ahead; the page dreams only when asked
    "feature_vis": _feature_vis,  # a slide's painting is made ahead; the page paints only when asked
    "training_lab": lambda view: None,
}


def warm(view: View, *, wait: float = 600.0) -> None:
    """Compute ``view``'s results into the caches its page reads (maps that refine are waited on,
    at most ``wait`` s). Pages not listed get the photo's forward pass, which most pages use."""
    if view.page == "activation_maps":
        _activation_maps(view, wait)
    else:
        WARM.get(view.page, _feature_maps)(view)


def describe(problems: Sequence[str]) -> str:
    """Messages for a notice, shown as text."""
    return escape.markdown("; ".join(problems))
