"""The built-in architectures: they adapt to channels, classes and size, and follow the model interface."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnkit.cli import main
from cnnkit.errors import ShapeError
from cnnkit.models import BundleMeta, create_model, list_models, load_bundle, save_bundle
from cnnkit.nn.summary import summarize

BUILTINS = ["simple-cnn", "lenet5", "tiny-vgg", "resnet-small"]


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize(("shape", "classes"), [((1, 28, 28), 10), ((3, 32, 32), 7), ((3, 64, 64), 2)])
def test_every_builtin_adapts_to_channels_classes_and_size(name, shape, classes):
    model = create_model(name, input_shape=shape, num_classes=classes)
    assert model(torch.randn(2, *shape)).shape == (2, classes)
    assert model.cnnkit_arch.name == name
    assert model.get_classifier().out_features == classes
    model.eval()
    x = torch.randn(2, *shape)
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))
    for group in model.block_groups:  # every group is a real submodule, input to output
        assert isinstance(model.get_submodule(group), nn.Module)


def test_every_builtin_is_listed_with_a_one_line_description():
    rows = {name: desc for name, source, desc in list_models(source="builtin")}
    for name in BUILTINS:
        assert rows[name] and "\n" not in rows[name]


def test_lenet5_and_tiny_vgg_have_their_papers_parameter_counts():
    # LeNet-5 on 32x32 grey images: 61,706 parameters; on 28x28 the padded first conv keeps it so.
    assert summarize(create_model("lenet5", input_shape=(1, 32, 32), num_classes=10), (1, 32, 32)).total_params == 61_706
    assert summarize(create_model("lenet5", input_shape=(1, 28, 28), num_classes=10), (1, 28, 28)).total_params == 61_706
    # CNN Explainer's Tiny VGG on 64x64 colour images with 10 classes: 19,920.
    tiny = create_model("tiny-vgg", input_shape=(3, 64, 64), num_classes=10)
    assert summarize(tiny, (3, 64, 64)).total_params == 19_920
    assert tiny.spec == ("conv10-3,relu,conv10-3,relu,maxpool2,conv10-3,relu,conv10-3,relu,maxpool2,"
                         "flatten,dense10")


def test_too_small_an_input_names_the_layer():
    with pytest.raises(ShapeError, match="empties the feature map"):
        create_model("tiny-vgg", input_shape=(1, 8, 8), num_classes=10)


def test_resnet_small_interface_for_transfer_learning():
    model = create_model("resnet-small", input_shape=(1, 28, 28), num_classes=10)
    assert model.block_groups == ["stem", "layer1", "layer2", "layer3", "head"]
    grouped = sum(p.numel() for g in model.block_groups for p in model.get_submodule(g).parameters())
    assert grouped == sum(p.numel() for p in model.parameters())  # the groups cover every weight
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    features = model.forward_features(x)
    assert features.shape == (4, 128, 4, 4) and model.num_features == 128
    torch.testing.assert_close(model.forward_head(features), model(x))
    assert model.forward_head(features, pre_logits=True).shape == (4, 128)
    assert model.get_classifier() is model.head.fc
    model.reset_classifier(3)
    assert model(x).shape == (4, 3) and model.num_classes == 3
    model.reset_classifier(0)
    assert model(x).shape == (4, 128)


def test_resnet_small_halves_large_inputs_in_its_first_conv():
    small = create_model("resnet-small", input_shape=(3, 32, 32), num_classes=10)
    large = create_model("resnet-small", input_shape=(3, 96, 96), num_classes=10)
    assert small.stem[0].stride == (1, 1) and large.stem[0].stride == (2, 2)
    assert large.forward_features(torch.zeros(1, 3, 96, 96)).shape == (1, 128, 6, 6)


def test_resnet_small_bundle_round_trip(tmp_path):
    model = create_model("resnet-small", input_shape=(1, 28, 28), num_classes=4)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    model.eval()
    save_bundle(model, tmp_path, BundleMeta(model.cnnkit_arch, [1, 28, 28], list("abcd"), [0.5], [0.5]))
    loaded, _ = load_bundle(tmp_path)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_cli_trains_a_spec_built_model_on_digits(tmp_path, capsys):
    spec = "conv8-3-same,bn,relu,maxpool2,flatten,dense10"
    assert main(["train", "--data", "digits", "--model", spec, "--epochs", "1", "--out", str(tmp_path),
                 "--name", "spec"]) == 0
    run = tmp_path / "spec"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["test_accuracy"] > 0.3
    meta = json.loads((run / "best" / "cnnkit.json").read_text())
    assert meta["architecture"] == {"source": "spec", "name": spec}
    model, _ = load_bundle(run)
    assert model.spec == spec
    capsys.readouterr()
    assert main(["summary", str(run)]) == 0  # and the run directory summarises itself
    assert "conv8-3-same" in capsys.readouterr().out


def test_a_builtin_refuses_images_below_its_smallest_size():
    with pytest.raises(ShapeError, match="resnet-small needs images of at least 8x8, not 2x2"):
        create_model("resnet-small", input_shape=(1, 2, 2), num_classes=10)  # global pooling hides it otherwise
