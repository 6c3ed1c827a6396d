"""Where it looked: which parts of the image made the model choose a class, and how far to trust that.

Declared once (``dashboard.views.declare``): the settings below draw the sidebar's widgets and make the
link and the slide; :func:`work` computes the maps (a talk's warm-up calls it too); :func:`draw`
draws them (``parts.attribution_maps``) and the evidence (``parts.evidence``).
"""

from __future__ import annotations

from typing import Any

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.share import present
from dashboard.views.declare import Choice, ClassIndex, Context, Flag, Many, Number, Page, Setting, View, show
from dashboard.views.parts import attribution_maps, evidence
from dashboard.words import heading, terms
from dashboard.work import refine

METHODS = vis_core.METHODS
SCALES = ("Inferno", "Viridis", "Jet", "Hot", "Cividis")
COMPARE = ["gradcam", "layercam", "saliency", "guided_backprop"]


def _prediction(context: Context) -> vis_core.Prediction:
    handle, image = context.handle, context.image
    return cache.prediction(handle.key, image.key, handle, image.image)


def _top(context: Context) -> list[int]:
    """The photo's top five guesses (the class menu offers them first)."""
    return [int(i) for i in _prediction(context).indices]


def _top_class(context: Context) -> int:
    """Where the class starts: the photo's top guess (the class the audience just saw named)."""
    top = _top(context)
    return top[0] if top and 0 <= top[0] < len(context.handle.labels) else 0


def _class_labels(context: Context):
    prediction, labels = _prediction(context), context.handle.labels
    shares = {int(i): p for i, p in zip(prediction.indices, prediction.probabilities, strict=True)}
    return lambda i: labels[i] + (f" ({shares[i]:.0%})" if i in shares else "")


def _spatial(context: Context) -> list[str]:
    return context.handle.spatial_blocks()


def _last_spatial(context: Context) -> str:
    return context.handle.last_spatial_layer()


LABELS = {name: method.label for name, method in METHODS.items()}
SETTINGS = (
    Setting("am_method", "method", Choice(list(METHODS), labels=LABELS), next(iter(METHODS)), "Method"),
    Setting(
        "am_target",
        "class",
        ClassIndex(first=_top, labels=_class_labels),
        _top_class,
        "Explain the class",
        help="The top five predictions come first; type to find any other class. It follows the photo's top guess "
        "until you choose another class.",
        follows=True,
    ),
    Setting(
        "am_opacity",
        "opacity",
        Number(0.0, 1.0, 0.05),
        0.55,
        "Overlay opacity",
        "slider",
        "How strongly the map's colours cover the photo. Where the map is near zero the photo always shows through.",
    ),
    Setting(
        "am_colorscale",
        "colors",
        Choice(SCALES),
        "Inferno",
        "Colour scale",
        help="The colours for weak to strong evidence. Signed maps always use red (for) and blue (against).",
    ),
    Setting(
        "am_absolute",
        "absolute",
        Flag(),
        False,
        "Absolute values",
        "toggle",
        "Signed methods (integrated gradients, occlusion) show evidence for (red) and against (blue); switch on to "
        "show only the strength.",
    ),
    Setting(
        state.ACTIVATION_LAYER,
        "cam_layer",
        Choice(_spatial, "a spatial block:"),
        _last_spatial,
        "Layer for CAM methods",
        help=terms.help(
            "Grad-CAM",
            "Which layer the CAM-style methods (CAM, Grad-CAM, Grad-CAM++, Score-CAM, Layer-CAM) read. It starts at "
            "the last block that still keeps a picture's layout, the usual choice: the most abstract maps that still "
            "say where. Earlier layers give finer but less class-specific maps.",
        ),
    ),
    Setting(
        "am_compare",
        "compare",
        Many(list(METHODS), labels=LABELS),
        COMPARE,
        "Methods side by side",
        "multiselect",
        "Slow methods (Score-CAM, occlusion) show a quick first picture and sharpen it while you watch.",
    ),
    Setting(
        state.FAITHFULNESS_ON,
        "deletion",
        Flag(),
        False,
        "Measure faithfulness",
        "button",
        "Runs the model on a few hundred copies of the photo with more and more of it greyed out or revealed. "
        "A quick first version comes within seconds; the exact curves follow.",
    ),
    Setting(
        state.SANITY_ON,
        "scrambling",
        Flag(),
        False,
        "Run the sanity check",
        "button",
        "Redraws the maps on a copy of the network whose layers are replaced by random ones, one block at a "
        "time from the top. The fully scrambled end comes first; the steps in between fill in.",
    ),
)


def work(view: View) -> dict[str, Any]:
    """Each method's map (the chosen one and the comparison): a click-speed method's from the cache,
    a slow one's shared refinement (``dashboard.work.refine``), or the engine's error for it."""
    handle, image, target = view.handle, view.image, view.get("am_target")
    cache.model_view(handle.key, image.key, handle, image.image)  # what the maps are drawn over
    jobs: dict[str, Any] = {}
    for name in dict.fromkeys([view.get("am_method"), *view.get("am_compare")]):
        layer = view.get(state.ACTIVATION_LAYER) if METHODS[name].layer_choice else None
        try:
            if METHODS[name].refines:
                jobs[name] = refine.refinement(handle, image.key, image.image, name, target, layer)
            else:
                jobs[name] = cache.attribution(handle.key, image.key, name, target, layer, handle, image.image)
        except vis_core.VisCoreError as exc:
            jobs[name] = exc
    return jobs


def cost(view: View) -> float:
    """Passes of the network its maps need, as the engine counts them (``Method.passes``)."""
    total = 0.0
    for name in dict.fromkeys([view.get("am_method"), *view.get("am_compare")]):
        spec = METHODS[name]
        layer = view.get(state.ACTIVATION_LAYER) if spec.uses_layer else None
        forward, both = spec.passes(view.handle, layer, {})
        total += forward + both
    return total


def draw(view: View, jobs: dict[str, Any]) -> None:
    heading.show(
        "Where it looked",
        "Which parts of the picture made the network say what it said? These are **activation / attribution "
        "maps** (also called saliency maps or heatmaps). Each method below answers in its own way "
        "and paints the answer over the image: bright where the evidence for the chosen class is. They do not "
        "always agree, so the end of the page tests them: does hiding the bright parts really change the "
        "answer, and does the map change when the network is scrambled?",
    )
    attribution_maps.draw(view, jobs)
    present.fold()
    evidence.draw(view, PAGE)


PAGE = Page("activation_maps", SETTINGS, work, draw, cost, controls="Activation maps")

if __name__ == "__main__":
    show(PAGE)
