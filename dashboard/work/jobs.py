"""Long work in a background thread, one job per session, with progress and a stop button.

A page starts a :class:`Job` and stores it in ``st.session_state``; :func:`follow` draws its
progress in a fragment that reruns every second while the session holds the job (an idle page
asks nothing of the server, however many viewers leave it open). Clicking "start" again while
a job runs does nothing (the button is disabled and :meth:`Job.start` refuses), so impatient
clicks never stack, and at most :data:`MAX_RUNNING` jobs run at once in the whole server (a
2-core machine shared by every viewer). The stop button sets an event the work polls between
steps. Work nobody is watching stops the same way: a job belongs to the session that started it,
and once that session has had no browser connected for :data:`ORPHAN_SECONDS` (the tab closed,
a reload that opened a new session), :meth:`Job.should_stop` says stop, so the work ends after
its current batch and frees its slot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.words import escape

#: Jobs allowed to run at the same time across all sessions.
MAX_RUNNING = 2
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)
#: Seconds without a browser connected to the job's session after which the job stops (a short
#: network drop reconnects the same session well within it).
ORPHAN_SECONDS = 15.0


def session_alive() -> Callable[[], bool] | None:
    """Whether the session now running is still connected to a browser, asked from any thread
    (None outside a Streamlit server: tests, the command line)."""
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    session, server = ctx.session_id, runtime.get_instance()
    return lambda: server.is_active_session(session)


class Busy(RuntimeError):
    """Every job slot is taken; try again when one finishes."""


class Job:
    """A piece of work running in a thread: ``work(job)`` returns the result.

    The work reports with :meth:`report` and polls :meth:`should_stop`.
    """

    def __init__(self, name: str, work: Callable[[Job], Any], alive: Callable[[], bool] | None = None) -> None:
        """``alive``: whether anyone still watches (default: the starting session has a browser)."""
        self.name = name
        self._work = work
        self._alive = alive if alive is not None else session_alive()
        self._gone_since: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.fraction = 0.0
        self.message = "starting…"
        self.detail: Any = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: Stopped because nobody was watching any more.
        self.orphaned = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the work; raises :class:`Busy` when the server is already at its limit."""
        if self._thread is not None:
            return  # started already: a second click changes nothing
        if not _SLOTS.acquire(blocking=False):
            raise Busy(f"{MAX_RUNNING} long jobs are already running on this server; try again in a moment.")
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work(self)
        except BaseException as exc:  # noqa: BLE001 - reported to the page, never lost
            self.error = exc
        finally:
            _SLOTS.release()

    def stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        """Stop was pressed, or nobody has watched for :data:`ORPHAN_SECONDS` (then it is as if pressed)."""
        if not self._stop.is_set() and self._alive is not None:
            if self._alive():
                self._gone_since = None
            elif self._gone_since is None:
                self._gone_since = time.monotonic()
            elif time.monotonic() - self._gone_since >= ORPHAN_SECONDS:
                self._stop.set()
                self.orphaned = True
        return self._stop.is_set()

    def report(self, fraction: float, message: str, detail: Any = None) -> None:
        with self._lock:
            self.fraction = max(0.0, min(1.0, fraction))
            self.message = message
            self.detail = detail

    def snapshot(self) -> tuple[float, str, Any]:
        with self._lock:
            return self.fraction, self.message, self.detail

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests use this); True when it ended."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()


@dataclass(frozen=True)
class Progress:
    """How a page follows its background job (the Atlas page's build, the lab's training): the job
    under ``key`` in ``st.session_state``; while it runs, "<doing> <name>: <message>" with a
    progress bar, a Stop button (``stop``: its label, key, help and the toast it shows) and
    whatever ``running(job, history)`` adds; once it ended, ``ended(job)`` says how (a
    ``(kind, text)`` kept under ``outcome_key`` for the page's next run, or None) and
    ``finished(job)`` does what follows."""

    key: str
    outcome_key: str
    doing: str
    stop: tuple[str, str, str, str]
    ended: Callable[[Job], tuple[str, str] | None]
    running: Callable[[Job, Any], None] = lambda job, history: None
    finished: Callable[[Job], None] = lambda job: None


def follow(progress: Progress) -> None:
    """Draw the job's progress as a fragment polled every second only while the job is there:
    running, or ended and not yet reported (then its outcome is kept, the job forgotten, and the
    whole page runs again to show it)."""

    def draw() -> None:
        current: Job | None = st.session_state.get(progress.key)
        if current is None:
            return
        fraction, message, history = current.snapshot()
        if current.running:
            st.progress(fraction, text=escape.markdown(f"{progress.doing} {current.name}: {message}"))
            label, key, help_text, toast = progress.stop
            if st.button(label, key=key, help=help_text):
                current.stop()
                st.toast(toast)
            progress.running(current, history)
            return
        if (outcome := progress.ended(current)) is not None:
            st.session_state[progress.outcome_key] = outcome
        progress.finished(current)
        del st.session_state[progress.key]
        st.rerun(scope="app")

    st.fragment(draw, run_every=1.0 if st.session_state.get(progress.key) is not None else None)()
