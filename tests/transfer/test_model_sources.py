"""Pretrained sources: torchvision, timm and cnnkit bundles, from weight files placed where each library looks."""

from __future__ import annotations

import pytest
import torch
from helpers_transfer import timm_hf_cache, tiny_splits, torchvision_checkpoint

import cnnkit
from cnnkit.errors import ModelError
from cnnkit.models import list_models
from cnnkit.models.adapt import TransferNet, adapt_conv_weight
from cnnkit.models.bundle import BundleMeta, load_bundle, save_bundle
from cnnkit.models.pretrained import build_transfer
from cnnkit.models.registry import create_model
from cnnkit.transfer.finetune import finetune


def _same_outputs(model: torch.nn.Module, folder, shape) -> None:
    """The bundle reloads into the same structure with the same weights: bit-identical outputs."""
    reloaded, _ = load_bundle(folder)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), reloaded(x))


def test_registry_lists_every_source_with_filters():
    tv = dict((n, d) for n, _, d in list_models("tv:resnet18"))
    assert "IMAGENET1K_V1" in tv["tv:resnet18"]
    assert any(n == "timm:resnet18.a1_in1k" for n, _, _ in list_models("timm:resnet18.*", pretrained=True))
    assert all(src == "tv" for _, src, _ in list_models("*", source="tv"))
    assert len(list_models("*", source="tv")) >= 70  # every torchvision classification model
    assert not [n for n, _, _ in list_models("simple-cnn", pretrained=True)]  # built-ins come untrained
    assert [n for n, _, _ in list_models("simple-cnn", pretrained=None)] == ["simple-cnn"]


def test_torchvision_weights_from_torch_home_and_finetune(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_WEIGHTS_CHECK_HASH", "0")  # our random file cannot match the published sha256
    path, state = torchvision_checkpoint("resnet18")
    net, info = build_transfer("tv:resnet18", input_shape=(1, 32, 32), num_classes=2, weights="imagenet")
    assert str(path) in info.loaded
    # 1-channel data into the RGB network: the first conv's filters summed over colour, as timm does.
    assert torch.allclose(net.backbone.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(net.backbone.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert info.mean == (pytest.approx(sum([0.485, 0.456, 0.406]) / 3),)  # the weights' own normalisation
    assert net.block_groups == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    run = finetune("tv:resnet18", tiny_splits(8, shape=(1, 16, 16)), weights="imagenet",
                   strategy="feature-extractor", epochs=1, batch_size=8,
                   out=str(tmp_path), log=lambda *a: None, live=False)
    assert run.summary["strategy"] == "feature-extractor" and run.summary["epochs"] == 1
    model = cnnkit.load(run.run_dir / "best")
    assert isinstance(model, TransferNet) and model.backbone.conv1.in_channels == 1
    _same_outputs(model, run.run_dir / "best", (1, 16, 16))


def test_torchvision_hash_is_checked_by_default():
    torchvision_checkpoint("resnet18")
    with pytest.raises(ModelError, match="sha256"):
        build_transfer("tv:resnet18", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")


def test_missing_torchvision_weights_say_url_and_cache_path(capsys, tmp_path):
    from cnnkit.cli import main

    rc = main(["finetune", "--model", "tv:resnet18", "--weights", "imagenet", "--data", "digits", "--limit", "20",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err
    assert "hub/checkpoints/resnet18-f37072fd.pth" in err and "Traceback" not in err


def test_a_failed_load_leaves_no_run_directory(tmp_path, capsys):
    from cnnkit.cli import main

    rc = main(["finetune", "--model", "timm:resnet18.a1_in1k", "--weights", "imagenet", "--data", "digits",
               "--limit", "20", "--out", str(tmp_path)])
    assert rc == 2 and "huggingface.co/timm/resnet18.a1_in1k" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_hf_transformers_names_say_which_extra(monkeypatch):
    import sys

    from cnnkit.models import sources_hf

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed: import fails
    with pytest.raises(ModelError, match=r"pip install 'cnnkit\[hf\]'"):
        build_transfer("hf:microsoft/resnet-50", input_shape=(3, 32, 32), num_classes=2)
    assert sources_hf.lister("*") == []
    # (tests/transfer/test_hf_source.py covers the source itself, with transformers installed)


def test_timm_weights_from_hf_cache_and_finetune(tmp_path):
    _, state = timm_hf_cache("mobilenetv3_small_050.lamb_in1k")
    net, info = build_transfer("timm:mobilenetv3_small_050.lamb_in1k", input_shape=(1, 32, 32), num_classes=2,
                               weights="imagenet")
    assert "timm/mobilenetv3_small_050.lamb_in1k" in info.loaded
    assert torch.allclose(net.backbone.conv_stem.weight, state["conv_stem.weight"].sum(1, keepdim=True))
    assert net.block_groups[0].startswith("stem") and net.block_groups[-1] == "head" and len(net.block_groups) == 5
    run = finetune("timm:mobilenetv3_small_050.lamb_in1k", tiny_splits(8), weights="imagenet", strategy="freeze",
                   freeze_until="2", epochs=1, batch_size=8, out=str(tmp_path), log=lambda *a: None, live=False)
    _same_outputs(cnnkit.load(run.run_dir / "best"), run.run_dir / "best", (1, 32, 32))


def test_timm_resnet18_groups_follow_timms_group_matcher():
    net, _ = build_transfer("timm:resnet18", input_shape=(3, 32, 32), num_classes=2)
    assert net.block_groups == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


def test_timm_weights_from_a_local_file_and_missing_cache_message(tmp_path):
    import timm
    from safetensors.torch import save_file

    model = timm.create_model("mobilenetv3_small_050", pretrained=False)
    file = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(file))
    net, info = build_transfer("timm:mobilenetv3_small_050", input_shape=(3, 32, 32), num_classes=4,
                               weights=str(file))
    assert str(file) in info.loaded
    assert torch.equal(net.backbone.conv_stem.weight, model.conv_stem.weight)
    with pytest.raises(ModelError, match=r"huggingface.co/timm/mobilenetv3_small_050.lamb_in1k.*refs/main"):
        build_transfer("timm:mobilenetv3_small_050", input_shape=(3, 32, 32), num_classes=4, weights="imagenet")


def test_bundle_as_source_resizes_and_reloads(tmp_path):
    data = tiny_splits(8, shape=(1, 8, 8))
    donor = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10)
    save_bundle(donor, tmp_path / "donor", BundleMeta(donor.cnnkit_arch, [1, 28, 28], list("abcdefghij"),
                                                      [0.5], [0.25], {"dataset": "fashion-mnist"}))
    net, info = build_transfer(str(tmp_path / "donor"), input_shape=(1, 8, 8), num_classes=2,
                               head="dense16,relu,dropout0.3")
    assert info.resize == (28, 28) and info.mean == (0.5,)
    assert torch.equal(net.backbone.layers.conv1.weight, donor.layers.conv1.weight)
    assert net.head.spec == "dense16,relu,dropout0.3,dense2"
    run = finetune(str(tmp_path / "donor"), data, strategy="full", head="dense16,relu", epochs=1, batch_size=8,
                   out=str(tmp_path / "runs"), log=lambda *a: None, live=False)
    _same_outputs(cnnkit.load(run.run_dir / "best"), run.run_dir / "best", (1, 8, 8))
    # A fine-tuned run is itself a source: its block groups carry over, and it reloads too.
    again = finetune(str(run.run_dir), data, strategy="feature-extractor", epochs=1, batch_size=8,
                     out=str(tmp_path / "runs"), log=lambda *a: None, live=False)
    model = cnnkit.load(again.run_dir / "best")
    assert model.block_groups == ["conv1..maxpool1", "conv2..maxpool2", "dense1", "old-head", "head"]
    _same_outputs(model, again.run_dir / "best", (1, 8, 8))


def test_adapt_conv_weight_keeps_the_response_of_grey_images():
    w = torch.randn(4, 3, 3, 3)
    grey = torch.rand(1, 1, 5, 5)
    rgb = torch.nn.functional.conv2d(grey.expand(1, 3, 5, 5), w)
    assert torch.allclose(torch.nn.functional.conv2d(grey, adapt_conv_weight(w, 1)), rgb, atol=1e-5)
    assert adapt_conv_weight(torch.randn(4, 1, 3, 3), 3).shape == (4, 3, 3, 3)


def test_bad_head_and_unknown_models_are_user_errors():
    with pytest.raises(ModelError, match="layer spec"):
        build_transfer("tv:resnet18", input_shape=(3, 32, 32), num_classes=2, head="dense256,frobnicate")
    with pytest.raises(ModelError, match="resnet18"):
        build_transfer("tv:resnet81", input_shape=(3, 32, 32), num_classes=2)


@pytest.mark.parametrize("name", ["tv:resnet18", "timm:mobilenetv3_small_050.lamb_in1k"])
def test_weights_from_an_earlier_run_of_the_same_architecture(name, tmp_path):
    """`--model tv:resnet18 --weights runs/x`: the backbone of that run, a fresh head for the new data."""
    first = finetune(name, tiny_splits(8, shape=(1, 32, 32)), strategy="full", weights="none", epochs=1,
                     batch_size=8, out=str(tmp_path), name="first", log=lambda *a: None, live=False)
    donor = cnnkit.load(first.run_dir / "best")
    net, info = build_transfer(name, input_shape=(1, 32, 32), num_classes=3, weights=str(first.run_dir))
    assert str(first.run_dir) in info.loaded and net.num_classes == 3
    mine, theirs = net.backbone.state_dict(), donor.backbone.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
