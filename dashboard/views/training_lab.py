"""Training lab: train a small CNN here and watch its filters and feature maps evolve.

Declared once (``dashboard.views.declare``): the run shown, a new run's settings, and the test
image and layer whose maps play through time. The drawing's parts: ``parts.lab_train`` (Train,
its estimate and progress) and ``parts.lab_run`` (the run, its filters' evolution, one image).
"""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.views.declare import Choice, Context, Number, Page, Setting, View, show, widget
from dashboard.views.parts import lab_run, lab_train
from dashboard.words import escape, heading
from dashboard.work import jobs
from vis_core import nets, runs, training
from vis_core.datasets import DATASETS

DEFAULTS = training.LAB_DEFAULTS
DATASET_HELP = {
    "digits": "1,797 real handwritten digits from scikit-learn (works offline)",
    "shapes": "2,400 generated shapes and textures (works offline)",
    "mnist": "70,000 handwritten digits (downloaded on first use)",
    "fashion-mnist": "70,000 clothing pictures (downloaded on first use)",
    "cifar10": "60,000 small colour photos (downloaded on first use)",
}
ARCH_HELP = {
    "notebook": "notebook (conv 5×5×32, pool, conv 5×5×64, pool, dense 1024)",
    "tinyvgg": "tiny VGG (4 conv 3×3 + batch norm, global pooling)",
}


def _saved(context: Context) -> dict[str, runs.Run]:
    found, _ = vis_core.list_runs(vis_core.runs_dir())
    return {run.name: run for run in found}


def _run_start(context: Context) -> str | None:
    """The run in use in the sidebar, else the newest."""
    names = list(_saved(context))
    in_use = context.handle.name.removeprefix(cache.RUN_PREFIX)
    return in_use if in_use in names else (names[0] if names else None)


def _run(context: Context) -> runs.Run | None:
    return _saved(context).get(context.values.get(state.LAB_RUN))


def _test_images(context: Context) -> list[int]:
    run = _run(context)
    return list(range(len(cache.test_samples(lab_run.key(run), run)[1]))) if run is not None else []


def _test_labels(context: Context):
    run = _run(context)
    labels = cache.test_samples(lab_run.key(run), run)[1] if run is not None else []
    return lambda i: f"{i}: a {run.classes[labels[i]]}"


def _map_layers(context: Context) -> list[str]:
    run = _run(context)
    return cache.run_map_layers(lab_run.key(run), run) if run is not None else []


SETTINGS = (
    Setting(state.LAB_RUN, "run", Choice(lambda c: list(_saved(c)), "a run of the lab:"), _run_start, "Run"),
    Setting(
        "lab_dataset",
        "dataset",
        Choice(DATASETS, labels={d: f"{d}: {h}" for d, h in DATASET_HELP.items()}),
        DEFAULTS["dataset"],
        "Dataset",
        help="The pictures the network learns from. Digits and shapes need no internet connection.",
    ),
    Setting(
        "lab_arch",
        "arch",
        Choice(list(nets.ARCHITECTURES), labels=ARCH_HELP),
        DEFAULTS["arch"],
        "Architecture",
        help="The network's layers. The notebook's network has larger (5×5) first-layer filters, which show "
        "strokes better than tiny VGG's 3×3 ones.",
    ),
    Setting(
        "lab_epochs",
        "epochs",
        Number(1, 20),
        DEFAULTS["epochs"],
        "Epochs",
        "slider",
        "How many times the network sees every training picture. Each one is kept as a snapshot.",
    ),
    Setting(
        "lab_batch",
        "batch",
        Choice([16, 32, 64, 128, 256]),
        DEFAULTS["batch_size"],
        "Batch size",
        "select_slider",
        "How many pictures the network looks at before each small correction of its weights. Smaller "
        "batches make more corrections per epoch, each a little noisier.",
    ),
    Setting(
        "lab_lr",
        "lr",
        Choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]),
        DEFAULTS["lr"],
        "Learning rate",
        "select_slider",
        "How big each correction of the weights is (Adam's step size). Too small and the filters barely "
        "move; too large and training becomes unstable.",
    ),
    Setting(
        "lab_init",
        "init",
        Choice(nets.INITS, labels=lab_run.INIT_HELP),
        DEFAULTS["init"],
        "Starting weights",
        help="The random weights the network starts from. 'Faint noise' starts the first layer ten times "
        "quieter than usual, so what it learns is not hidden under its random start.",
    ),
    Setting(
        "lab_seed",
        "seed",
        Number(0, 2**31 - 1),
        0,
        "Seed",
        "number",
        "The same seed and settings train the same network.",
    ),
    Setting(
        "lab_every",
        "every",
        Number(0, 10_000),
        0,
        "Extra snapshot every N steps (0: per epoch)",
        "number",
        "Keep extra snapshots inside an epoch, for a smoother animation of the start of training.",
    ),
    Setting("lab_image", "test_image", Choice(_test_images, "a test image:", labels=_test_labels), label="Test image"),
    Setting("lab_map_layer", "map_layer", Choice(_map_layers, "a layer of the run:"), label="Layer"),
)


def draw(view: View, results: None) -> None:
    heading.show(
        "Training lab",
        "Watch a network learn. Train a small CNN on handwritten digits or simple shapes and see its "
        "filters start as random noise and turn, epoch by epoch, into edge and stroke detectors, while "
        "its accuracy on images it has never seen climbs. Every epoch is kept, so you can go back in time.",
    )
    job: jobs.Job | None = st.session_state.get(state.LAB_JOB)
    busy = job is not None and job.running
    with st.expander("Train a new network", expanded=job is None):
        lab_train.controls(PAGE, busy)
    if message := st.session_state.pop(state.LAB_FLASH, None):
        st.warning(escape.markdown(message))
    if outcome := st.session_state.pop(state.LAB_OUTCOME, None):
        (st.success if outcome[0] == "success" else st.error)(escape.markdown(outcome[1]))
    lab_train.progress()
    saved, problems = runs.list_runs()
    for folder, problem in problems.items():
        if not (busy and folder == job.name):  # the run this session is training: its first snapshot is coming
            st.warning(escape.markdown(f"Run folder {folder} is damaged and cannot be used: {problem}"))
    if not saved or view.get(state.LAB_RUN) is None:
        if not busy:
            seconds = training.estimate_seconds(
                DEFAULTS["dataset"], DEFAULTS["arch"], epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"]
            )
            st.info(
                f"No runs yet. Train one above: the default run ({DEFAULTS['epochs']} epochs on {DEFAULTS['dataset']}) "
                f"takes {lab_train.duration(seconds)} on this machine."
            )
        st.stop()
    st.header("Runs")
    widget(view, PAGE, state.LAB_RUN)
    run = next(r for r in saved if r.name == view.get(state.LAB_RUN))
    lab_run.summary(run)
    lab_run.evolution_of_filters(view, run)
    lab_run.test_image(view, PAGE, run)


PAGE = Page("training_lab", SETTINGS, draw=draw)

if __name__ == "__main__":
    show(PAGE)
