"""cnnkit explain on a Fashion-MNIST model: the hand-worked value, Grad-CAM, the pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

from cnnkit.cli import main
from cnnkit.data.dataset import load_dataset
from cnnkit.explain.gradcam import grad_cam
from cnnkit.explain.handwork import work_conv_value
from cnnkit.explain.pictures import GAP
from cnnkit.explain.report import explain, explain_model, normalize
from cnnkit.models.bundle import BundleMeta, load_bundle, save_bundle
from cnnkit.models.registry import create_model

_CACHE: dict[str, object] = {}


@pytest.fixture
def fashion_bundle(fashion_available, tmp_path_factory):
    """simple-cnn trained for 10 steps on 320 real Fashion-MNIST images, saved as a bundle,
    and one real test image as a PNG (built once per module)."""
    if "bundle" not in _CACHE:
        data = load_dataset("fashion-mnist", limit=320, seed=0)
        torch.manual_seed(0)
        model = create_model("simple-cnn", input_shape=data.input_shape, num_classes=data.num_classes)
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        x = (data.train.images.float() / 255 - mean) / std
        y = data.train.labels
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
        model.train()
        for step in range(10):  # a few steps: the checks below hold for any weights
            idx = torch.arange(step * 32, step * 32 + 32) % len(y)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        folder = tmp_path_factory.mktemp("fashion") / "bundle"
        meta = BundleMeta(model.cnnkit_arch, list(data.input_shape), list(data.class_names), list(data.mean),
                          list(data.std), {"dataset": "fashion-mnist"})
        save_bundle(model, folder, meta)
        image = folder.parent / "test0.png"
        Image.fromarray(data.test.images[0, 0].numpy(), mode="L").save(image)
        _CACHE["bundle"], _CACHE["image"] = folder, image
    return _CACHE["bundle"], _CACHE["image"]


@pytest.fixture
def explained(fashion_bundle, tmp_path_factory):
    if "explained" not in _CACHE:
        bundle, image = fashion_bundle
        _CACHE["explained"] = explain_model(bundle, image, out=tmp_path_factory.mktemp("explain"))
    return _CACHE["explained"]


def test_hand_worked_value_equals_the_first_convolution(fashion_bundle, explained):
    bundle, image = fashion_bundle
    model, meta = load_bundle(bundle)
    w = explained.worked
    # The model's own first-conv output, computed here without hooks.
    from cnnkit.data.images import load_image

    x = normalize(load_image(image, 1, (28, 28))[None], meta)
    conv = model.layers.conv1
    with torch.no_grad():
        out = conv(x)
    assert abs(w.value - float(out[0, w.filter, w.row, w.col])) <= 1e-5
    assert explained.worked_difference <= 1e-5
    assert len(w.terms) == 1 * 3 * 3
    # value = sum of pixel x weight + bias, with the pixels of the normalised input and conv1's weights
    assert w.value == pytest.approx(sum(t.pixel * t.weight for t in w.terms) + float(conv.bias[w.filter].detach()))
    for t in w.terms:
        inside = 0 <= t.row < 28 and 0 <= t.col < 28
        assert t.pixel == pytest.approx(float(x[0, 0, t.row, t.col]) if inside else 0.0, abs=1e-6)
    # and the window moved by the stride gives the next value
    n = explained.worked_next
    assert n.left == w.left + conv.stride[1]
    assert abs(n.value - float(out[0, n.filter, n.row, n.col])) <= 1e-5
    text = (explained.out_dir / "explain.md").read_text()
    assert "agrees within 1e-5" in text and "| layers.conv2 | Conv2d | 64 x 14 x 14 |" in text
    record = json.loads((explained.out_dir / "explain.json").read_text())
    assert record["worked"]["by_hand"] == pytest.approx(w.value) and len(record["worked"]["terms"]) == 9
    assert record["feature_maps"]["layers.conv2"]["panels"] == 64 and len(record["gradcam"]["map"]) == 14


def _independent_cam(model: nn.Module, x: torch.Tensor, split: int, class_index: int) -> torch.Tensor:
    """Grad-CAM without hooks: run the Sequential in two halves and differentiate the second."""
    layers = list(model.layers)
    with torch.no_grad():
        a = x
        for layer in layers[: split + 1]:
            a = layer(a)
    a = a.clone().requires_grad_(True)
    h = a
    for layer in layers[split + 1 :]:
        h = layer(h)
    (g,) = torch.autograd.grad(h[0, class_index], a)
    return torch.relu((g[0].mean((1, 2))[:, None, None] * a[0]).sum(0)).detach()


def test_grad_cam_equals_an_independent_computation(fashion_bundle, explained):
    bundle, image = fashion_bundle
    model, meta = load_bundle(bundle)
    from cnnkit.data.images import load_image

    x = normalize(load_image(image, 1, (28, 28))[None], meta)
    split = list(model.layers._modules).index("conv2")
    cam = explained.gradcam
    assert cam.layer == "layers.conv2"  # the last Conv2d, found by type
    with torch.no_grad():
        top = int(model(x).argmax())
    assert cam.class_index == top == explained.predicted
    reference = _independent_cam(model, x, split, top)
    assert cam.cam.shape == (14, 14)
    torch.testing.assert_close(cam.cam, reference, atol=1e-5, rtol=1e-4)
    assert reference.max() > 0
    # another class, chosen by the caller
    other = (top + 1) % 10
    torch.testing.assert_close(grad_cam(model, x, other).cam, _independent_cam(model, x, split, other),
                               atol=1e-5, rtol=1e-4)
    assert cam.heatmap.shape == (28, 28) and float(cam.heatmap.max()) == pytest.approx(1.0)


def _grid_size(grid) -> tuple[int, int]:
    ph, pw = grid.panel_size
    return grid.cols * pw + (grid.cols + 1) * GAP, grid.rows * ph + (grid.rows + 1) * GAP


def test_feature_map_and_filter_pictures_have_one_panel_per_channel(explained):
    maps = explained.feature_maps
    assert list(maps) == ["layers.conv1", "layers.conv2"]
    assert (maps["layers.conv1"].panels, maps["layers.conv1"].rows, maps["layers.conv1"].cols) == (32, 6, 6)
    assert (maps["layers.conv2"].panels, maps["layers.conv2"].rows, maps["layers.conv2"].cols) == (64, 8, 8)
    for grid in [*maps.values(), explained.filters]:
        with Image.open(grid.path) as img:
            assert img.size == _grid_size(grid)
    assert explained.filters.panels == 32
    for name in ("input", "gradcam"):
        with Image.open(explained.files[name]) as img:
            assert img.size == (224, 224)


def test_explain_cli_writes_everything_and_rejects_an_unknown_class(fashion_bundle, tmp_path, capsys):
    bundle, image = fashion_bundle
    assert main(["explain", str(bundle), str(image), "--class", "Sneaker", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Grad-CAM for Sneaker" in printed and "difference" in printed
    names = {p.name for p in tmp_path.iterdir()}
    assert {"input.png", "gradcam.png", "explain.md", "filters_layers_conv1.png",
            "feature_maps_01_layers_conv1.png", "feature_maps_02_layers_conv2.png"} <= names
    assert main(["explain", str(bundle), str(image), "--class", "zebra", "--out", str(tmp_path)]) == 2
    assert "unknown class 'zebra'" in capsys.readouterr().err
    assert main(["explain", str(bundle)]) == 2


# --------------------------------------------------------------------------- generic models


def test_grad_cam_targets_the_last_conv_of_a_torchvision_resnet_by_type():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=4).eval()
    x = torch.randn(1, 3, 64, 64)
    cam = grad_cam(model, x, 2)
    assert cam.layer == "layer4.1.conv2"
    # Independent route: a full backward hook gives dscore/doutput of that module.
    store = {}
    target = model.layer4[1].conv2
    h1 = target.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach()))
    h2 = target.register_full_backward_hook(lambda m, gi, go: store.__setitem__("g", go[0].detach()))
    model.zero_grad()
    model(x)[0, 2].backward()
    h1.remove()
    h2.remove()
    ref = torch.relu((store["g"][0].mean((1, 2))[:, None, None] * store["a"][0]).sum(0))
    torch.testing.assert_close(cam.cam, ref, atol=1e-5, rtol=1e-4)


def test_grad_cam_survives_an_in_place_activation_after_the_conv():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 6, 3), nn.ReLU(inplace=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    x = torch.randn(1, 3, 12, 12)
    cam = grad_cam(model, x, 1)
    assert cam.layer == "2"
    with torch.no_grad():
        a = model[2](model[1](model[0](x)))  # the conv output before its in-place ReLU
    a = a.clone().requires_grad_(True)
    score = model[6](model[5](model[4](torch.relu(a))))[0, 1]
    (g,) = torch.autograd.grad(score, a)
    torch.testing.assert_close(cam.cam, torch.relu((g[0].mean((1, 2))[:, None, None] * a[0]).sum(0)).detach())


def test_hand_work_matches_torch_on_strides_padding_dilation_and_groups():
    rng = np.random.default_rng(0)
    for stride, padding, dilation, groups in [(1, 0, 1, 1), (2, 1, 1, 1), (2, 2, 2, 1), (1, 1, 1, 2), (3, 0, 1, 4)]:
        x = rng.normal(size=(4, 9, 10))
        weight = rng.normal(size=(8, 4 // groups, 3, 3))
        bias = rng.normal(size=8)
        out = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(weight), torch.from_numpy(bias),
                       stride=stride, padding=padding, dilation=dilation, groups=groups)[0]
        for f, i, j in [(0, 0, 0), (7, out.shape[1] - 1, out.shape[2] - 1), (5, out.shape[1] // 2, 1)]:
            worked = work_conv_value(x, weight, bias, f, i, j, stride=stride, padding=padding,
                                     dilation=dilation, groups=groups)
            assert worked.value == pytest.approx(float(out[f, i, j]), abs=1e-9)
            assert worked.top == i * stride - padding


def test_explain_a_spec_model_whose_first_conv_sits_behind_a_padding_layer(tmp_path):
    torch.manual_seed(0)
    # 'same' at stride 2 pads unevenly, so the SpecNet puts a ZeroPad2d before the conv
    model = create_model("conv4-3-s2-same,relu,conv6-3,relu,gap,dense3", input_shape=(3, 16, 15), num_classes=3)
    meta = BundleMeta(model.cnnkit_arch, [3, 16, 15], ["a", "b", "c"], [0.5] * 3, [0.25] * 3)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, size=(16, 15, 3), dtype=np.uint8), mode="RGB").save(tmp_path / "x.png")
    r = explain(model.eval(), meta, tmp_path / "x.png", out=tmp_path / "out")
    assert r.worked_difference <= 1e-5 and len(r.worked.terms) == 27
    assert r.filters.panels == 4 and [g.panels for g in r.feature_maps.values()] == [4, 6]
    assert "| layers.conv1.pad | ZeroPad2d |" in (tmp_path / "out" / "explain.md").read_text()
