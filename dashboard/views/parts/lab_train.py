"""The Training lab's "Train a new network": the run's declared settings (dataset, architecture,
epochs, batch, learning rate, starting weights, seed, extra snapshots), its time and disk
estimate (from a training step timed here, ``vis_core.training.estimate_seconds``, and
``vis_core.disk_budget``), Train, and the training's progress (``dashboard.work.jobs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.sidebar import model_choice
from dashboard.views import declare
from dashboard.views.declare import Page
from dashboard.words import escape
from dashboard.work import jobs, live
from vis_core import disk_budget, runs, training
from vis_core.datasets import OFFLINE_DATASETS, data_root

#: The run's settings, in the order they are drawn (three, then five, per row).
ROWS = (("lab_dataset", "lab_arch", "lab_epochs"), ("lab_batch", "lab_lr", "lab_init", "lab_seed", "lab_every"))


def duration(seconds: float) -> str:
    """``about 40 s`` or ``about 3 min``."""
    return f"about {live.duration(seconds)}"


def _start(folder: Path, settings: dict) -> None:
    def work(job: jobs.Job) -> runs.Run:
        def on_step(step: int, total: int, progress: training.Progress) -> None:
            left = progress.seconds_left
            job.report(
                step / total,
                f"epoch {progress.epoch:.1f} of {settings['epochs']} · loss {progress.train_loss:.3f}"
                + (f" · {duration(left)} left at this pace" if left is not None else ""),
                progress.history,
            )

        return training.train(out=folder, on_step=on_step, should_stop=job.should_stop, **settings)

    job = jobs.Job(folder.name, work)
    try:
        job.start()
    except jobs.Busy as exc:
        st.session_state[state.LAB_FLASH] = str(exc)
        return
    st.session_state[state.LAB_JOB] = job


def _estimate(settings: dict[str, Any]) -> str | None:
    """The run's time and disk in words (None: refused, and the reason shown)."""
    sizes = dict(
        epochs=settings["epochs"], batch_size=settings["batch_size"], snapshot_every=settings["snapshot_every"]
    )
    try:
        estimate = disk_budget.estimate_for(settings["dataset"], settings["arch"], **sizes)
        disk_budget.check_budget(estimate)
        seconds = training.estimate_seconds(settings["dataset"], settings["arch"], **sizes)
    except vis_core.VisCoreError as exc:
        st.error(escape.markdown(exc))
        return None
    return (
        f"This run will take {duration(seconds)} of training on this machine (from a training step of this "
        f"network timed here just now) and keep {estimate.text} on disk (limits: {disk_budget.MAX_SNAPSHOTS} "
        f"snapshots and {disk_budget.MAX_RUN_BYTES / 2**30:g} GB per run, {disk_budget.MAX_RUNS_BYTES / 2**30:g} GB "
        "for all runs)."
    )


def controls(page: Page, busy: bool) -> None:
    """The settings, what the run will write, and Train. A fragment: moving a slider updates the
    estimate without redrawing the runs below (it resolves the page's view again for that)."""

    @st.fragment
    def draw() -> None:
        view = declare.current(page)
        for row in ROWS:
            for column, key in zip(st.columns(len(row)), row, strict=True):
                declare.widget(view, page, key, column)
        name = st.text_input("Run name (optional)", key="lab_name", placeholder="e.g. digits-first-try")
        v = view.get
        settings = dict(
            dataset=v("lab_dataset"), arch=v("lab_arch"), epochs=v("lab_epochs"), seed=v("lab_seed"),
            batch_size=v("lab_batch"), lr=v("lab_lr"), init=v("lab_init"), snapshot_every=v("lab_every"),
        )  # fmt: skip
        if settings["dataset"] not in OFFLINE_DATASETS:
            st.caption(f"{settings['dataset']} is downloaded by torchvision into {data_root()} on first use.")
        words = _estimate(settings)
        if words is None:
            return
        st.caption(words)
        if st.button("Train", type="primary", disabled=busy, key="lab_train"):
            try:
                default = runs.default_run_name(settings["dataset"], settings["arch"], settings["seed"])
                folder = runs.new_run_folder(name.strip() or default)
            except vis_core.VisCoreError as exc:
                st.error(escape.markdown(exc))
                return
            _start(folder, settings)
            st.rerun(scope="app")

    draw()


def _curves(job: jobs.Job, history: Any) -> None:
    if history:
        st.plotly_chart(figures.training_curves(list(history)), width="stretch", key="lab_live_curves")


def _ended(job: jobs.Job) -> tuple[str, str] | None:
    """How a training ended, for the page; a finished run becomes the run shown."""
    if job.error is not None:
        return "error", f"Training {job.name} failed: {job.error}"
    if job.result is None:
        return None
    run: runs.Run = job.result
    last = run.snapshots[-1].metrics["test_accuracy"]
    verb = "was stopped; what it learned so far is kept" if run.stopped else "finished"
    st.session_state[state.LAB_RUN] = run.name  # the page's Run setting: the run just made
    return (
        "success",
        f"Training {run.name} {verb}: test accuracy {last:.1%} after {run.snapshots[-1].label}. "
        "It is now a model in the sidebar.",
    )


def progress() -> None:
    """The training's progress, its live curves and Stop."""
    jobs.follow(
        jobs.Progress(
            state.LAB_JOB,
            state.LAB_OUTCOME,
            "Training",
            (
                "Stop training",
                "lab_stop",
                "Stops after the current step and keeps what was learned.",
                "Stopping… the network trained so far is kept.",
            ),
            ended=_ended,
            running=_curves,
            finished=lambda job: model_choice.run_models.clear(),  # the runs list and the sidebar's models change
        )
    )
