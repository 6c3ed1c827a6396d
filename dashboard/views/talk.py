"""My talk: the views collected with "Add this view to my talk", in order; save, load, present."""

from __future__ import annotations

import math

import streamlit as st

from dashboard import shell, state
from dashboard.share import links, talks
from dashboard.share import settings as page_settings
from dashboard.words import escape, heading
from dashboard.work import live
from vis_core import costs

shell.current()
talk = talks.current()
titles = shell.page_titles()

heading.show(
    "My talk",
    "Collect the views you want to show, in the order you want to show them: on any page, open **Add this view "
    "to my talk** in the sidebar. Each slide keeps the whole view (page, model, photo, layer, filter and the "
    "page's own settings) with a title and a note. Save the talk as a small file to bring it back later, and "
    "press **Present**: the sidebar goes, the type grows, and Next and Back (or the arrow keys) move through "
    "the slides. A slide is one screen, the page's main picture; **Whole page** (or W) shows the rest of the page "
    "below it. The first slide is made when you press Present and the others behind it, in order, while you "
    "talk, so changing slides is quick.",
)


def summary(slide: talks.Slide) -> str:
    params = slide.params
    own = ", ".join(f"{name} {value}" for name, value in params.items() if name not in links.LINK_KEYS)
    parts = [
        titles.get(slide.page, slide.page),
        params.get("model", ""),
        f"photo {params.get('image', '')}",
        f"{params.get('layer', '')} · filter {params.get('filter', '')}",
    ]
    return escape.markdown(" · ".join(parts) + (f" · {own}" if own else ""))


def edit(uid: int, field: str) -> None:
    talk.edit(uid, **{field: st.session_state[f"talk_{field}_{uid}"]})


if not talk.slides:
    st.info("No slides yet. Open a page, set it up, and press **Add this view to my talk** in the sidebar.")
for number, slide in enumerate(talk.slides, 1):
    with st.container(border=True, key=f"talk_slide_{slide.uid}"):
        text, moves = st.columns([5, 1])
        with text:
            st.markdown(f"**Slide {number}** · {summary(slide)}")
            st.text_input(
                "Title",
                value=slide.title,
                key=f"talk_title_{slide.uid}",
                max_chars=talks.MAX_TITLE,
                on_change=edit,
                args=(slide.uid, "title"),
            )
            st.text_area(
                "Note",
                value=slide.note,
                key=f"talk_note_{slide.uid}",
                max_chars=talks.MAX_NOTE,
                height=68,
                on_change=edit,
                args=(slide.uid, "note"),
            )
        with moves:
            st.button(
                "Up",
                icon=":material/arrow_upward:",
                key=f"talk_up_{slide.uid}",
                on_click=talk.move,
                args=(slide.uid, -1),
                disabled=number == 1,
                width="stretch",
            )
            st.button(
                "Down",
                icon=":material/arrow_downward:",
                key=f"talk_down_{slide.uid}",
                on_click=talk.move,
                args=(slide.uid, 1),
                disabled=number == len(talk.slides),
                width="stretch",
            )
            st.button(
                "Delete",
                icon=":material/delete:",
                key=f"talk_delete_{slide.uid}",
                on_click=talk.delete,
                args=(slide.uid,),
                width="stretch",
            )

cost = talks.budget(talk) if talk.slides else None
if cost is not None and not cost.allowed:
    heavy = ", ".join(str(number) for number in cost.heaviest())
    st.warning(
        f"Presenting computes every slide ahead: these slides ask for {cost.total:,.0f} passes of the network, more "
        f"than the {costs.MAX_JOB_WORK:,} one talk may use here. Reduce the heaviest (slides {heavy}: their steps, "
        "sizes or layers), or remove some."
    )
elif cost is not None:
    st.caption(
        f"Present shows the first slide once it is made and prepares the other {len(talk.slides) - 1} in the "
        f"background, in order: about {live.duration(cost.seconds)} in all on this machine "
        f"({cost.total:,.0f} passes of the network)."
    )
save, present = st.columns(2)
save.download_button(
    "Save the talk (JSON)",
    talk.to_json(),
    file_name="talk.json",
    mime="application/json",
    key="talk_save",
    icon=":material/download:",
    disabled=not talk.slides,
)
allowed = cost is not None and cost.allowed
if present.button("Present", type="primary", key="talk_present", icon=":material/slideshow:", disabled=not allowed):
    views = [talks.view_of(slide) for slide in talk.slides]
    first = escape.markdown(talk.slides[0].title or titles.get(talk.slides[0].page, talk.slides[0].page))
    with st.spinner(f"Preparing slide 1: {first}…"):
        page_settings.warm(views[0])  # the first slide first; the others in the background, in order
    talks.prepare(talk, views, ready={0})
    talks.start(0)
    st.rerun()

st.file_uploader(
    "Load a talk (JSON): it replaces the slides above",
    type=["json"],
    key=state.TALK_UPLOAD,
    on_change=talks.on_upload,
    max_upload_size=max(1, math.ceil(talks.MAX_BYTES / 2**20)),  # in MB; the file's own limit is checked too
    help="A talk file saved here. Every slide is checked first; a file with problems is refused and the talk stays.",
)
