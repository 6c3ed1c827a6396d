"""Training lab: train a small CNN here and watch its filters and feature maps evolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.data import cache
from dashboard.sidebar import model_choice
from dashboard.views.declare import Choice, Context, Page, Setting, View, show, widget
from dashboard.words import escape, heading
from dashboard.work import jobs, live
from vis_core import disk_budget, evolution, nets, runs, training
from vis_core.datasets import DATASETS, OFFLINE_DATASETS, data_root

DEFAULTS = training.LAB_DEFAULTS
INIT_HELP = {
    "faint": "faint noise (Glorot, first layer ×0.1)",
    "glorot": "Glorot (Keras' default, as in the notebook)",
    "pytorch": "PyTorch's default",
}


def duration(seconds: float) -> str:
    """``about 40 s`` or ``about 3 min``."""
    return f"about {live.duration(seconds)}"


DATASET_HELP = {
    "digits": "1,797 real handwritten digits from scikit-learn (works offline)",
    "shapes": "2,400 generated shapes and textures (works offline)",
    "mnist": "70,000 handwritten digits (downloaded on first use)",
    "fashion-mnist": "70,000 clothing pictures (downloaded on first use)",
    "cifar10": "60,000 small colour photos (downloaded on first use)",
}


def _training_curves(job: jobs.Job, history: Any) -> None:
    if history:
        st.plotly_chart(figures.training_curves(list(history)), width="stretch", key="lab_live_curves")


def _training_ended(job: jobs.Job) -> tuple[str, str] | None:
    """How a training ended, for the page; a finished run becomes the run shown."""
    if job.error is not None:
        return "error", f"Training {job.name} failed: {job.error}"
    if job.result is None:
        return None
    run: runs.Run = job.result
    last = run.snapshots[-1].metrics["test_accuracy"]
    verb = "was stopped; what it learned so far is kept" if run.stopped else "finished"
    st.session_state[state.LAB_RUN] = run.name
    return (
        "success",
        f"Training {run.name} {verb}: test accuracy {last:.1%} after {run.snapshots[-1].label}. "
        "It is now a model in the sidebar.",
    )


def _runs(context: Context) -> list[str]:
    runs_found, _ = vis_core.list_runs(vis_core.runs_dir())
    return [run.name for run in runs_found]


def _run_start(context: Context) -> str | None:
    """The run in use in the sidebar, else the newest."""
    names = _runs(context)
    in_use = context.handle.name.removeprefix(cache.RUN_PREFIX)
    return in_use if in_use in names else (names[0] if names else None)


SETTINGS = (Setting(state.LAB_RUN, "run", Choice(_runs, "a run of the lab:"), _run_start, "Run"),)


def draw(view: View, results: None) -> None:

    heading.show(
        "Training lab",
        "Watch a network learn. Train a small CNN on handwritten digits or simple shapes and see its "
        "filters start as random noise and turn, epoch by epoch, into edge and stroke detectors, while "
        "its accuracy on images it has never seen climbs. Every epoch is kept, so you can go back in time.",
    )

    # ------------------------------------------------------------------ train
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

    @st.fragment
    def train_controls(busy: bool) -> None:
        """The settings, what the run will write, and Train. A fragment: moving a slider updates the
        estimate without redrawing the runs below."""
        c1, c2, c3 = st.columns(3)
        dataset = c1.selectbox(
            "Dataset",
            DATASETS,
            index=DATASETS.index(DEFAULTS["dataset"]),
            key="lab_dataset",
            format_func=lambda d: f"{d}: {DATASET_HELP[d]}",
            help="The pictures the network learns from. Digits and shapes need no internet connection.",
        )
        arch = c2.selectbox(
            "Architecture",
            list(nets.ARCHITECTURES),
            index=list(nets.ARCHITECTURES).index(DEFAULTS["arch"]),
            key="lab_arch",
            format_func={
                "notebook": "notebook (conv 5×5×32, pool, conv 5×5×64, pool, dense 1024)",
                "tinyvgg": "tiny VGG (4 conv 3×3 + batch norm, global pooling)",
            }.get,
            help="The network's layers. The notebook's network has larger (5×5) first-layer filters, which show "
            "strokes better than tiny VGG's 3×3 ones.",
        )
        epochs = c3.slider(
            "Epochs",
            1,
            20,
            DEFAULTS["epochs"],
            key="lab_epochs",
            help="How many times the network sees every training picture. Each one is kept as a snapshot.",
        )
        c4, c5, c6, c7, c8 = st.columns(5)
        batch_size = c4.select_slider(
            "Batch size",
            [16, 32, 64, 128, 256],
            DEFAULTS["batch_size"],
            key="lab_batch",
            help="How many pictures the network looks at before each small correction of its weights. Smaller "
            "batches make more corrections per epoch, each a little noisier.",
        )
        lr = c5.select_slider(
            "Learning rate",
            [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
            DEFAULTS["lr"],
            key="lab_lr",
            help="How big each correction of the weights is (Adam's step size). Too small and the filters barely "
            "move; too large and training becomes unstable.",
        )
        init = c6.selectbox(
            "Starting weights",
            nets.INITS,
            index=nets.INITS.index(DEFAULTS["init"]),
            key="lab_init",
            format_func=INIT_HELP.get,
            help="The random weights the network starts from. 'Faint noise' starts the first layer ten times "
            "quieter than usual, so what it learns is not hidden under its random start.",
        )
        seed = int(
            c7.number_input(
                "Seed", 0, 2**31 - 1, 0, key="lab_seed", help="The same seed and settings train the very same network."
            )
        )
        every = int(
            c8.number_input(
                "Extra snapshot every N steps (0: per epoch)",
                0,
                10_000,
                0,
                key="lab_every",
                help="Keep extra snapshots inside an epoch, for a smoother animation of the start of training.",
            )
        )
        name = st.text_input("Run name (optional)", key="lab_name", placeholder="e.g. digits-first-try")
        if dataset not in OFFLINE_DATASETS:
            st.caption(f"{dataset} is downloaded by torchvision into {data_root()} on first use.")
        settings = dict(dataset=dataset, arch=arch, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, init=init)
        try:
            estimate = disk_budget.estimate_for(
                dataset, arch, epochs=epochs, batch_size=batch_size, snapshot_every=every
            )
            disk_budget.check_budget(estimate)
            seconds = training.estimate_seconds(
                dataset, arch, epochs=epochs, batch_size=batch_size, snapshot_every=every
            )
        except vis_core.VisCoreError as exc:
            st.error(escape.markdown(exc))
            return
        st.caption(
            f"This run will take {duration(seconds)} of training on this machine (from a training step of this "
            f"network timed here just now) and keep {estimate.text} on disk (limits: {disk_budget.MAX_SNAPSHOTS} "
            f"snapshots and {disk_budget.MAX_RUN_BYTES / 2**30:g} GB per run, "
            f"{disk_budget.MAX_RUNS_BYTES / 2**30:g} GB "
            "for all runs)."
        )
        if st.button("Train", type="primary", disabled=busy, key="lab_train"):
            try:
                folder = runs.new_run_folder(name.strip() or runs.default_run_name(dataset, arch, seed))
            except vis_core.VisCoreError as exc:
                st.error(escape.markdown(exc))
                return
            _start(folder, dict(settings, snapshot_every=every))
            st.rerun(scope="app")

    job: jobs.Job | None = st.session_state.get(state.LAB_JOB)
    busy = job is not None and job.running

    with st.expander("Train a new network", expanded=job is None):
        train_controls(busy)

    if message := st.session_state.pop(state.LAB_FLASH, None):
        st.warning(escape.markdown(message))
    if outcome := st.session_state.pop(state.LAB_OUTCOME, None):
        (st.success if outcome[0] == "success" else st.error)(escape.markdown(outcome[1]))

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
            ended=_training_ended,
            running=_training_curves,
            finished=lambda job: model_choice.run_models.clear(),  # the runs list and the sidebar's models change
        )
    )

    # ------------------------------------------------------------------- runs
    saved, problems = runs.list_runs()
    for folder, problem in problems.items():
        if busy and folder == job.name:
            continue  # the run this session is training: its first snapshot is still being written
        st.warning(escape.markdown(f"Run folder {folder} is damaged and cannot be used: {problem}"))
    if not saved:
        if not busy:
            default_seconds = training.estimate_seconds(
                DEFAULTS["dataset"], DEFAULTS["arch"], epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"]
            )
            st.info(
                f"No runs yet. Train one above: the default run ({DEFAULTS['epochs']} epochs on {DEFAULTS['dataset']}) "
                f"takes {duration(default_seconds)} on this machine."
            )
        st.stop()

    st.header("Runs")
    names = [run.name for run in saved]
    chosen = widget(view, PAGE, state.LAB_RUN)
    run = next(r for r in saved if r.name == chosen)
    settings = run.settings
    run_key = f"{run.name}@{run.snapshots[-1].weights.stat().st_mtime_ns}"
    last = run.snapshots[-1]

    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Test accuracy", f"{last.metrics['test_accuracy']:.1%}")
    c2.metric("Epochs", f"{last.epoch:g}" + (" (stopped)" if run.stopped else ""))
    c3.metric("Snapshots", len(run.snapshots))
    c4.metric("Training time", f"{settings.get('seconds', 0):.0f} s")
    st.caption(
        f"**Data**: {settings['dataset_description']}. **Normalisation**: mean {settings['mean']}, "
        f"std {settings['std']} "
        f"(from the training images). **Network**: {settings['arch']}; Adam, learning rate {settings['lr']}, "
        f"batch {settings['batch_size']}, seed {settings['seed']}, starting weights "
        f"{INIT_HELP.get(settings.get('init', 'pytorch'), settings.get('init'))}."
    )
    st.plotly_chart(figures.training_curves(evolution.training_curves(run)), width="stretch", key="lab_curves")

    b1, b2 = st.columns([1, 1])
    if b1.button("Use this network in the sidebar", key="lab_use"):
        model_choice.choose_model(cache.RUN_PREFIX + run.name)
    with b2.popover("Delete this run"):
        st.write(f"Delete **{escape.markdown(run.name)}** and all its snapshots? This cannot be undone.")
        if st.button("Yes, delete it", type="primary", key="lab_delete"):
            runs.delete_run(run.path)
            model_choice.run_models.clear()
            st.session_state.pop(state.LAB_RUN, None)
            st.rerun()

    # -------------------------------------------------------------- evolution
    st.header("How the filters evolved")
    layer, history = cache.kernel_history(run_key, run)
    labels = [f"{s.label} · {s.metrics['test_accuracy']:.1%} test accuracy" for s in run.snapshots]
    st.caption(
        f"The {history.shape[1]} filters of the first layer, **{layer}**, at every snapshot. Press play, "
        "or drag the slider: red adds brightness, blue subtracts, the same colour scale throughout."
    )
    frames = history[:, :, 0] if history.shape[2] == 1 else history.transpose(0, 1, 3, 4, 2)
    if frames.ndim == 5:  # colour kernels: scale to [0, 1] with zero at grey
        frames = 0.5 + 0.5 * frames / max(float(abs(frames).max()), 1e-12)
    st.plotly_chart(figures.kernel_animation(frames, labels), width="stretch", key="lab_animation")

    changes = evolution.weight_change(history)
    if len(changes):
        moved = evolution.relative_change(history)
        likeness, smooth = evolution.likeness_to_start(history), evolution.smoothness(history)
        names = [s.label for s in run.snapshots]
        st.plotly_chart(figures.layer_change_chart(moved, likeness, smooth, names), width="stretch", key="lab_moved")
        st.caption(
            f"How far {layer} moved: {names[1]} changed its weights by {moved[0]:.0%} of their starting size, "
            f"{names[-1]} by {moved[-1]:.0%}. After {names[-1]} its kernels correlate {likeness[-1]:.2f} with their "
            f"random start (1 would mean unchanged), and neighbouring weights inside a kernel correlate "
            f"{smooth[-1]:.2f}, up from {smooth[0]:.2f} (random noise is near 0, smooth strokes near 1)."
        )
        st.plotly_chart(
            figures.weight_change_chart(
                changes,
                [f"{a.label}→{b.label}" for a, b in zip(run.snapshots, run.snapshots[1:])],
                highlight=view.channel if view.handle.key.startswith(cache.RUN_PREFIX) else None,
            ),
            width="stretch",
            key="lab_change",
        )
    else:
        st.info("This run was stopped before its first training step: only the untrained network was kept.")

    st.subheader("One test image through time")
    images, test_labels = run.test_samples()
    c1, c2 = st.columns([1, 3])
    with c1:
        image_index = st.selectbox(
            "Test image",
            list(range(len(images))),
            key="lab_image",
            format_func=lambda i: f"{i}: a {run.classes[int(test_labels[i])]}",
        )
        picture = images[image_index].permute(1, 2, 0).numpy()
        st.image(picture if picture.shape[2] == 3 else picture[:, :, 0], width=140, clamp=True)
        handle0 = run.handle(0)
        spatial = [info.name for info in handle0.layers.values() if info.is_spatial and info.type_name == "ReLU"]
        map_layer = st.selectbox("Layer", spatial or [layer], key="lab_map_layer")
    with c2:
        maps = cache.feature_map_history(run_key, int(image_index), map_layer, run)
        shown = maps[:, : min(32, maps.shape[1])]
        st.plotly_chart(figures.mosaic_animation(shown, labels, tile_px=64), width="stretch", key="lab_maps")
        st.caption(
            f"Feature maps of {map_layer} for this image at every snapshot, on one colour scale: press play. "
            "Untrained, they are blurry copies of the image; as the filters sharpen, each map picks out its "
            "own strokes or edges."
        )


PAGE = Page("training_lab", SETTINGS, draw=draw)

if __name__ == "__main__":
    show(PAGE)
