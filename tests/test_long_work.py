"""Long work never blocks short work: while a render, dream, reconstruction or slow attribution
holds its model, a viewer's feature maps and prediction on the same handle still go through.

Each long job is paused mid-run (its progress callback waits), so the check is about locks, not
speed: before the long-work twin, the quick call waited for the whole job.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vis_core
from vis_core import models
from vis_core.optim import Stopped

PAUSED_JOBS = {
    "feature visualisation": lambda handle, image, on_step: vis_core.feature_visualization(
        handle, layer="features.10", channel=5, steps=4, size=64, on_step=on_step
    ),
    "deep dream": lambda handle, image, on_step: vis_core.deep_dream(
        handle, image, layer="features.7", octaves=1, steps=3, on_step=on_step
    ),
    "reconstruction": lambda handle, image, on_step: vis_core.reconstruct(
        handle, image, layer="features.4", steps=3, on_step=on_step
    ),
    "score-cam": lambda handle, image, on_step: vis_core.attribute(
        handle, image, "scorecam", target=285, progress=lambda done, total: on_step(done, total, None)
    ),
}


@pytest.mark.parametrize("job", list(PAUSED_JOBS))
def test_quick_requests_go_through_while_long_work_runs(handle, cat, job):
    reference = vis_core.feature_maps(handle, cat, ["features.10"]).activations["features.10"]
    paused, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def on_step(step, total, preview) -> None:
        paused.set()
        release.wait(120)

    def long_job() -> None:
        try:
            PAUSED_JOBS[job](handle, cat, on_step)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    worker = threading.Thread(target=long_job)
    worker.start()
    try:
        assert paused.wait(120), "the long job never reached its first step"
        answered: dict = {}

        def quick() -> None:
            answered["maps"] = vis_core.feature_maps(handle, cat, ["features.10"]).activations["features.10"]
            answered["prediction"] = vis_core.predict(handle, cat)

        asker = threading.Thread(target=quick)
        asker.start()
        asker.join(60)  # a deadlock detector, not a stopwatch: it answers in well under a second
        assert not asker.is_alive(), f"feature maps waited for the {job}"
    finally:
        release.set()
        worker.join(300)
    assert not failures, failures
    np.testing.assert_array_equal(answered["maps"], reference)
    assert answered["prediction"].labels[0] == "Egyptian cat"
    for model in (handle.model, handle.for_long_work().model):  # the guard's promises, on both copies
        assert vis_core.hook_count(model) == 0
        assert all(p.grad is None and not p.requires_grad for p in model.parameters())
        assert vis_core.state_dict_hash(model) == handle.state_hash


def test_the_twin_gives_the_same_results(handle, cat):
    twin = handle.for_long_work()
    assert twin is twin.for_long_work() is handle.for_long_work() and twin.model is not handle.model
    assert twin.key == handle.key
    np.testing.assert_array_equal(
        vis_core.feature_maps(twin, cat, ["features.14"]).activations["features.14"],
        vis_core.feature_maps(handle, cat, ["features.14"]).activations["features.14"],
    )
    direct = vis_core.attribute(handle, cat, "gradcam").map
    assert vis_core.attribute(twin, cat, "gradcam").map.tolist() == direct.tolist()


def test_long_work_makes_way_for_a_click(handle, monkeypatch):
    """While a click runs on the shared handle, the twin's next step waits (sharing two cores made
    the click twice as slow); when it ends, the long work goes on; a stream of clicks cannot
    starve it (the wait is bounded)."""
    monkeypatch.setattr(models, "MAKE_WAY_SECONDS", 120.0)
    twin = handle.for_long_work()
    assert handle.make_way() == 0.0  # only long work makes way
    inside, leave = threading.Event(), threading.Event()

    def click() -> None:
        with handle.guard():
            inside.set()
            leave.wait(120)

    clicker = threading.Thread(target=click)
    clicker.start()
    assert inside.wait(60)
    entered = threading.Event()

    def long_step() -> None:
        with twin.guard():  # a Score-CAM batch, say: the twin's guard makes way first
            entered.set()

    stepper = threading.Thread(target=long_step)
    stepper.start()
    try:
        assert not entered.wait(1.0), "the long work's step ran while a click was being served"
    finally:
        leave.set()
        clicker.join(60)
    assert entered.wait(60), "the long work never went on after the click"
    stepper.join(60)

    monkeypatch.setattr(models, "MAKE_WAY_SECONDS", 0.2)  # bounded: a click that never ends cannot stop it
    inside.clear(), leave.clear()
    clicker = threading.Thread(target=click)
    clicker.start()
    try:
        assert inside.wait(60)
        waited = twin.make_way()
        assert 0.15 <= waited < 60
    finally:
        leave.set()
        clicker.join(60)


def test_a_job_nobody_watches_stops_within_one_batch(monkeypatch, tmp_path):
    """#24: a build whose session lost its browser (the tab closed) stops after the batch it is on,
    keeping what it finished; while the session is connected, the job runs on."""
    from dashboard.work import jobs

    monkeypatch.setattr(jobs, "ORPHAN_SECONDS", 0.3)
    watching = threading.Event()
    watching.set()
    batches: list[int] = []

    def work(job: jobs.Job) -> int:
        while not job.should_stop():
            batches.append(len(batches))
            threading.Event().wait(0.05)  # one batch
        return len(batches)

    job = jobs.Job("features.10", work, alive=watching.is_set)
    job.start()
    assert not job.wait(0.8) and job.running  # watched: longer than the grace, still running
    watching.clear()  # the tab is gone
    assert job.wait(5.0) and job.orphaned and job.error is None
    done = len(batches)
    assert job.result == done and done >= 10

    handle = vis_core.load_model()
    gone = jobs.Job("build", lambda job: None, alive=lambda: False)  # a real build, nobody watching
    monkeypatch.setattr(jobs, "ORPHAN_SECONDS", 0.0)
    gone.should_stop()  # the first look notes when the browser went
    with pytest.raises(Stopped):  # the engine's build stops at its next look, as for the Stop button
        vis_core.build_atlas(
            handle, layers=["features.1"], images="sample", out=tmp_path / "atlas", steps=4, size=32, top_k=2,
            should_stop=gone.should_stop,
        )  # fmt: skip
    assert gone.orphaned


def test_outside_a_server_a_job_has_no_session_to_watch():
    from dashboard.work import jobs

    assert jobs.session_alive() is None
    job = jobs.Job("x", lambda job: job.should_stop())
    job.start()
    assert job.wait(5.0) and job.result is False
