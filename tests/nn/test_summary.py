"""`summarize` and `cnnkit summary`: shapes, parameters and MACs against torch and hand counts."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.cli import main
from cnnkit.errors import ShapeError
from cnnkit.models import BundleMeta, save_bundle
from cnnkit.nn.model import SpecNet
from cnnkit.nn.spec import Conv, Dense, Pool, infer_shapes, parse_spec
from cnnkit.nn.summary import summarize

GUIDE_SPEC = "conv32-3-same,relu,maxpool2,conv64-3,relu,maxpool2,flatten,dense10"


def torch_flops(model: nn.Module, input_shape) -> int:
    """torch's own count: 2 flops per multiply-accumulate of convolutions and matrix products."""
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_shape))
    return counter.get_total_flops()


def test_cli_prints_the_guide_network_with_41866_parameters(capsys):
    assert main(["summary", GUIDE_SPEC, "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Total params:\s+41,866", out)
    assert re.search(r"conv1\s+Conv2d\s+conv32-3-same\s+32x28x28\s+320\s+0\s+225,792", out)
    assert re.search(r"conv2\s+Conv2d\s+conv64-3\s+64x12x12\s+18,496", out)
    assert re.search(r"dense1\s+Linear\s+dense10\s+10\s+23,050\s+0\s+23,040", out)
    assert "MACs per image:        2,903,040" in out


EVERY_KIND = ("conv8-3-same,bn,relu,conv8-3x1-s2-p1x0-d2-g4-nobias,leaky_relu0.2,maxpool3-s2-p1,"
              "conv6-2,elu,avgpool2-s1-p1,gelu,conv6-1,silu,bn,tanh,sigmoid,dropout0.1,flatten,dense12,"
              "softmax,dense5-nobias")


def hand_params(layer, in_shape) -> int:
    if isinstance(layer, Conv):
        kh, kw = (layer.kernel, layer.kernel) if isinstance(layer.kernel, int) else layer.kernel
        return layer.filters * (in_shape[0] // layer.groups) * kh * kw + (layer.filters if layer.bias else 0)
    if isinstance(layer, Dense):
        return math.prod(in_shape) * layer.units + (layer.units if layer.bias else 0)
    if layer.kind == "bn":
        return 2 * in_shape[0]
    return 0


def hand_macs(layer, in_shape, out_shape) -> int:
    if isinstance(layer, Conv):
        kh, kw = (layer.kernel, layer.kernel) if isinstance(layer.kernel, int) else layer.kernel
        return math.prod(out_shape) * (in_shape[0] // layer.groups) * kh * kw
    if isinstance(layer, Dense):
        return math.prod(in_shape) * layer.units
    return 0


@pytest.mark.parametrize("input_shape", [(4, 16, 16), (4, 11, 9)])
def test_every_layer_kind_against_the_formula_hand_counts_and_torch(input_shape):
    layers = parse_spec(EVERY_KIND)
    model = SpecNet(layers, input_shape)
    summary = summarize(model, input_shape)
    shapes = infer_shapes(layers, input_shape)
    rows = {r.name: r for r in summary.rows}
    assert [r.spec for r in summary.rows] == [layer.token() for layer in layers]  # no auto-flatten here
    in_shape = input_shape
    for layer, row, out_shape in zip(layers, summary.rows, shapes, strict=True):
        assert row.output_shape == out_shape, row.name  # the formula ...
        assert row.params == hand_params(layer, in_shape), row.name  # ... and the hand counts
        assert row.macs == hand_macs(layer, in_shape, out_shape), row.name
        in_shape = out_shape
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert 2 * summary.macs == torch_flops(model, input_shape)  # torch's own flop counter
    assert rows["maxpool1"].type == "MaxPool2d" and rows["avgpool1"].type == "AvgPool2d"
    assert tuple(model(torch.zeros(1, *input_shape)).shape[1:]) == summary.rows[-1].output_shape


def test_same_padding_with_a_stride_lists_the_pad_and_the_conv():
    model = SpecNet("conv4-4-s2-same,gap,dense3", (2, 9, 9))
    summary = summarize(model, (2, 9, 9))
    assert [r.name for r in summary.rows[:2]] == ["conv1.pad", "conv1.conv"]
    assert summary.rows[0].output_shape == (2, 12, 12)  # 3 pixels: 1 before, 2 after
    assert summary.rows[1].output_shape == (4, 5, 5)
    assert summary.rows[1].macs == 4 * 5 * 5 * 2 * 16 and summary.rows[1].spec == "conv4-4-s2-same"
    assert [r.name for r in summary.rows[2:]] == ["gap1.pool", "gap1.flatten", "dense1"]


def test_a_torchvision_resnet18_with_a_frozen_stage():
    model = torchvision.models.resnet18(weights=None)
    for p in model.layer1.parameters():
        p.requires_grad = False
    summary = summarize(model, (3, 64, 64))
    assert model.training  # the mode is restored
    assert summary.total_params == 11_689_512
    assert summary.frozen_params == sum(p.numel() for p in model.layer1.parameters()) == 147_968
    assert summary.trainable_params == 11_689_512 - 147_968
    assert 2 * summary.macs == torch_flops(model, (3, 64, 64))
    rows = {r.name: r for r in summary.rows}
    assert rows["layer1.0.conv1"].frozen == 36_864 and rows["layer1.0.conv1"].trainable == 0
    assert rows["fc"].output_shape == (1000,) and rows["layer4.1.bn2"].output_shape == (512, 2, 2)
    assert "layer1.0.relu (call 2)" in rows  # torchvision calls each block's relu twice


def test_activation_memory_scales_with_the_batch():
    model = SpecNet(GUIDE_SPEC, (1, 28, 28))
    one, many = summarize(model, (1, 28, 28)), summarize(model, (1, 28, 28), batch_size=256)
    elements = 28 * 28 + sum(math.prod(r.output_shape) for r in one.rows)
    assert one.activation_bytes == elements * 4 and many.activation_bytes == 256 * elements * 4
    assert "Activations for a batch of 256: 78.40 MiB" in many.format()


def test_a_module_called_twice_counts_its_weights_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.extra = nn.Parameter(torch.zeros(7))  # owned by no leaf layer

        def forward(self, x):
            return self.conv(self.conv(x)) + self.extra.sum()

    summary = summarize(Twice(), (3, 8, 8))
    assert [r.name for r in summary.rows] == ["conv", "conv (call 2)"]
    assert [r.params for r in summary.rows] == [84, 0] and summary.rows[1].macs == 3 * 64 * 27
    assert summary.total_params == 91 and summary.unlisted_params == 7
    assert "outside the listed layers: 7" in summary.format()


def test_a_generic_model_too_small_for_its_input_is_a_shape_error():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 5))
    with pytest.raises(ShapeError, match=r"layer 2 \(Conv2d\) fails on an input of 4x3x3"):
        summarize(model, (1, 5, 5))


def test_summary_of_a_bundle_uses_its_input_shape(tmp_path, capsys):
    model = SpecNet("conv4-3,relu,maxpool2,flatten,dense3", (1, 12, 12))
    model.cnnkit_arch = {"source": "spec", "name": model.spec}
    for p in model.layers.conv1.parameters():
        p.requires_grad = False
    save_bundle(model, tmp_path / "bundle", BundleMeta(model.cnnkit_arch, [1, 12, 12], ["a", "b", "c"],
                                                      [0.5], [0.25]))
    assert main(["summary", str(tmp_path / "bundle"), "--json", "--batch-size", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [1, 12, 12] and data["batch_size"] == 8
    assert data["total_params"] == 4 * 9 + 4 + 100 * 3 + 3
    assert [r["output_shape"] for r in data["rows"]][:3] == [[4, 10, 10], [4, 10, 10], [4, 5, 5]]
    assert main(["summary", str(tmp_path / "bundle"), "--input", "1x4x4"]) == 2  # the dense layer no longer fits
    assert "cannot take a 1x4x4 input" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "words"), [
    (["simple-cnn"], "give the image shape for 'simple-cnn' with --input CxHxW"),
    (["simple-cnn", "--input", "28x28"], "is not CxHxW"),
    (["no-such-net", "--input", "1x28x28"], "unknown model 'no-such-net'"),
    (["./no/such/run"], "does not exist"),
])
def test_cli_summary_user_errors(args, words, capsys):
    assert main(["summary", *args]) == 2
    assert words in capsys.readouterr().err


def test_cli_summary_of_a_builtin_and_of_a_spec_with_classes(capsys):
    assert main(["summary", "resnet-small", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "layer3.0.conv2" in out and "head.fc" in out and re.search(r"Total params:\s+314,962", out)
    assert main(["summary", "conv8-3,relu,gap", "--input", "3x32x32", "--classes", "7"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"dense1\s+Linear\s+dense7\s+7\s+63", out)


def test_pooling_row_matches_the_formula_with_padding_and_stride():
    layer = Pool("max", 3, stride=2, padding=1)
    model = SpecNet([layer], (2, 15, 15))
    assert summarize(model, (2, 15, 15)).rows[0].output_shape == (2, 8, 8)  # floor((15+2-2-1)/2)+1


def test_input_shapes_in_every_spelling():
    from cnnkit.models.resolve import parse_input_shape

    assert parse_input_shape("3x32x32") == parse_input_shape("3,32,32") == parse_input_shape((3, 32, 32)) == (3, 32, 32)


@pytest.mark.parametrize("pool", ["gap", "gmp"])
def test_global_pooling_rows(pool):
    model = SpecNet(f"conv6-3-d2,{pool},dense4", (3, 10, 10))
    summary = summarize(model, (3, 10, 10))
    assert [(r.name, r.output_shape, r.params, r.macs) for r in summary.rows] == [
        ("conv1", (6, 6, 6), 6 * 27 + 6, 6 * 36 * 27),  # dilation 2: floor((10 - 2*2 - 1)/1) + 1 = 6
        (f"{pool}1.pool", (6, 1, 1), 0, 0),
        (f"{pool}1.flatten", (6,), 0, 0),
        ("dense1", (4,), 6 * 4 + 4, 24),
    ]
    assert 2 * summary.macs == torch_flops(model, (3, 10, 10))
