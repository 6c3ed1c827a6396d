"""Parts of a page's drawing, kept apart so that each page module reads as its declaration, its
work and its drawing (``dashboard.views.declare``). Each part draws one section of one page from
that page's :class:`~dashboard.views.declare.View` and results; none holds state of its own."""
