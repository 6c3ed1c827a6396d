"""Attribution and projection: agreement with Captum and pytorch-grad-cam, evidence, safety."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torchvision

import vis_core
from vis_core import ModelHandle, hook_count, state_dict_hash
from vis_core.attribution import METHODS, attribute, scale
from vis_core.metrics import deletion_insertion, faithfulness, sanity_check
from vis_core.projection import project, project_batch, receptive_field

from .conftest import ReusedReLUNet, make_handle, sequential_net

warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
warnings.filterwarnings("ignore", message=".*Setting backward hooks on ReLU.*")
PHOTOS = ["chelsea", "coffee"]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def grad_cam_reference(cls, handle: ModelHandle, layer: str, inputs: torch.Tensor, target: int) -> np.ndarray:
    """pytorch-grad-cam on a private copy (it calls .backward(), which fills .grad)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = copy.deepcopy(handle.model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    module = dict(model.named_modules())[layer]
    with cls(model=model, target_layers=[module]) as cam:
        return cam(input_tensor=inputs.clone(), targets=[ClassifierOutputTarget(target)])[0]


def same_upsampling(raw: np.ndarray, size: int = 224) -> np.ndarray:
    import cv2

    return scale(cv2.resize(np.maximum(raw, 0).astype(np.float32), (size, size)))


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize(
    "method, reference, layer",
    [
        ("gradcam", "GradCAM", "features.18"),
        ("gradcam++", "GradCAMPlusPlus", "features.18"),
        ("layercam", "LayerCAM", "features.14"),
        ("scorecam", "ScoreCAM", "features.14"),
    ],
)
def test_cam_family_agrees_with_pytorch_grad_cam(handle, photo, method, reference, layer):
    import pytorch_grad_cam

    image = vis_core.sample_image(photo)
    inputs = handle.preprocess(image)
    ours = attribute(handle, image, method, layer=layer)
    theirs = grad_cam_reference(getattr(pytorch_grad_cam, reference), handle, layer, inputs, ours.target)
    assert pearson(same_upsampling(ours.raw), theirs) >= 0.99
    assert pearson(ours.model_map, theirs) >= 0.98  # our own (torch) upsampling is close too


@pytest.mark.parametrize("photo", PHOTOS)
def test_gradcam_agrees_with_captum_layer_gradcam(handle, photo):
    from captum.attr import LayerAttribution, LayerGradCam

    image = vis_core.sample_image(photo)
    ours = attribute(handle, image, "gradcam", layer="features.14")
    model = copy.deepcopy(handle.model)
    inputs = handle.preprocess(image).requires_grad_(True)
    reference = LayerGradCam(model, model.features[14]).attribute(inputs, target=ours.target, relu_attributions=True)
    np.testing.assert_allclose(ours.raw, reference.detach()[0, 0].numpy(), rtol=1e-4, atol=1e-6)
    upsampled = LayerAttribution.interpolate(reference, (224, 224), "bilinear")[0, 0].detach().numpy()
    assert pearson(ours.model_map, upsampled) >= 0.99


@pytest.fixture(scope="module")
def resnet() -> ModelHandle:
    """A real ReLU architecture (random weights, no download): in-place ReLUs reused in every block."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    return ModelHandle(
        "resnet18-random",
        model,
        tuple(str(i) for i in range(10)),
        (64, 64),
        64,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        torch.device("cpu"),
        "random",
    )


@pytest.mark.parametrize("rule, reference", [("deconvnet", "NeuronDeconvolution"), ("guided", "NeuronGuidedBackprop")])
def test_projection_rules_agree_with_captum(resnet, rule, reference):
    import captum.attr

    image = vis_core.sample_image("astronaut")
    inputs = resnet.preprocess(image)
    activation = vis_core.feature_maps(resnet, image, ["layer2"]).activations["layer2"]
    for channel in (3, 17):
        position = tuple(int(v) for v in np.unravel_index(int(activation[channel].argmax()), activation[channel].shape))
        batch = project_batch(resnet, inputs, "layer2", [channel], rule, [position])
        gradients, note = batch.gradients, batch.note
        model = copy.deepcopy(resnet.model)
        theirs = getattr(captum.attr, reference)(model, model.layer2).attribute(
            inputs.clone(), neuron_selector=(channel, *position)
        )
        assert note is None
        assert pearson(gradients[0], theirs.detach()[0].numpy()) >= 0.99
    assert hook_count(resnet.model) == 0 and all(m.inplace for m in resnet.model.modules() if hasattr(m, "inplace"))


def test_projection_rules_differ_and_gradient_is_exact(resnet):
    image = vis_core.sample_image("rocket")
    inputs = resnet.preprocess(image)
    grads = {
        rule: project_batch(resnet, inputs, "layer3", [4], rule, [(1, 1)]).gradients[0]
        for rule in ("deconvnet", "guided", "gradient")
    }
    x = inputs.clone().requires_grad_(True)
    model = copy.deepcopy(resnet.model)
    features = {}
    model.layer3.register_forward_hook(lambda m, i, o: features.setdefault("out", o))
    model(x)
    (reference,) = torch.autograd.grad(features["out"][0, 4, 1, 1], x)
    np.testing.assert_allclose(grads["gradient"], reference[0].numpy(), rtol=1e-4, atol=1e-7)
    assert pearson(grads["deconvnet"], grads["guided"]) < 0.99 and pearson(grads["guided"], grads["gradient"]) < 0.99


def test_effective_box_keeps_the_central_mass():
    from vis_core.projection import effective_box

    gradient = np.zeros((3, 50, 40))
    gradient[:, 10:20, 5:15] = 1.0  # all the weight in one block
    assert effective_box(gradient) == (10, 5, 20, 15)
    gradient[0, 45, 35] = 1e-4  # a speck far away is trimmed, not stretched to
    assert effective_box(gradient) == (10, 5, 20, 15)
    gradient[:, 30:40, 25:35] = 1.0  # two equal blocks: the box spans both
    assert effective_box(gradient) == (10, 5, 40, 35)
    assert effective_box(gradient, within=(0, 0, 25, 20)) == (10, 5, 20, 15)
    assert effective_box(np.zeros((3, 8, 8))) is None


def test_project_on_default_model(handle, cat):
    result = project(handle, cat, layer="features.10", channel=5, method="guided", position="max")
    assert result.map.shape == (cat.height, cat.width) and result.model_map.shape == (224, 224)
    assert result.rgb.shape == (224, 224, 3) and result.rgb.min() >= 0 and result.rgb.max() <= 1
    top, left, bottom, right = result.box
    support = np.argwhere(result.model_map > 0)
    assert support[:, 0].min() >= top and support[:, 0].max() < bottom
    assert support[:, 1].min() >= left and support[:, 1].max() < right
    maps = vis_core.feature_maps(handle, cat, ["features.10"]).channel("features.10", 5)
    assert result.activation == pytest.approx(float(maps.max()), rel=1e-4)
    assert result.position == tuple(int(v) for v in np.unravel_index(int(np.argmax(maps)), maps.shape))
    f_top, f_left, f_bottom, f_right = result.focus
    assert top <= f_top < f_bottom <= bottom and left <= f_left < f_right <= right
    assert (f_bottom - f_top) * (f_right - f_left) < 0.6 * (bottom - top) * (right - left)  # tighter than the field
    weight = result.model_map  # max over colours; the box was cut on the sum: compare shares loosely
    assert weight[f_top:f_bottom, f_left:f_right].sum() >= 0.9 * weight.sum()
    with pytest.raises(vis_core.ParameterError, match=r"outside features\.10's 14x14 map"):
        project(handle, cat, layer="features.10", channel=5, position=(14, 0))
    whole = project(handle, cat, layer="features.10", channel=5, method="gradient")
    assert (
        whole.position is None and whole.box is None and whole.activation == pytest.approx(float(maps.sum()), rel=1e-3)
    )


def test_receptive_fields_grow_with_depth(handle):
    assert receptive_field(handle, "features.0", 0, 0) == (0, 0, 2, 2)  # 3x3 conv, stride 2, padding 1
    assert receptive_field(handle, "features.0", 10, 10) == (19, 19, 22, 22)
    sizes = [receptive_field(handle, layer, 3, 3) for layer in ("features.1", "features.3", "features.6")]
    spans = [bottom - top for top, _, bottom, _ in sizes]
    assert spans == sorted(spans) and spans[0] < spans[-1]


def _state(model):
    return (
        hook_count(model),
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad is None for p in model.parameters()],
        [getattr(m, "inplace", None) for m in model.modules()],
    )


@pytest.mark.parametrize("method", [m for m in METHODS if m != "cam"])
def test_every_method_on_tricky_models(tiny, method):
    image = vis_core.sample_image("coffee")
    before, before_hash = _state(tiny.model), state_dict_hash(tiny.model)
    options = {"samples": 4} if method == "smoothgrad" else {"steps": 8} if method == "integrated_gradients" else {}
    result = attribute(tiny, image, method, target=1, **options)
    assert result.map.shape == (image.height, image.width) and np.isfinite(result.map).all()
    assert result.model_map.shape == tiny.input_size
    assert _state(tiny.model) == before and state_dict_hash(tiny.model) == before_hash
    assert np.abs(result.model_map).max() > 0 or result.note


def test_cam_needs_global_pooling_and_matches_definition():
    no_pooling = make_handle(ReusedReLUNet(3, 32))
    with pytest.raises(vis_core.ParameterError, match="global average pooling"):
        attribute(no_pooling, vis_core.sample_image("coffee"), "cam")
    pooled = make_handle(sequential_net(3), size=48, classes=5)
    image = vis_core.sample_image("coffee")
    result = attribute(pooled, image, "cam", target=2)
    with torch.no_grad():
        features = pooled.model[:5](pooled.preprocess(image))[0]
        manual = torch.einsum("k,khw->hw", pooled.model[7].weight[2], features).numpy()
    np.testing.assert_allclose(result.raw, manual, rtol=1e-5, atol=1e-6)


def test_empty_map_gets_an_explanation():
    handle = make_handle(sequential_net(3), size=48, classes=5)
    with torch.no_grad():
        handle.model[7].weight[1] = -handle.model[7].weight[1].abs() - 0.01  # every feature argues against class 1
    result = attribute(handle, vis_core.sample_image("coffee"), "gradcam", target=1)
    assert float(result.model_map.max()) == 0 and np.isfinite(result.map).all()
    assert "zero everywhere" in result.note

    assert result.cells.shape == result.raw.shape and float(result.cells.max()) == 0  # the coarse map agrees


@pytest.mark.parametrize("method", ["gradcam", "layercam", "saliency"])
def test_cells_are_the_map_at_the_resolution_it_was_computed(handle, cat, method):
    from vis_core.attribution.registry import upsample

    result = attribute(handle, cat, method)
    if METHODS[method].cam_style:  # the layer's grid; upsampled as the engine does, it is model_map
        assert result.cells.shape == result.raw.shape == (7, 7)
        assert result.cells.min() == 0 and result.cells.max() == pytest.approx(1, abs=1e-6)
        smooth = upsample(result.cells, result.model_map.shape)
        assert np.abs(smooth - result.model_map).max() < 0.05 and pearson(smooth, result.model_map) > 0.999
    else:  # a pixel-level map is its own cells
        assert result.cells is result.model_map


def test_targets_by_name_and_errors(handle, cat):
    assert attribute(handle, cat, "gradcam", target="tabby").target == 281
    assert attribute(handle, cat, "gradcam").target == 285  # the top prediction
    with pytest.raises(vis_core.ParameterError, match="No class named"):
        attribute(handle, cat, "gradcam", target="unicorn")
    with pytest.raises(vis_core.ParameterError, match="out of range"):
        attribute(handle, cat, "saliency", target=1000)
    with pytest.raises(vis_core.ParameterError, match="Unknown method"):
        attribute(handle, cat, "lime")
    with pytest.raises(vis_core.ParameterError, match="no spatial map"):
        attribute(handle, cat, "gradcam", layer="classifier.1")


def test_map_is_placed_on_the_image(handle):
    from PIL import Image

    wide = Image.new("RGB", (400, 200))
    left, top, right, bottom = handle.crop_box(wide.size)
    # resize the short side 200 -> 256 (scale 1.28), centre-crop 224: 175 original pixels each way
    assert (top, bottom) == (12.5, 187.5) and (left, right) == (112.5, 287.5)
    placed = handle.to_image_space(np.ones((224, 224), dtype=np.float32), wide.size)
    assert placed[:, :112].max() == 0 and placed[:, 289:].max() == 0 and placed[:12].max() == 0
    assert placed[13:187, 113:287].min() == pytest.approx(1.0)


def test_faithfulness_prefers_a_real_map(handle, cat):
    inputs = handle.preprocess(cat)
    gradcam = attribute(handle, cat, "gradcam")
    good = deletion_insertion(handle, inputs, gradcam.model_map, gradcam.target, steps=16)
    inverted = deletion_insertion(handle, inputs, -gradcam.model_map, gradcam.target, steps=16)  # least salient first
    assert good.fractions.shape == good.deletion.shape == good.insertion.shape == (17,)
    assert good.deletion[0] == pytest.approx(good.insertion[-1], rel=1e-4)  # both are the untouched image
    assert good.insertion_auc > inverted.insertion_auc + 0.1 and good.deletion_auc < inverted.deletion_auc - 0.1
    results = faithfulness(handle, cat, ["gradcam", "saliency"], steps=8)
    assert [r.method for r in results.curves] == ["gradcam", "saliency"] and results.random.method == "random"


def test_sanity_check_reproduces_the_published_ordering(handle, cat):
    check = sanity_check(handle, cat, ["saliency", "gradcam", "guided_backprop"], max_steps=6)
    assert check.steps[0] == "" and check.steps[1] == "classifier.1" and len(check.steps) == 7
    early = {m: float(np.mean(v[1:])) for m, v in check.spearman.items()}
    assert early["guided_backprop"] > 0.8  # barely changes: it does not explain the model
    assert early["saliency"] < 0.5 and early["gradcam"] < 0.5
    assert state_dict_hash(handle.model) == handle.state_hash  # only the private copy was randomised


def test_one_channel_32px_model_projection():
    handle = make_handle(ReusedReLUNet(1, 32), size=32, grayscale=True)
    result = project(
        handle, vis_core.sample_image("camera"), layer="conv2", channel=3, method="deconvnet", position="max"
    )
    assert result.rgb.shape == (32, 32, 1) or result.rgb.shape == (32, 32, 3) or result.rgb.shape[:2] == (32, 32)
    assert result.box is not None and hook_count(handle.model) == 0


@pytest.mark.parametrize("method", [name for name, spec in vis_core.METHODS.items() if spec.finds_top])
def test_the_top_class_is_found_in_the_same_forward_pass(handle, cat, method):
    """Explaining the top prediction (no target) costs no extra forward pass, and explains it."""
    top = vis_core.predict(handle, cat).indices[0]
    calls = []
    hook = handle.model.register_forward_hook(lambda module, inputs, output: calls.append(output.shape[0]))
    try:
        untargeted = vis_core.attribute(handle, cat, method)
        forwards = len(calls)
        calls.clear()
        targeted = vis_core.attribute(handle, cat, method, target=top)
    finally:
        hook.remove()
    assert untargeted.target == targeted.target == 285  # Egyptian cat
    assert forwards == len(calls)  # no forward pass beyond what the targeted call makes
    np.testing.assert_allclose(untargeted.map, targeted.map, rtol=1e-5, atol=1e-6)
