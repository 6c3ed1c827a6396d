"""A page declared once: its settings (what each offers, where it starts, how it is drawn), its work
and its drawing.

Each page module in ``views/`` states a :class:`Page`: its settings as data, ``work(view)`` (the
engine calls through the shared caches) and ``draw(view, results)``. Everything else is derived
from that one declaration: the widgets (:func:`widget`), a link's and a slide's settings (parsed
and written by ``dashboard.share.settings``), a talk's warm-up and the tour's preparation (the same
``work``), and the cost of presenting (``cost``).

Values are ids (a method's name, a class index, a layer name), never display labels. A setting's
value lives in ``st.session_state[setting.key]``; its widget is a view of it, drawn under a key
that names the widget's offer (the options and their labels, or a number's range): when the offer
changes (another photo gives the class menu other percentages, a finished build gives the Atlas's
layer menu another status), a new widget is drawn from the value, so a label Streamlit kept from
the previous offer can never come back as a value. Before a page draws, :func:`resolve` checks
every value against what the setting offers now (for this model, photo, layer and filter): a
value that no longer fits goes back to the setting's start, and a setting that ``follows`` (the
class explained, the Atlas's layer) moves with the selection unless the viewer chose otherwise.

Written here rather than taken from a library: Streamlit keeps widget state by key and offers no
declared forms whose offers depend on other state; streamlit-pydantic and similar packages draw
forms from models but have no notion of an offer that changes with the selection.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from dashboard import state
from dashboard.share import present
from dashboard.sidebar import layer_choice
from dashboard.sidebar.image_source import ImageEntry
from vis_core import LayerInfo, ModelHandle


@dataclass(frozen=True)
class Context:
    """What a setting's offer and start may depend on: the sidebar's selection and the page's
    settings resolved before it (by key)."""

    handle: ModelHandle
    image: ImageEntry | None
    layer: str
    channel: int = 0
    values: Mapping[str, Any] = field(default_factory=dict)


Options = Sequence[Any] | Callable[[Context], Sequence[Any]]
Labels = Mapping[Any, str] | Callable[[Context], Callable[[Any], str]] | None


def slug(option: object) -> str:
    """An option's short name in a link: ``Top-N by mean`` -> ``top-n-by-mean``."""
    return re.sub(r"[^a-z0-9+._]+", "-", str(option).lower()).strip("-")


def _options(options: Options, context: Context) -> list[Any]:
    return list(options(context) if callable(options) else options)


def _labeller(labels: Labels, context: Context) -> Callable[[Any], str]:
    if labels is None:
        return str
    if isinstance(labels, Mapping):
        return lambda option: labels.get(option, str(option))
    return labels(context)


class Invalid(ValueError):
    """A text that is not a value the setting offers; the message says what it offers."""


@dataclass(frozen=True)
class Choice:
    """One of some options (a selectbox, radio or select slider); written in a link as its slug."""

    options: Options
    what: str = "one of"
    labels: Labels = None

    def offer(self, context: Context) -> list[Any]:
        return _options(self.options, context)

    def fits(self, value: Any, context: Context) -> bool:
        return any(type(value) is type(option) and value == option for option in self.offer(context))

    def parse(self, text: str, context: Context) -> Any:
        options = self.offer(context)
        for option in options:
            if text in (slug(option), str(option)):
                return option
        shown = ", ".join(slug(option) for option in options[:12]) + (", …" if len(options) > 12 else "")
        raise Invalid(f"is not {self.what} {shown}")

    def text(self, value: Any) -> str:
        return slug(value)


@dataclass(frozen=True)
class Many:
    """Several of some options (a multiselect), comma-separated in a link, each at most once."""

    options: Options
    labels: Labels = None

    def offer(self, context: Context) -> list[Any]:
        return _options(self.options, context)

    def fits(self, value: Any, context: Context) -> bool:
        offer = self.offer(context)
        return isinstance(value, list) and len(set(map(str, value))) == len(value) and all(v in offer for v in value)

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

    def top(self, context: Context) -> int | float:
        return self.high(context) if callable(self.high) else self.high

    def fits(self, value: Any, context: Context) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        steps = round((value - self.low) / self.step)
        on_grid = math.isclose(value, self.low + steps * self.step, rel_tol=0, abs_tol=1e-9)
        return self.low <= value <= self.top(context) and on_grid

    def parse(self, text: str, context: Context) -> int | float:
        high = self.top(context)
        span = f"a number from {self.low:g} to {high:g}" + (f" in steps of {self.step:g}" if self.step != 1 else "")
        sign = "-?" if self.low < 0 else ""
        if not re.fullmatch(sign + r"[0-9]{1,10}" + ("" if self.integer else r"(\.[0-9]{1,10})?"), text):  # ASCII
            raise Invalid(f"is not {span}")
        value = int(text) if self.integer else float(text)
        on_grid = self.low + round((value - self.low) / self.step) * self.step
        if not self.low <= value <= high or not math.isclose(value, on_grid, rel_tol=0, abs_tol=1e-9):
            raise Invalid(f"is not {span}")
        return int(on_grid) if self.integer else round(float(on_grid), 10)

    def text(self, value: Any) -> str:
        return str(int(value)) if self.integer else f"{float(value):g}"


@dataclass(frozen=True)
class Span:
    """A run of whole numbers ``(first, last)`` inside ``0``..``high`` (a range slider): ``2-9`` in
    a link. ``high`` may depend on the context (a layer's last filter)."""

    high: int | Callable[[Context], int]

    def top(self, context: Context) -> int:
        return self.high(context) if callable(self.high) else self.high

    def fits(self, value: Any, context: Context) -> bool:
        pair = isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value)
        return pair and 0 <= value[0] <= value[1] <= self.top(context)

    def parse(self, text: str, context: Context) -> tuple[int, int]:
        high = self.top(context)
        found = re.fullmatch(r"([0-9]{1,7})-([0-9]{1,7})", text)
        value = (int(found[1]), int(found[2])) if found else None
        if value is None or not self.fits(value, context):
            raise Invalid(f"is not a range first-last inside 0–{high}")
        return value

    def text(self, value: Any) -> str:
        return f"{int(value[0])}-{int(value[1])}"


@dataclass(frozen=True)
class Flag:
    """On or off (a toggle or checkbox): ``1`` or ``0`` in a link."""

    def fits(self, value: Any, context: Context) -> bool:
        return isinstance(value, bool)

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
    """One of the model's classes, by index; the menu offers ``first`` (e.g. the photo's top five)
    before the others, each named by ``labels``."""

    first: Callable[[Context], Sequence[int]] | None = None
    labels: Labels = None

    def offer(self, context: Context) -> list[int]:
        first = [int(i) for i in self.first(context)] if self.first is not None else []
        chosen = set(first)
        return first + [i for i in range(len(context.handle.labels)) if i not in chosen]

    def fits(self, value: Any, context: Context) -> bool:
        return type(value) is int and 0 <= value < len(context.handle.labels)

    def parse(self, text: str, context: Context) -> int:
        classes = len(context.handle.labels)
        if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) >= classes:
            raise Invalid(f"is not one of {context.handle.name}'s classes 0–{classes - 1}")
        return int(text)

    def text(self, value: Any) -> str:
        return str(int(value))


Kind = Choice | Many | Number | Span | Flag | ClassIndex
#: No fixed start (it depends on the model, photo, layer or another setting): always in a link.
VARIES = object()
_MISSING = object()


@dataclass(frozen=True)
class Setting:
    """One setting of a page: its key in the session, its name in a link, what it offers, where it
    starts (a value, or a function of the :class:`Context`: then it :data:`VARIES`), and how it is
    drawn (``widget``: selectbox, radio, select_slider, multiselect, slider, number, toggle; or
    ``button``: a flag a button turns on, drawn where the page puts it, never in the sidebar).

    With ``follows``, a value the viewer did not choose moves with its start (the class explained
    is the new photo's top class, unless the viewer chose one by name). With ``placed``, the page
    draws the widget where it belongs (beside its picture) rather than among its controls."""

    key: str
    name: str
    kind: Kind
    default: Any = VARIES
    label: str | Callable[[Context], str] = ""
    widget: str = "selectbox"
    help: str | None = None
    follows: bool = False
    placed: bool = False

    @property
    def fixed(self) -> bool:
        """Whether the setting starts at one value whatever the selection (a link leaves it out there)."""
        return self.default is not VARIES and not callable(self.default)

    def start(self, context: Context) -> Any:
        if callable(self.default):
            return self.default(context)
        if self.default is VARIES:
            return _first_offer(self.kind, context)
        return self.default


def _first_offer(kind: Kind, context: Context) -> Any:
    if isinstance(kind, Choice | ClassIndex):
        offer = kind.offer(context)
        return offer[0] if offer else None
    if isinstance(kind, Many):
        return []
    if isinstance(kind, Number):
        return kind.low
    if isinstance(kind, Span):
        return (0, kind.top(context))
    return False


@dataclass(frozen=True)
class View:
    """What a page shows: the page, the sidebar's model, photo, layer and filter, and every one of
    the page's settings (by key, each checked against what it offers for this selection)."""

    page: str
    handle: ModelHandle
    image: ImageEntry
    layer: str
    channel: int
    values: Mapping[str, Any] = field(default_factory=dict)
    #: Computed ahead for a presented slide (a talk's warm-up): work that waits for a button on
    #: the page (a painting) is done now.
    ahead: bool = False

    def get(self, key: str) -> Any:
        return self.values[key]

    @property
    def info(self) -> LayerInfo:
        return self.handle.layers[self.layer]


@dataclass(frozen=True)
class Page:
    """A page: its address (its file name in ``views/``), its settings, its work, its drawing.

    ``work(view)`` computes what the page shows through the shared caches (a talk's warm-up and
    the tour call it too); ``draw(view, results)`` draws it; ``cost(view)`` is the passes of the
    network its work needs (``vis_core.costs``); ``controls`` is the sidebar heading above the
    settings' widgets (None: the page draws them where it wants, with :func:`widget`). A page
    that is not ``eager`` makes its pictures only when asked (a Dream button): its ``work`` is what
    a presented slide shows instead, and the page gets None otherwise."""

    name: str
    settings: tuple[Setting, ...] = ()
    work: Callable[[View], Any] = lambda view: None
    draw: Callable[[View, Any], None] = lambda view, results: None
    cost: Callable[[View], float] = lambda view: 1.0
    controls: str | None = None
    eager: bool = True

    def setting(self, key: str) -> Setting:
        return next(s for s in self.settings if s.key == key)


# ------------------------------------------------------------------------ resolving values
def _auto(key: str) -> str:
    return f"_auto:{key}"


def resolve(
    page: Page,
    handle: ModelHandle,
    image: ImageEntry,
    layer: str,
    channel: int,
    given: Mapping[str, Any],
    *,
    auto: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every setting's value for this selection, in declaration order: the ``given`` value where
    it fits what the setting offers now, else its start. A setting that ``follows`` takes its new
    start when its value is the start it was given automatically before (``auto``).

    Returns the values and the starts given automatically (for the next call's ``auto``)."""
    values: dict[str, Any] = {}
    starts: dict[str, Any] = {}
    auto = auto or {}
    for setting in page.settings:
        context = Context(handle, image, layer, channel, dict(values))
        start = setting.start(context)
        value = given.get(setting.key, _MISSING)
        if setting.follows and setting.key in auto and _same(value, auto[setting.key]):
            value = start  # the viewer did not choose it: it moves with the selection
        if value is _MISSING or not setting.kind.fits(value, context):
            value = start
        values[setting.key] = value
        if setting.follows:
            starts[setting.key] = start
    return values, starts


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def selection() -> Any:
    """The sidebar's selection of this run (``sidebar.Selection``; set before any page draws)."""
    return st.session_state[state.SELECTION]


def current(page: Page) -> View:
    """The view ``page`` shows in this session: the sidebar's selection and the page's settings,
    resolved (:func:`resolve`) and written back, so every reader sees the same values."""
    chosen = selection()
    session = st.session_state
    given = {s.key: session[s.key] for s in page.settings if s.key in session}
    auto = {s.key: session[_auto(s.key)] for s in page.settings if _auto(s.key) in session}
    values, starts = resolve(page, chosen.handle, chosen.image, chosen.layer, chosen.channel, given, auto=auto)
    for key, value in values.items():
        session[key] = value
    for key, start in starts.items():
        session[_auto(key)] = start
    return View(page.name, chosen.handle, chosen.image, chosen.layer, chosen.channel, values)


# ------------------------------------------------------------------------------- widgets
def _copy(widget_key: str, key: str) -> None:
    st.session_state[key] = st.session_state[widget_key]


def _fingerprint(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=6).hexdigest()


def widget_key(key: str, offer: object) -> str:
    """The key a setting's widget is drawn under: the setting's key and a digest of its offer."""
    return f"{key}@{_fingerprint(offer)}"


def widget(view: View, page: Page, key: str, where: Any = None, **extra: Any) -> Any:
    """Draw setting ``key``'s widget (in ``where``: a column, the sidebar; else here) from the
    declaration, showing the view's value; a change goes into the setting's value before the next
    run (a callback). ``extra``: further arguments of the widget (``disabled``...)."""
    setting = page.setting(key)
    kind = setting.kind
    before = {s.key: view.values[s.key] for s in page.settings[: page.settings.index(setting)]}
    context = Context(view.handle, view.image, view.layer, view.channel, before)
    value = view.values[key]
    where = where if where is not None else st
    common = dict(help=setting.help, **extra)
    text = setting.label(context) if callable(setting.label) else setting.label
    if isinstance(kind, Choice | Many | ClassIndex):
        options = kind.offer(context)
        label = _labeller(kind.labels, context)
        labels = [label(option) for option in options]
        wkey = widget_key(key, (tuple(options), tuple(labels)))
        _show(wkey, value)
        fmt = dict(zip(map(_hashable, options), labels, strict=True)).__getitem__

        def format_func(option: Any) -> str:
            return fmt(_hashable(option))

        callback = dict(key=wkey, on_change=_copy, args=(wkey, key))
        if setting.widget == "radio":
            return where.radio(text, options, format_func=format_func, **callback, **common)
        if setting.widget == "select_slider":
            return where.select_slider(text, options, format_func=format_func, **callback, **common)
        if setting.widget == "multiselect":
            return where.multiselect(text, options, format_func=format_func, **callback, **common)
        return where.selectbox(text, options, format_func=format_func, **callback, **common)
    if isinstance(kind, Number):
        high = kind.top(context)
        wkey = widget_key(key, (kind.low, high, kind.step))
        _show(wkey, value)
        callback = dict(key=wkey, on_change=_copy, args=(wkey, key))
        if setting.widget == "number":
            return where.number_input(text, kind.low, high, step=kind.step, **callback, **common)
        return where.slider(text, kind.low, high, step=kind.step, **callback, **common)
    if isinstance(kind, Span):
        high = kind.top(context)
        wkey = widget_key(key, ("span", high))
        _show(wkey, value)
        return where.slider(text, 0, high, key=wkey, on_change=_copy, args=(wkey, key), **common)
    if setting.widget == "button":  # turns the flag on (a check that then runs), drawn where the page wants it
        return where.button(text, key=widget_key(key, "button"), on_click=_turn_on, args=(key,), **common)
    wkey = widget_key(key, "flag")
    _show(wkey, value)
    callback = dict(key=wkey, on_change=_copy, args=(wkey, key))
    if setting.widget == "checkbox":
        return where.checkbox(text, **callback, **common)
    return where.toggle(text, **callback, **common)


def _turn_on(key: str) -> None:
    st.session_state[key] = True


def _hashable(option: Any) -> Any:
    return tuple(option) if isinstance(option, list) else option


def _show(widget_key: str, value: Any) -> None:
    """Give the widget the setting's value before it is drawn (a link, a slide, a fallback)."""
    session = st.session_state
    if widget_key not in session or not _same(session[widget_key], value):
        session[widget_key] = list(value) if isinstance(value, list) else value


def controls(view: View, page: Page) -> None:
    """Every setting's widget, in order, under the page's heading in the sidebar."""
    with st.sidebar:
        if page.controls:
            st.subheader(page.controls)
        for setting in page.settings:
            if not setting.placed and setting.widget != "button":
                widget(view, page, setting.key)


def follow(page: str, values: Mapping[str, Any], *, layer: str | None = None, channel: int | None = None) -> None:
    """Open ``page`` (its address) at this view from the next run on, as a link inside the app
    would (the tour's "Explore this"): the layer and filter through the sidebar's one request
    (``layer_choice.want``), the page's settings (by key) staged like a link's, applied before
    that page resolves its view, every other setting at its start. The caller switches page."""
    layer_choice.want(layer, channel)
    st.session_state[state.LINK_SETTINGS] = (page, dict(values), True)


def show(page: Page) -> None:
    """Draw ``page`` for this session: resolve its view, draw its settings' widgets (when it keeps
    them in the sidebar), do its work and draw the results."""
    view = current(page)
    if page.controls is not None:
        controls(view, page)
    page.draw(view, page.work(view) if page.eager or present.presenting() else None)


def require_spatial(info: LayerInfo) -> None:
    """Stop the page with a plain explanation when the chosen layer has no (C, H, W) map."""
    if not info.is_spatial:
        st.info(f"{info.name} has no spatial map ({info.shape_text}); choose a convolutional layer in the sidebar.")
        st.stop()
