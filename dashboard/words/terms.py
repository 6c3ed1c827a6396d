"""The words the dashboard uses, in plain language: one entry per term, for the Glossary page and
for the help text of every control that has a technical name (``help=glossary.help("octave")``).

A control's help names its term through :func:`help`, so a test can check that every term a
control refers to is explained here (an unknown term raises ``KeyError`` at once).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One glossary entry: its name, other names it goes by, and the explanation."""

    name: str
    meaning: str
    also: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        """The entry's place on the Glossary page (``/glossary#receptive-field``)."""
        return "".join(c if c.isalnum() else "-" for c in self.name.lower()).strip("-")


#: Every term, in the order a visitor meets them (the page lists them alphabetically).
TERMS: dict[str, Term] = {
    term.name: term
    for term in (
        Term(
            "network",
            "A convolutional neural network (CNN): a long chain of simple steps that turns the pixels of a photo "
            "into a guess of what is in it. Nobody wrote its rules; it learned them from a million labelled photos.",
            ("CNN", "model"),
        ),
        Term(
            "layer",
            "One step of the network. Each layer takes the previous layer's output and computes a new set of "
            "feature maps. Early layers see small details; deep layers see larger, more meaningful things.",
        ),
        Term(
            "block",
            "A group of layers the network's designers treat as one unit (for example an 'inverted residual' "
            "block of MobileNetV2). The sidebar lists blocks in the order the photo flows through them, with a "
            "plain name for what blocks at that depth typically respond to: edges and colours, textures, "
            "patterns, parts of objects, objects.",
            ("stage",),
        ),
        Term(
            "filter",
            "A small pattern detector inside a layer: a grid of learned numbers that slides over the image and "
            "measures, at every place, how much the picture there looks like its pattern. A layer has tens to "
            "thousands of filters. Each filter's output is one channel of the layer.",
            ("channel", "unit", "neuron"),
        ),
        Term(
            "feature map",
            "What one filter outputs for one photo: a small grid, one number per place in the image, large where "
            "the filter found its pattern. Deep layers have small grids (each cell covers a big part of the "
            "photo).",
            ("map", "activation map"),
        ),
        Term(
            "activation",
            "The number a filter outputs at one place: how strongly it responds there. Positive means 'found it'. "
            "Zero means 'not here' after a ReLU. Negative values only exist in layers without a ReLU at their "
            "end, and mean the opposite of the pattern is there.",
            ("response",),
        ),
        Term(
            "ReLU",
            "Rectified linear unit: a step that keeps positive numbers and turns negative ones into zero, so a "
            "filter either fires or stays silent. Maps after a ReLU are never negative. MobileNetV2's blocks end "
            "without one (a 'linear bottleneck'), so their maps are signed.",
            ("ReLU6",),
        ),
        Term(
            "signed map",
            "A feature map that has negative as well as positive values (its layer has no ReLU at the end). It "
            "is drawn with a two-sided colour scale: red where the filter's pattern is found, blue where the "
            "opposite is, white where neither.",
            ("linear bottleneck",),
        ),
        Term(
            "receptive field",
            "The part of the photo one cell of a feature map can see. Filters in the first layer see a few "
            "pixels; deep filters see most of the photo, though what they react to is usually a smaller part "
            "of it.",
        ),
        Term(
            "logit",
            "The network's raw score for a class before it is turned into a probability. Higher means more "
            "likely; only differences between scores matter.",
            ("score",),
        ),
        Term(
            "probability",
            "The network's confidence in each class, from 0 to 100%; all classes together add up to 100%. A "
            "confident network can still be wrong.",
        ),
        Term(
            "gradient",
            "How much a number inside the network (a class score, a filter's response) would change if one "
            "pixel or one activation changed a little. Following it is how the network learns, and how these "
            "pages find the pixels that matter and paint ideal images.",
        ),
        Term(
            "projection",
            "Sending one filter's response backwards through the network to the pixels, to see which edges and "
            "textures of the photo made it fire.",
            ("back to pixels",),
        ),
        Term(
            "deconvnet",
            "Zeiler and Fergus's (2014) way of projecting a filter back to pixels: the network run backwards, "
            "keeping only positive signals at each ReLU. Sharp pictures, but they depend little on the photo.",
        ),
        Term(
            "guided backprop",
            "Guided backpropagation (Springenberg et al., 2015): the gradient, but at each ReLU only the signals "
            "that are positive both ways pass. The crispest pictures of the three rules.",
        ),
        Term(
            "saliency",
            "A map over the photo of how much each pixel matters to the network's answer. Also called an "
            "attribution map or a heatmap.",
            ("attribution", "heatmap"),
        ),
        Term(
            "Grad-CAM",
            "Gradient-weighted class activation mapping (Selvaraju et al., 2017): weights a deep layer's maps by "
            "how much each matters for a class, giving a coarse heatmap of where the network looked.",
            ("CAM",),
        ),
        Term(
            "deletion and insertion",
            "A test of a saliency map: delete the pixels it calls important first and watch the score fall "
            "(the faster, the better), or insert them into a blurred photo and watch it rise.",
            ("faithfulness",),
        ),
        Term(
            "sanity check",
            "Adebayo et al.'s (2018) test: scramble the network's learned weights layer by layer. A map that "
            "explains the network must change; one that stays the same only shows edges of the photo.",
            ("cascading randomisation",),
        ),
        Term(
            "rank correlation",
            "How alike two maps are in the order they put pixels in (Spearman's rank correlation): 1 means the "
            "same order, 0 unrelated.",
            ("Spearman",),
        ),
        Term(
            "SSIM",
            "Structural similarity: how alike two pictures look to a person (structure, contrast, brightness), "
            "from 0 (nothing alike) to 1 (the same).",
        ),
        Term(
            "feature visualisation",
            "Starting from grey noise, let the network paint the picture that makes one filter (or one class) "
            "respond most strongly: what that filter is looking for, in its own words.",
            ("ideal image", "activation maximisation"),
        ),
        Term(
            "Fourier parameterisation",
            "Painting the picture as a mix of stripes of every size instead of pixel by pixel; it keeps the "
            "painting from filling with high-frequency noise.",
            ("FFT",),
        ),
        Term(
            "decorrelated colour",
            "Painting in colours that vary independently, as in natural photos, instead of raw red, green and "
            "blue; the paintings' colours look more natural.",
        ),
        Term(
            "robustness transforms",
            "Small random shifts, zooms and turns of the painting at each step, so only what the filter still "
            "sees after them survives: fewer tricks, more recognisable shapes.",
            ("jitter",),
        ),
        Term(
            "seed",
            "The number that fixes the starting noise: the same seed and settings give the same picture again.",
        ),
        Term(
            "step",
            "One small change of the picture in the direction the gradient points. More steps: a clearer "
            "picture, and longer to wait.",
            ("steps",),
        ),
        Term(
            "deep dream",
            "Changing a photo, step by step, so that a chosen layer responds more: the network paints more of "
            "whatever it already sees into it.",
        ),
        Term(
            "octave",
            "One of the scales a deep dream works at, from small to full size. Several octaves give large "
            "shapes and fine detail; the octave scale is how much bigger each one is than the last.",
            ("octave scale",),
        ),
        Term(
            "reconstruction",
            "Finding an image that the network sees exactly as it sees the photo at one layer, to show what "
            "that layer still knows about the photo (Mahendran and Vedaldi, 2015).",
            ("inversion",),
        ),
        Term(
            "total variation",
            "A penalty on rapid changes between neighbouring pixels: higher values give smoother pictures.",
            ("smoothness",),
        ),
        Term(
            "alpha norm",
            "A penalty on very bright or very dark pixels, which keeps a reconstructed picture in a natural range.",
        ),
        Term(
            "atlas",
            "Every filter of a layer at a glance, computed once and kept: for each, its feature visualisation, "
            "the photo patches that excite it most, and how often it fires.",
        ),
        Term(
            "top patches",
            "The pieces of real photos that make a filter respond most, each cropped to what the filter can "
            "see there (its receptive field).",
            ("dataset examples", "strongest image patches"),
        ),
    )
}

_ALIASES = {alias.lower(): term.name for term in TERMS.values() for alias in (term.name, *term.also)}


def term(name: str) -> Term:
    """The entry for ``name`` or one of its other names (case does not matter).

    Raises:
        KeyError: no entry has that name.
    """
    return TERMS[_ALIASES[name.lower()]]


def help(name: str, before: str = "") -> str:
    """Help text for a control with a technical name: ``before`` (what the control does), then the
    term explained in plain words and where the glossary is."""
    entry = term(name)
    lead = f"{before.rstrip()}\n\n" if before else ""
    return f"{lead}**{entry.name[0].upper()}{entry.name[1:]}**: {entry.meaning} (More in the Glossary page.)"


def sorted_terms() -> list[Term]:
    """Every entry, alphabetically (as the Glossary page lists them)."""
    return sorted(TERMS.values(), key=lambda t: t.name.lower())
