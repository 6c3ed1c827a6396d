"""Long work in a background thread, one job per session, with progress and a stop button.

A page starts a :class:`Job` and stores it in ``st.session_state``; :func:`follow` draws its
progress in a fragment that reruns every second while the session holds the job (an idle page
asks nothing of the server, however many viewers leave it open). Clicking "start" again while
a job runs does nothing (the button is disabled and :meth:`Job.start` refuses), so impatient
clicks never stack, and at most :data:`MAX_RUNNING` jobs run at once in the whole server (a
2-core machine shared by every viewer). The stop button sets an event the work polls between
steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.words import escape

#: Jobs allowed to run at the same time across all sessions.
MAX_RUNNING = 2
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)


class Busy(RuntimeError):
    """Every job slot is taken; try again when one finishes."""


class Job:
    """A piece of work running in a thread: ``work(job)`` returns the result.

    The work reports with :meth:`report` and polls :meth:`should_stop`.
    """

    def __init__(self, name: str, work: Callable[[Job], Any]) -> None:
        self.name = name
        self._work = work
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.fraction = 0.0
        self.message = "starting…"
        self.detail: Any = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

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
