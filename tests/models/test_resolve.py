"""resolve_model / `cnnkit summary`: a pretrained library's model keeps its own classifier."""

from __future__ import annotations

import json

import torch
import torchvision

from cnnkit.cli import main
from cnnkit.models.resolve import resolve_model
from conftest import need_package


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _summary(capsys, *argv) -> dict:
    assert main(["summary", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tv_model_summary_is_torchvisions_own_model(capsys):
    expected = _params(torchvision.models.resnet18())
    assert expected == 11_689_512
    result = _summary(capsys, "tv:resnet18", "--input", "3x224x224")
    assert result["total_params"] == expected
    assert result["rows"][-1]["output_shape"][-1] == 1000
    # --classes N asks for a new head, as before
    assert _summary(capsys, "tv:resnet18", "--input", "3x224x224", "--classes", "10")["total_params"] == 11_181_642


def test_tv_model_with_other_channels_keeps_its_classifier():
    model, shape = resolve_model("tv:resnet18", input_shape="1x64x64")
    expected = _params(torchvision.models.resnet18()) - 2 * 64 * 7 * 7  # the first conv takes 1 channel
    assert shape == (1, 64, 64) and _params(model) == expected


def test_timm_model_summary_is_timms_own_model(capsys):
    timm = need_package("timm", "pip install 'cnnkit[timm]'")
    expected = _params(timm.create_model("resnet18", pretrained=False))
    assert _summary(capsys, "timm:resnet18", "--input", "3x64x64")["total_params"] == expected


def test_builtin_and_spec_models_keep_the_default_of_10_classes(capsys):
    result = _summary(capsys, "resnet-small", "--input", "3x32x32")
    assert result["rows"][-1]["output_shape"][-1] == 10
    result = _summary(capsys, "conv8-3,relu,flatten,dense5", "--input", "1x8x8")
    assert result["rows"][-1]["output_shape"][-1] == 5


def test_hf_model_summary_is_transformers_own_model(tmp_path):
    transformers = need_package("transformers", "pip install 'cnnkit[hf]'")
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                                       layer_type="basic", num_labels=7)
    own = transformers.ResNetForImageClassification(config)
    own.save_pretrained(tmp_path / "tiny")
    model, _ = resolve_model(f"hf:{tmp_path / 'tiny'}", input_shape="3x32x32")
    assert _params(model) == _params(own)
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
