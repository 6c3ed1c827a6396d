"""``python -m dashboard [streamlit options]``: start the dashboard with the engine warm.

Streamlit runs ``app.py`` only when the first viewer connects, so that viewer waited for torch
to import and the default model to load before seeing anything. Here the server starts as
usual while a background thread imports the engine, loads the default model into the same
``st.cache_resource`` the pages read, and runs the default photo through it; by the time a
browser connects there is usually nothing left to wait for. Options after the module name go
to ``streamlit run`` (``--server.port 8502``...). ``make run`` uses this.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().with_name("app.py")


def warm_up() -> None:
    """Import the engine, load the default model and map the default photo, into the caches."""
    # Outside a script run Streamlit warns "missing ScriptRunContext" for every cached call; that
    # is expected here, so keep it out of the server log while warming up.
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        import vis_core
        from dashboard.data import cache
        from dashboard.sidebar import image_source

        handle = cache.model(cache.trusted_model() or vis_core.DEFAULT_MODEL)
        sample = vis_core.sample_names()[0]
        cache.feature_maps(handle.key, image_source.sample_key(sample), handle, vis_core.sample_image(sample))
    except Exception:  # noqa: BLE001 - the first viewer meets the same error, explained in the page
        return
    finally:
        quiet.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    from streamlit.web import cli

    threading.Thread(target=warm_up, name="vis-core-warm-up", daemon=True).start()
    args = sys.argv[1:] if argv is None else argv
    return cli.main(["run", str(APP), *args], prog_name="streamlit", standalone_mode=False) or 0


if __name__ == "__main__":
    sys.exit(main())
