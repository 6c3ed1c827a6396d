"""A talk: views of the dashboard in order, each with an optional title and note, kept in the
session, saved and loaded as a small JSON file, and presented full screen.

A slide is a view (a page and its link's parameters: model, sample photo, layer, filter and the
page's own settings, see :mod:`dashboard.share.links` and :mod:`dashboard.share.settings`), so a slide shows
exactly what its link shows. Slides use the sample photos: an uploaded photo, a camera picture or
a lab run's test image cannot go into a file or a link, so "Add this view" refuses them and says so.

A talk file is checked whole before anything changes (THREATS.md): its size, its shape, every
field's type and length, the page (one of this dashboard's pages), and every value of every slide
the way a link's values are checked (the model offered here, a sample photo, the model's layer and
filter, what each page setting's widget offers). A file with any problem is refused with the list
of problems, and the talk in the session stays as it was.

Presenter mode (:func:`present_bar`): the sidebar and the page's own controls are hidden, type
is larger, and Back / Next (arrow keys too) move through the slides. When the talk starts, every
slide's results are computed ahead (``settings.warm``), so a slide change only redraws.

A slide is one screen: its page's main picture and what explains it. Each page with more below
its main picture marks where that ends (:func:`fold`); a presented slide stops there, and
"Whole page" (key W) draws the rest on demand. The browser, not the server, is what a slide
change waits for (drawing each Plotly chart costs 30-90 ms on a 2-core laptop, and a page like
*Where it looked* holds six), so drawing one screen instead of a page of charts is what keeps a
slide change under 300 ms.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import streamlit as st

import vis_core
from dashboard import state
from dashboard.share import links, present, settings
from dashboard.sidebar import image_source, model_choice
from dashboard.sidebar.image_source import ImageEntry
from dashboard.words import escape, heading
from dashboard.work import jobs
from dashboard.work.shelf import Shelf
from vis_core import costs

FORMAT = "inside-a-cnn talk"
VERSION = 1
#: Largest talk file taken, in bytes, and the most slides.
MAX_BYTES = 256 * 1024
MAX_SLIDES = 100
MAX_TITLE = 120
MAX_NOTE = 2000
#: The fields of a slide in a file; ``title``, ``note`` and ``settings`` may be left out.
SLIDE_FIELDS = ("title", "note", "page", "model", "image", "layer", "filter", "settings")
VIEWS = Path(__file__).resolve().parents[1] / "views"
#: Where presenter mode's controls are drawn (a container key; its CSS class is ``st-key-<key>``).
BAR_KEY = "talk_bar"
_uids = itertools.count(1)


def pages() -> list[str]:
    """The pages a slide may show: this dashboard's pages (file names in ``views/``) but the talk's own."""
    return sorted(path.stem for path in VIEWS.glob("*.py") if path.stem not in ("__init__", "talk", "declare"))


class TalkError(ValueError):
    """A talk file that cannot be used; ``problems`` lists why (each names its slide)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:8] + ([f"and {len(problems) - 8} more"] if len(problems) > 8 else [])
        super().__init__("; ".join(shown))


@dataclass(frozen=True)
class Slide:
    """One view of a talk: a page and its link's parameters (text, by link name), a title, a note.

    ``uid`` names the slide's widgets on the talk page while slides move; it is not saved.
    """

    page: str
    params: dict[str, str]
    title: str = ""
    note: str = ""
    uid: int = field(default_factory=lambda: next(_uids), compare=False)

    def to_dict(self) -> dict:
        own = {key: value for key, value in self.params.items() if key not in links.LINK_KEYS}
        return {
            "title": self.title,
            "note": self.note,
            "page": self.page,
            "model": self.params.get("model", ""),
            "image": self.params.get("image", ""),
            "layer": self.params.get("layer", ""),
            "filter": int(self.params.get("filter", "0")),
            "settings": own,
        }


@dataclass
class Talk:
    """Slides in order."""

    slides: list[Slide] = field(default_factory=list)

    def index(self, uid: int) -> int:
        return next(i for i, slide in enumerate(self.slides) if slide.uid == uid)

    def add(self, slide: Slide) -> None:
        if len(self.slides) >= MAX_SLIDES:
            raise TalkError([f"A talk holds at most {MAX_SLIDES} slides."])
        self.slides.append(slide)

    def move(self, uid: int, step: int) -> None:
        """Move a slide ``step`` places (-1: earlier, 1: later), within the talk."""
        i = self.index(uid)
        j = min(max(i + step, 0), len(self.slides) - 1)
        self.slides.insert(j, self.slides.pop(i))

    def delete(self, uid: int) -> None:
        del self.slides[self.index(uid)]

    def edit(self, uid: int, *, title: str | None = None, note: str | None = None) -> None:
        i = self.index(uid)
        slide = self.slides[i]
        self.slides[i] = replace(
            slide,
            title=slide.title if title is None else title[:MAX_TITLE],
            note=slide.note if note is None else note[:MAX_NOTE],
            uid=slide.uid,
        )

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "version": VERSION, "slides": [slide.to_dict() for slide in self.slides]},
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Talk:
        """A talk from a file's bytes, every field checked for type and size (not yet against this
        server's models: :func:`check`). Raises :class:`TalkError` naming every problem."""
        if len(data) > MAX_BYTES:
            raise TalkError([f"The file has {len(data):,} bytes; a talk file has at most {MAX_BYTES:,}."])

        def no_constant(name: str) -> None:
            raise ValueError(f"{name} is not a number JSON allows")

        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            document = json.loads(text, parse_constant=no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise TalkError([f"This is not a talk file (not JSON: {str(exc)[:120]})."]) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise TalkError([f'This is not a talk file (it has no "format": "{FORMAT}").'])
        version = document.get("version")
        if isinstance(version, bool) or version != VERSION:  # JSON's true is not the version 1
            raise TalkError(
                [f"Talk file version {str(document.get('version'))[:20]!r} is not {VERSION}, the one read here."]
            )
        raw = document.get("slides")
        if not isinstance(raw, list) or not raw:
            raise TalkError(["The file has no list of slides."])
        if len(raw) > MAX_SLIDES:
            raise TalkError([f"The file has {len(raw)} slides; a talk holds at most {MAX_SLIDES}."])
        slides, problems = [], []
        for number, item in enumerate(raw, 1):
            slide, wrong = _slide(item)
            problems += [f"Slide {number}: {problem}" for problem in wrong]
            if slide is not None:
                slides.append(slide)
        if problems:
            raise TalkError(problems)
        return cls(slides)


def _valid(text: str) -> bool:
    """Whether ``text`` is valid Unicode: no lone surrogate such as ``\\ud800`` (JSON escapes can
    hold one; the page that shows it cannot encode it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(item: dict, name: str, limit: int, problems: list[str], *, required: bool = True) -> str:
    value = item.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value):
        problems.append(f"{name} is missing or not text")
        return ""
    if len(value) > limit:
        problems.append(f"{name} is longer than {limit} characters")
        return ""
    if not _valid(value):
        problems.append(f"{name} is not valid text (it holds a lone surrogate)")
        return ""
    return value


def _slide(item: object) -> tuple[Slide | None, list[str]]:
    if not isinstance(item, dict):
        return None, ["not an object with a page, model, image, layer and filter"]
    problems = [f"unknown field {str(key)[:40]!r}" for key in item if key not in SLIDE_FIELDS]
    title = _text(item, "title", MAX_TITLE, problems, required=False)
    note = _text(item, "note", MAX_NOTE, problems, required=False)
    page = _text(item, "page", 40, problems)
    if page and page not in pages():
        problems.append(f"page {page!r} is not one of this dashboard's pages")
    params = {name: _text(item, name, links.MAX_VALUE, problems) for name in ("model", "image", "layer")}
    channel = item.get("filter")
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < 10**7:
        problems.append("filter is not a whole number from 0")
    else:
        params["filter"] = str(channel)
    own = item.get("settings", {})
    if not isinstance(own, dict) or len(own) > 50:
        problems.append("settings is not an object of at most 50 names")
        own = {}
    for name, value in own.items():
        if (
            name in links.LINK_KEYS
            or not isinstance(value, str)
            or len(value) > settings.MAX_TEXT
            or len(name) > 40
            or not (_valid(name) and _valid(value))
        ):
            problems.append(f"setting {str(name)[:40]!r} is not a name with a short text")
    if problems:
        return None, problems
    return Slide(page, {**params, **own}, title, note), []


def check(talk: Talk) -> list[str]:
    """Every value of every slide checked as a link's values are, against this server's models,
    photos and pages: the problems, each naming its slide (none: the talk can be shown)."""
    problems = []
    for number, slide in enumerate(talk.slides, 1):
        view = links.check(slide.page, slide.params, strict=True)
        problems += [f"Slide {number}: {problem}" for problem in view.problems]
    return problems


# ------------------------------------------------------------------------- the session's talk
def current() -> Talk:
    """This session's talk (empty at first)."""
    return st.session_state.setdefault(state.TALK, Talk())


def add_view(page: str) -> None:
    """Callback of "Add this view to my talk": the view the page shows, with the title and note typed."""
    entry: ImageEntry | None = st.session_state.get(state.IMAGE)
    selection = st.session_state.get(state.SELECTION)
    if entry is None or selection is None or not entry.key.startswith(image_source.SAMPLE_PREFIX):
        state.flash(
            "A talk uses the sample photos: an uploaded photo, a camera picture or a test image cannot be saved in a "
            "talk file or a link. Choose a sample photo, then add the view."
        )
        return
    params = {
        "model": st.session_state[state.MODEL_NAME],
        "image": image_source.slug(entry.key.removeprefix(image_source.SAMPLE_PREFIX)),
        "layer": selection.layer,
        "filter": str(selection.channel),
        **settings.capture(page, st.session_state),
    }
    talk = current()
    title = str(st.session_state.get(state.TALK_NEW_TITLE, ""))[:MAX_TITLE]
    note = str(st.session_state.get(state.TALK_NEW_NOTE, ""))[:MAX_NOTE]
    try:
        talk.add(Slide(page, params, title.strip(), note.strip()))
    except TalkError as exc:
        state.flash(str(exc))
        return
    st.session_state[state.TALK_NEW_TITLE] = st.session_state[state.TALK_NEW_NOTE] = ""
    st.toast(f"Added slide {len(talk.slides)} to your talk.", icon=":material/slideshow:")


def load(data: bytes, name: str = "The file") -> int:
    """Replace the session's talk by a file's (checked whole first); returns its number of slides.
    Raises :class:`TalkError` (the talk stays as it was)."""
    talk = Talk.from_json(data)
    if problems := check(talk):
        raise TalkError(problems)
    st.session_state[state.TALK] = talk
    return len(talk.slides)


def on_upload() -> None:
    """Callback of the talk page's file uploader."""
    uploaded = st.session_state.get(state.TALK_UPLOAD)
    if uploaded is None:
        return
    name = getattr(uploaded, "name", "The file")
    try:
        count = load(uploaded.getvalue(), name)
    except TalkError as exc:
        state.flash(f"{name} was not loaded: {exc}. Your talk is unchanged.")
        return
    st.toast(escape.markdown(f"Loaded {count} slide{'s' if count != 1 else ''} from {name}."))


# ----------------------------------------------------------------------------- presenting
def view_of(slide: Slide) -> settings.View:
    """A slide as a view to compute ahead (its values checked again; a refused one keeps its default)."""
    checked = links.check(slide.page, slide.params, strict=True)
    handle = model_choice.load_handle(checked.model or vis_core.DEFAULT_MODEL)
    sample = checked.sample or vis_core.sample_names()[0]
    image = ImageEntry(image_source.sample_key(sample), sample, vis_core.sample_image(sample))
    from dashboard.sidebar import layer_choice

    layer = checked.layer or layer_choice.default_layer(handle)
    return settings.view(slide.page, handle, image, layer, checked.channel or 0, checked.values)


def warm_up(talk: Talk, progress: Callable[[int, int, Slide], None] | None = None) -> None:
    """Compute every slide's results ahead, into the caches its page reads, in slide order."""
    for number, slide in enumerate(talk.slides):
        if progress is not None:
            progress(number, len(talk.slides), slide)
        settings.warm(view_of(slide))


@dataclass
class Ahead:
    """A talk's slides being prepared in the background, in slide order: which are ready, which
    failed (why), and which is being made."""

    key: str
    views: list[settings.View]
    ready: set[int] = field(default_factory=set)
    errors: dict[int, str] = field(default_factory=dict)
    working_on: int | None = None
    alive: Callable[[], bool] | None = None
    thread: Any = None

    @property
    def done(self) -> bool:
        return len(self.ready) + len(self.errors) == len(self.views)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every slide is prepared (tests); True when they are."""
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return self.done


#: Talks being prepared ahead (one per talk's content, shared by whoever presents it).
_AHEAD: Shelf[Ahead] = Shelf(4)


def _key(talk: Talk) -> str:
    return hashlib.blake2b(talk.to_json().encode(), digest_size=12).hexdigest()


def clear(timeout: float = 120.0) -> None:
    """Stop the slides being prepared and forget which are (tests between runs; also at exit)."""
    _AHEAD.clear(timeout)


def ahead(talk: Talk) -> Ahead | None:
    """The background preparation of ``talk``, if one was started."""
    with _AHEAD.lock:
        return _AHEAD.get(_key(talk))


def prepare(talk: Talk, views: list[settings.View], ready: set[int]) -> Ahead:
    """Prepare ``talk``'s slides (``views``, made in the script's thread) in the background, in
    slide order, those in ``ready`` done already; the work stops once the presenting session has
    had no browser for ``jobs.ORPHAN_SECONDS`` (the tab closed)."""
    with _AHEAD.lock:
        found = _AHEAD.get(_key(talk)) or _AHEAD.put(_key(talk), Ahead(_key(talk), views))
        found.ready |= ready
        found.alive = jobs.session_alive()
        if not found.done and found.thread is None:
            _AHEAD.start(found, _prepare, found, name="talk-ahead")
    return found


def _prepare(found: Ahead) -> None:
    gone = None
    try:
        for index, view in enumerate(found.views):
            if index in found.ready or index in found.errors:
                continue
            if _AHEAD.stopping():
                return
            if found.alive is not None and not found.alive():
                gone = gone or time.monotonic()
                if time.monotonic() - gone >= jobs.ORPHAN_SECONDS:
                    return  # nobody presents it any more
            found.working_on = index
            try:
                settings.warm(view)
                found.ready.add(index)
            except Exception as exc:  # noqa: BLE001 - the slide says why when shown; the others go on
                found.errors[index] = f"{type(exc).__name__}: {exc}"
    finally:
        found.working_on = None
        with _AHEAD.lock:
            found.thread = None


@dataclass(frozen=True)
class Budget:
    """What presenting a talk computes ahead: each slide's passes of the network (``vis_core.costs``;
    a slide past one request's cap is not computed, its page says what to reduce) and seconds."""

    passes: tuple[float, ...]
    seconds: float

    @property
    def total(self) -> float:
        return float(sum(self.passes))

    @property
    def allowed(self) -> bool:
        return self.total <= costs.MAX_JOB_WORK

    def heaviest(self, count: int = 3) -> list[int]:
        """The slides (numbered from 1) that ask for the most work, heaviest first."""
        order = sorted(range(len(self.passes)), key=lambda i: -self.passes[i])
        return [i + 1 for i in order[:count] if self.passes[i] > 0]


def budget(talk: Talk) -> Budget:
    """The work Present asks for: the sum of its slides' (from each page's declared ``cost``)."""
    passes, seconds = [], 0.0
    for slide in talk.slides:
        view = view_of(slide)
        work = settings.cost(view)
        work = work if work <= costs.MAX_WORK else 0.0  # refused, not computed: the slide says why
        passes.append(work)
        seconds += costs.seconds_for(view.handle, forward_backward=work)
    return Budget(tuple(passes), seconds)


def start(index: int = 0) -> None:
    """Present the session's talk from slide ``index`` (shown by the next run)."""
    st.session_state[state.TALK_PRESENTING] = True
    st.session_state[state.TALK_WHOLE] = False
    st.session_state[state.TALK_INDEX] = index
    st.session_state[state.TALK_PENDING] = index


def show_pending(page: str) -> None:
    """At the start of a run, before any widget: stage the slide Next, Back or Present asked for,
    and switch to its page (the page's settings are applied when that page is drawn)."""
    index = st.session_state.pop(state.TALK_PENDING, None)
    if index is None or not present.presenting():
        return
    slide = current().slides[min(index, len(current().slides) - 1)]
    view = links.check(slide.page, slide.params, strict=True)
    for problem in view.problems:  # the server changed since the talk was loaded (a run deleted...)
        st.toast(escape.markdown(f"Slide {index + 1}: {problem}; showing the usual default."))
    links.stage(slide.page, view, reset=True)
    if slide.page != page:
        st.switch_page(f"views/{slide.page}.py")


def _index(step: int = 0) -> int:
    """The index of the slide presented (``step`` slides on), within the talk."""
    return min(max(int(st.session_state.get(state.TALK_INDEX, 0)) + step, 0), len(current().slides) - 1)


def shown() -> Slide:
    """The slide being presented."""
    return current().slides[_index()]


def _go(step: int) -> None:
    index = _index(step)
    if index != st.session_state.get(state.TALK_INDEX):
        st.session_state[state.TALK_INDEX] = index
        st.session_state[state.TALK_PENDING] = index
        st.session_state[state.TALK_WHOLE] = False  # each slide opens on its first screen


def _whole() -> None:
    st.session_state[state.TALK_WHOLE] = not st.session_state.get(state.TALK_WHOLE)


def _exit() -> None:
    """Back to the dashboard on the slide shown: its view goes into the sidebar, which was not
    drawn while presenting (its widgets start again from the staged values)."""
    slide = shown()
    links.stage(slide.page, links.check(slide.page, slide.params, strict=True), reset=True)
    st.session_state[state.TALK_PRESENTING] = False  # (a tile clicked on a slide chose nothing: the slide's
    # layer and filter replace what it asked for)


#: A mark beside the style, so that Streamlit keeps the element where it is drawn (HTML of style
#: tags alone goes to the page's event container, which is cleared only when a run ends: the
#: presenter's large type stayed on the page after Exit until the page had drawn completely).
STYLE_MARK = "presenter-style"
#: Presenter mode: no sidebar, no header, no controls of the page in the main area (the slide
#: holds them); larger type; the page's introduction hidden (:mod:`dashboard.words.heading`), so the
#: picture fits a 1280x720 screen. Only these constant texts are ever injected.
PRESENTER_CSS = f"""<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"], [data-testid="stToolbar"] {{ display: none !important; }}
html {{ font-size: 19px; }}
[data-testid="stMainBlockContainer"] {{ padding-top: 1rem; max-width: 100%; }}
[data-testid="stMain"] :is([data-testid="stSelectbox"], [data-testid="stMultiSelect"], [data-testid="stSlider"],
  [data-testid="stNumberInput"], [data-testid="stRadio"], [data-testid="stCheckbox"], [data-testid="stTextInput"],
  [data-testid="stButton"], [data-testid="stDownloadButton"], [data-testid="stFileUploader"],
  [data-testid="stPopover"]):not(.st-key-{BAR_KEY} *) {{ display: none; }}
.st-key-{heading.KEY} [data-testid="stMarkdown"] {{ display: none; }}
[data-testid="stElementContainer"]:has(.{STYLE_MARK}) {{ display: none; }}
</style>"""
#: With a slide title, the page's own title goes too (the slide's stands in its place).
TITLED_CSS = f"<style>.st-key-{heading.KEY} {{ display: none; }}</style>"


def style(slot: Any) -> None:
    """Presenter mode's style, in ``slot``: the first element of the main area, so that the run
    after Exit replaces it at once (drawn anywhere later, the presenter's large type stayed on
    the page until the page had drawn that far)."""
    if present.presenting():
        slot.html(PRESENTER_CSS + (TITLED_CSS if shown().title else "") + f'<span class="{STYLE_MARK}"></span>')


def _preparing(talk: Talk, index: int) -> None:
    """While later slides are prepared in the background: how far, and whether this one is ready
    (if not, it is being made now and appears in a moment)."""
    found = ahead(talk)
    if found is None or found.done:
        return
    count = len(found.ready)
    if index in found.ready:
        st.caption(f"Preparing the next slides in the background: {count} of {len(found.views)} ready.")
    else:
        st.info(
            f"Slide {index + 1} is still being prepared ({count} of {len(found.views)} slides ready); it appears "
            "here in a moment.",
            icon=":material/hourglass_top:",
        )


def present_bar() -> settings.View:
    """Presenter mode's controls and the slide's title and note, above the page; returns the
    slide's view, which the page draws.

    The view comes straight from the slide (:func:`view_of`, as the warm-up computed it), not
    from the sidebar's widgets: the sidebar is not drawn while presenting (it would be hidden),
    which spares the browser a redraw of every sidebar widget at each slide change."""
    talk, index = current(), _index()
    slide = talk.slides[index]
    with st.container(key=BAR_KEY):
        back, where, forward, whole, leave = st.columns([1, 2, 1, 1, 1], vertical_alignment="center")
        back.button(
            "Back",
            icon=":material/arrow_back:",
            key="talk_back",
            on_click=_go,
            args=(-1,),
            shortcut="Left",
            disabled=index == 0,
            width="stretch",
        )
        where.markdown(f"**Slide {index + 1} of {len(talk.slides)}**")
        forward.button(
            "Next",
            icon=":material/arrow_forward:",
            key="talk_next",
            on_click=_go,
            args=(1,),
            shortcut="Right",
            disabled=index == len(talk.slides) - 1,
            type="primary",
            width="stretch",
        )
        whole.button(
            "Slide only" if st.session_state.get(state.TALK_WHOLE) else "Whole page",
            key="talk_whole",
            on_click=_whole,
            shortcut="W",
            help="Draw the rest of the page under this slide (its first screen is what the slide shows), or go "
            "back to the slide alone.",
            width="stretch",
        )
        leave.button("Exit", key="talk_exit", on_click=_exit, shortcut="Esc", width="stretch")
        _preparing(talk, index)
        if slide.title:
            st.markdown(f"## {escape.markdown(slide.title)}")
        if slide.note:
            st.markdown(escape.markdown(slide.note))
    return view_of(slide)
