"""What every browser-test module shares: the dashboard for the module, Chromium, and a fresh tab
(its viewport the module's ``VIEWPORT``, else 1400x1600). A module that needs more (a kept server
log, downloads) defines its own fixture of the same name."""

from __future__ import annotations

import pytest

from tests.support import browser as web

#: ms: generous for a 2-core CI machine; a passing check returns as soon as it holds.
LONG = 180_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with web.module_dashboard(tmp_path_factory) as url:  # fails the module on any traceback in the log
        yield url


@pytest.fixture(scope="module")
def chromium():
    with web.chromium() as instance:
        yield instance


@pytest.fixture
def page(chromium, request):
    viewport = getattr(request.module, "VIEWPORT", {"width": 1400, "height": 1600})
    context = chromium.new_context(viewport=viewport)
    context.set_default_timeout(LONG)
    tab = context.new_page()
    yield tab
    context.close()
