"""models/bundle.py helpers: what names a bundle, and the model inside its wrappers."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.models.bundle import BundleMeta, is_bundle_path, save_bundle, unwrap
from cnnkit.models.registry import create_model
from cnnkit.train.ema import ModelEma


def test_is_bundle_path_found_needs_a_bundle(tmp_path, monkeypatch):
    """found=True (pretrained.py: --model and --weights): only what find_bundle finds."""
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=3)
    meta = BundleMeta(model.cnnkit_arch, [1, 28, 28], list("abc"), [0.5], [0.5])
    save_bundle(model, tmp_path / "bundle", meta)
    save_bundle(model, tmp_path / "run" / "best", meta)
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert is_bundle_path(str(tmp_path / "bundle")) and is_bundle_path(tmp_path / "run") and is_bundle_path("run")
    assert not is_bundle_path(str(tmp_path / "empty")) and not is_bundle_path("weights.safetensors")
    assert not is_bundle_path("runs/missing") and not is_bundle_path("tv:resnet18")
    assert not is_bundle_path("imagenet") and not is_bundle_path("hf-hub:org/name")


def test_is_bundle_path_not_found_reads_a_path(tmp_path):
    """found=False (resolve.py: summary/explain targets): whatever reads as a path, so load_bundle explains."""
    assert is_bundle_path(str(tmp_path), found=False)  # exists, holds no bundle
    assert is_bundle_path("runs/latest", found=False) and is_bundle_path("./run", found=False)
    assert is_bundle_path("runs\\x", found=False)
    assert not is_bundle_path("hf-hub:org/name", found=False) and not is_bundle_path("tv:resnet18", found=False)
    assert not is_bundle_path("conv8-3,relu", found=False) and not is_bundle_path("resnet-small", found=False)


def test_unwrap_finds_the_model_inside_compile_and_ema():
    model = nn.Sequential(nn.Linear(2, 2))
    assert unwrap(model) is model
    assert unwrap(torch.compile(model)) is model  # nothing compiles until it is called
    ema = ModelEma(model, 0.9)
    assert unwrap(ema) is ema.module
    assert list(unwrap(torch.compile(model)).state_dict()) == ["0.weight", "0.bias"]
