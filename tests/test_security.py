"""The client is not trusted, and sizes lie: each case here broke once.

A crafted client can send any string for a widget, a link carries any text, a small file can
declare gigabytes and a run can fill the disk. Each test names the attack and shows that it
is refused with a clear message while everything else keeps working.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest

import vis_core
from dashboard.state import CHANNEL, LAB_RUN, MODEL_NAME
from tests.support.apptest import APP, TIMEOUT, start
from vis_core import ModelError, ParameterError, custom, disk_budget
from vis_core import runs as lab_runs
from vis_core import training as lab

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("clear_caches")


def spoof(at: AppTest, label: str, value: str) -> AppTest:
    """Rerun as a crafted client would: the widget ``label`` sends ``value``, whatever its options."""
    (widget,) = [box for box in at.selectbox if box.label == label]
    states = WidgetStates()
    for state in at._tree.get_widget_states().widgets:
        if state.id != widget.id:
            states.widgets.append(state)
    forged = states.widgets.add()
    forged.id = widget.id
    forged.string_value = value
    at._run(states)
    return at


def messages(at: AppTest) -> str:
    return " ".join(str(element.value) for kind in ("error", "warning", "toast") for element in at.get(kind))


# ------------------------------------------------------------------ 1. code by name
def test_a_spoofed_model_widget_imports_nothing(tmp_path, monkeypatch):
    canary = tmp_path / "canary.txt"
    monkeypatch.setenv("VIS_CORE_TEST_CANARY", str(canary))
    monkeypatch.delenv("VIS_CORE_MODEL", raising=False)
    sys.modules.pop("tests.canary_factory", None)
    at = start()
    spoof(at, "Model", "tests.canary_factory:build")
    assert not at.exception, at.exception
    assert "tests.canary_factory" not in sys.modules and not canary.exists()
    assert "not one of the models offered here" in messages(at)
    assert at.session_state[MODEL_NAME] == vis_core.DEFAULT_MODEL  # the viewer keeps the model they had
    other = start("views/overview.py")  # the server still serves everyone else
    specs = json.dumps([chart.proto.spec for chart in other.get("plotly_chart")])
    assert other.title[0].value == "Photo and guesses" and "Egyptian cat" in specs


def test_no_name_reaches_an_import(tmp_path, monkeypatch):
    """The root: a model name never imports code; the allow-list refuses before loading."""
    from dashboard.data import cache

    canary = tmp_path / "canary.txt"
    monkeypatch.setenv("VIS_CORE_TEST_CANARY", str(canary))
    monkeypatch.delenv("VIS_CORE_MODEL", raising=False)
    sys.modules.pop("tests.canary_factory", None)
    for name in ("tests.canary_factory:build", "os:abort", "run:../../etc", "run:x\n", "resnet18 "):
        with pytest.raises(ModelError):
            cache.model(name)
    with pytest.raises(ModelError, match="not a model name"):
        vis_core.load_model("tests.canary_factory:build")
    assert "tests.canary_factory" not in sys.modules and not canary.exists()
    monkeypatch.setenv("VIS_CORE_MODEL", "tests.canary_factory:build")  # named by who started the server
    assert cache.offered("tests.canary_factory:build") and cache.model("tests.canary_factory:build").labels
    assert canary.read_text() == "called"


def test_the_cli_reports_bad_factories_on_one_line(capsys, tmp_path):
    import subprocess

    from vis_core.cli import main

    for spec, reason in (("os:system", "TypeError"), ("os:getcwd", "must return")):
        assert main(["predict", "--model", spec]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and reason in err, err[:500]
    # A factory that re-enters the CLI reads the same command line: run it as a user would.
    command = [sys.executable, "-m", "vis_core", "predict", "--model", "vis_core.cli:main"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "RecursionError" in done.stderr, done.stderr[:500]
    existing = tmp_path / "a-file"
    existing.write_text("x")
    assert main(["train", "--epochs", "1", "--out", str(existing)]) == 2
    assert "not a folder" in capsys.readouterr().err


# ------------------------------------------------------------- 2. own models keyed
def test_own_models_with_other_labels_or_size_never_share_a_cache(tmp_path):
    from dashboard.data import cache

    torch.manual_seed(0)
    path = tmp_path / "mine.pt"
    torch.save(torchvision.models.squeezenet1_1(weights=None, num_classes=3).state_dict(), path)
    first = vis_core.load_model("squeezenet1_1", weights=path, labels=["ant", "bee", "cow"])
    second = vis_core.load_model("squeezenet1_1", weights=path, labels=["dog", "eel", "fox"], input_size=96)
    assert first.weights == second.weights and first.key != second.key
    image = vis_core.sample_image("chelsea")
    for handle, labels, size in ((first, {"ant", "bee", "cow"}, 224), (second, {"dog", "eel", "fox"}, 96)):
        assert set(cache.prediction(handle.key, "sample:chelsea", handle, image, 3).labels) == labels
        assert cache.model_view(handle.key, "sample:chelsea", handle, image).shape[:2] == (size, size)


def test_a_session_keeps_a_bounded_number_of_own_models():
    def script():
        import streamlit as st

        from dashboard.sidebar import own_weights

        for index in range(5):
            own_weights._keep_own(f"own:model {index}", object())
        st.write(" ".join(own_weights.own_models()))

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    from dashboard.sidebar.own_weights import MAX_OWN_MODELS

    assert at.markdown[0].value.split("own:model ")[1:] == [f"{i} " for i in range(5 - MAX_OWN_MODELS, 4)] + ["4"]


def test_uploaded_files_leave_nothing_on_disk(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(torchvision.models.squeezenet1_1(weights=None, num_classes=2).state_dict(), buffer)

    def script(weights_bytes: bytes):
        import contextlib

        import streamlit as st

        from dashboard.sidebar import own_weights

        class Upload:
            def __init__(self, name, data):
                self.name, self._data = name, data

            def getvalue(self):
                return self._data

        with contextlib.suppress(st.runtime.scriptrunner_utils.exceptions.RerunException):  # st.rerun() on success
            own_weights._load_own("squeezenet1_1", Upload("w.pt", weights_bytes), Upload("n.txt", b"yes\nno"), 64)
        st.write(" ".join(own_weights.own_models()))

    at = AppTest.from_function(script, args=(buffer.getvalue(),), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 3. markup
def test_user_text_is_shown_as_text():
    from markdown_it import MarkdownIt

    from dashboard.words import escape

    attacks = [
        "[Session expired - log in](https://evil.example/login)",
        "![x](http://evil.example/pixel.png)",
        '<a href="https://evil.example">cat</a>',
        ":red[alarm] :material/warning: $x^2$ **bold** `code` # heading",
        "<https://evil.example> www.evil.example",
    ]
    render = MarkdownIt("commonmark").render
    for text in attacks:
        html = render(escape.markdown(text))
        assert "<a" not in html and "<img" not in html and "<strong" not in html and "<code" not in html, html
        assert html.count("\\") == 0  # every backslash was an escape, invisible once rendered
        assert "<" not in escape.plotly(text) and ">" not in escape.plotly(text)


def test_a_link_value_is_not_markup():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["model"] = "[Session expired - log in](https://evil.example)"
    at.query_params["image"] = "![x](http://evil.example/pixel.png)"
    at.query_params["filter"] = "²"  # '²'.isdigit() is True and int('²') raises
    at.run()
    assert not at.exception, at.exception
    toasts = [toast.value for toast in at.toast]
    assert len(toasts) == 3, toasts
    assert all("](" not in toast.replace("\\]\\(", "") for toast in toasts), toasts
    assert any("\\[Session expired" in toast for toast in toasts)
    plain = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # the link's filter was ignored:
    assert at.session_state[CHANNEL] == plain.session_state[CHANNEL]  # the usual first filter


def test_class_names_are_not_plotly_markup():
    from dashboard import figures

    names = ('<a href="https://evil.example">cat</a>', "<b>dog</b>")
    prediction = vis_core.Prediction((0, 1), names, (0.6, 0.4))
    bars = figures.prediction_bars(prediction).to_plotly_json()
    assert not any("<a" in label or "<b>" in label for label in bars["data"][0]["y"])
    assert "&lt;a href" in bars["data"][0]["y"][-1]


# --------------------------------------------------------------- 4. sizes that lie
@pytest.fixture(scope="module")
def squeeze_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.squeezenet1_1(weights=None, num_classes=4).state_dict()


def test_a_stride_zero_classifier_is_refused(tmp_path, squeeze_state):
    state = dict(squeeze_state)
    state["classifier.1.weight"] = torch.zeros(1).expand(200_000, 512, 1, 1)  # 400 MB declared, 4 bytes stored
    state["classifier.1.bias"] = torch.zeros(1).expand(200_000)
    path = tmp_path / "tiny.pt"
    torch.save(state, path)
    assert path.stat().st_size < 10 * 2**20
    with pytest.raises(ModelError, match="stride-0"):
        vis_core.load_model("squeezenet1_1", weights=path)


def test_a_compressed_archive_that_unpacks_to_gigabytes_is_refused(tmp_path, squeeze_state):
    plain, packed = tmp_path / "plain.pt", tmp_path / "packed.pt"
    torch.save({**squeeze_state, "padding": torch.zeros(16 * 2**20)}, plain)  # 64 MB of zeros
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry.filename))
    assert packed.stat().st_size < 8 * 2**20 < custom.weights_budget("squeezenet1_1")
    with pytest.raises(ModelError, match="unpacks to"):
        vis_core.load_model("squeezenet1_1", weights=packed)


def test_a_classifier_past_the_class_cap_is_refused_before_it_is_built(squeeze_state):
    state = dict(squeeze_state)
    state["classifier.1.weight"] = torch.zeros(custom.MAX_CLASSES + 1, 512, 1, 1)
    state["classifier.1.bias"] = torch.zeros(custom.MAX_CLASSES + 1)
    with pytest.raises(ModelError, match="22,000 classes"):
        custom.build_from_weights("squeezenet1_1", state)


@pytest.mark.parametrize(
    "weight, reason",
    [(torch.tensor(1.0), "needs between 1"), (torch.zeros(0, 512, 1, 1), "needs between 1")],
    ids=["0-dim", "0-class"],
)
def test_degenerate_classifiers_are_refused(squeeze_state, weight, reason):
    state = dict(squeeze_state, **{"classifier.1.weight": weight})
    with pytest.raises(ModelError, match=reason):
        custom.build_from_weights("squeezenet1_1", state)


@pytest.mark.parametrize(
    "text",
    ['{"a": "cat"}', "42", "null", "[" * 100_000 + "]" * 100_000, '[["cat"], ["dog"]]', '"cat"'],
    ids=["object-without-numbers", "number", "null", "deep", "nested", "string"],
)
def test_bad_class_name_files_are_clear_errors(tmp_path, text):
    path = tmp_path / "names.json"
    path.write_text(text)
    with pytest.raises(ModelError):
        custom.read_labels(path, 2)


def test_labels_given_as_a_string_are_a_path_not_characters():
    with pytest.raises(ModelError, match="no class names file"):
        custom.read_labels("ab", 2)
    assert custom.read_labels(["a", "b"], 2) == ("a", "b")


def test_nan_weights_are_explained(monkeypatch):
    monkeypatch.setenv("VIS_CORE_MODEL", "tests.factories:nan_weights")
    handle = vis_core.load_factory("tests.factories:nan_weights")
    assert not vis_core.predict(handle, vis_core.sample_image("chelsea")).is_finite
    start()  # the tour, on such a model, draws without an exception
    at = start("views/overview.py")
    assert at.session_state[MODEL_NAME] == "tests.factories:nan_weights"
    assert "not numbers" in " ".join(w.value for w in at.warning)
    assert "nan%" not in " ".join(c.value for c in at.caption)


# ------------------------------------------------------------------ 5. the disk
def test_a_run_past_the_caps_is_refused_before_it_writes(tmp_path):
    estimate = disk_budget.estimate_for("digits", "notebook", epochs=20, batch_size=16, snapshot_every=1)
    assert estimate.snapshots == 1 + 20 * 90 and estimate.bytes > 20 * 2**30  # the 22 GiB
    with pytest.raises(ParameterError, match="MAX_SNAPSHOTS"):
        lab.train("digits", "notebook", epochs=20, batch_size=16, snapshot_every=1, out=tmp_path / "huge")
    assert not (tmp_path / "huge").exists()


def test_the_estimate_matches_what_a_run_writes(tmp_path):
    run = lab.train("digits", "tinyvgg", epochs=2, batch_size=64, snapshot_every=10, out=tmp_path / "small")
    estimate = disk_budget.estimate_for("digits", "tinyvgg", epochs=2, batch_size=64, snapshot_every=10)
    assert estimate.snapshots == len(run.snapshots)
    assert abs(estimate.bytes - disk_budget.folder_bytes(run.path)) < 0.1 * disk_budget.folder_bytes(run.path)


def test_the_runs_folder_has_a_total_cap(tmp_path, monkeypatch):
    lab.train("digits", "tinyvgg", epochs=1, out=tmp_path / "first")
    monkeypatch.setattr(disk_budget, "MAX_RUNS_BYTES", disk_budget.folder_bytes(tmp_path) + 1000)
    with pytest.raises(ParameterError, match="MAX_RUNS_BYTES"):
        lab.train("digits", "tinyvgg", epochs=1, out=tmp_path / "second")


def test_the_dataset_table_matches_the_data():
    from vis_core.datasets import DATASET_SHAPES, load_dataset

    for name in ("digits", "shapes"):
        data = load_dataset(name, seed=3)
        assert DATASET_SHAPES[name] == (len(data.train_y), data.channels, data.size, len(data.classes))


def test_two_trainings_with_one_name_never_share_a_folder(tmp_path):
    for trial in range(20):
        folder, barrier, outcomes = tmp_path / f"same-{trial}", threading.Barrier(2), []

        def claim(folder=folder, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                lab_runs.claim_folder(folder)
                outcomes.append("claimed")
            except ParameterError:
                outcomes.append("refused")

        threads = [threading.Thread(target=claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["claimed", "refused"]


def test_run_names_are_whole_matches():
    for bad in ("abc\n", "a/b", "../x", "", ".hidden", "x" * 65):
        with pytest.raises(ParameterError):
            lab_runs.check_run_name(bad)
    assert lab_runs.check_run_name("digits-first_try.2") == "digits-first_try.2"


# ------------------------------------------------------------ 6. a damaged record
@pytest.fixture
def runs_with_a_damaged_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VIS_CORE_RUNS", str(tmp_path))
    lab.train("digits", "tinyvgg", epochs=1, out=tmp_path / "good")
    lab.train("digits", "tinyvgg", epochs=1, out=tmp_path / "bad")
    settings = json.loads((tmp_path / "bad" / "run.json").read_text())
    (tmp_path / "bad" / "run.json").write_text(json.dumps({**settings, "created": "yesterday"}))
    return tmp_path


def test_a_damaged_run_is_listed_with_its_reason(runs_with_a_damaged_one):
    runs, problems = lab_runs.list_runs()
    assert [run.name for run in runs] == ["good"]
    assert "created" in problems["bad"]


def test_a_damaged_run_breaks_no_page(runs_with_a_damaged_one):
    overview = start()
    assert any(option.startswith("good") for option in overview.sidebar.selectbox[0].options)
    lab_page = start("views/training_lab.py")
    assert "damaged" in " ".join(w.value for w in lab_page.warning)
    assert lab_page.session_state[LAB_RUN] == "good"


# ------------------------------------------------------------- upload limits agree
def test_the_server_upload_limit_is_the_largest_widget_limit():
    import tomllib

    from dashboard import shell
    from dashboard.sidebar import own_weights

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == max(shell.UPLOAD_LIMITS_MB.values()) == own_weights.MAX_WEIGHTS_MB
    assert own_weights.MAX_WEIGHTS_MB * 2**20 > 14 * 2**20  # MobileNetV2's own checkpoint fits
    source = "".join(path.read_text() for path in sorted((ROOT / "dashboard").rglob("*.py")))
    assert source.count("st.file_uploader(") == source.count("max_upload_size=") == len(shell.UPLOAD_LIMITS_MB) == 4
    assert np.isclose(vis_core.MAX_BYTES / 2**20, 40)  # the engine's own cap on an image stays above the widget's
