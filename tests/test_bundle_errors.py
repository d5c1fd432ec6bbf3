"""A damaged or mismatched bundle or weights file is one clear error that names it, never a traceback."""

from __future__ import annotations

import json

import pytest

import cnnkit
from cnnkit.errors import BundleError, ModelError
from cnnkit.models.bundle import BundleMeta, save_bundle
from cnnkit.models.pretrained import load_state_file
from cnnkit.models.registry import create_model


@pytest.fixture
def bundle(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=3)
    return save_bundle(model, tmp_path / "b", BundleMeta(model.cnnkit_arch, [1, 28, 28], list("abc"), [0.5], [0.5], {}))


def test_truncated_weights(bundle):
    path = bundle / "model.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BundleError, match="model.safetensors cannot be read"):
        cnnkit.load(bundle)
    with pytest.raises(ModelError, match="cannot be read as safetensors"):  # the same file given as --weights
        load_state_file(path)


def test_architecture_that_is_not_a_record(bundle):
    meta = json.loads((bundle / "cnnkit.json").read_text())
    meta["architecture"] = "resnet-small"
    (bundle / "cnnkit.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="must be a record with a source and a name"):
        cnnkit.load(bundle)


def test_weights_of_another_architecture_name_the_keys(bundle):
    meta = json.loads((bundle / "cnnkit.json").read_text())
    meta["architecture"] = {"source": "builtin", "name": "lenet5", "kwargs": {}}
    (bundle / "cnnkit.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="does not fit the architecture") as err:
        cnnkit.load(bundle)
    assert "Missing key" in str(err.value) or "Unexpected key" in str(err.value)
