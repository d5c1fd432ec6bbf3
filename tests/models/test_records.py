"""Typed records: ArchRecord keeps cnnkit.json's "architecture" key for key; PretrainedInfo/TransferPlan."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cnnkit.errors import BundleError
from cnnkit.models.bundle import BundleMeta, load_bundle, read_meta, save_bundle
from cnnkit.models.pretrained import build_transfer
from cnnkit.models.records import ArchRecord, PretrainedInfo, TransferPlan
from cnnkit.models.registry import create_model

SPEC = "conv4-3,relu,maxpool2,flatten,dense3"


def _saved_architecture(model, folder, shape, classes=3) -> dict:
    save_bundle(model, folder, BundleMeta(model.cnnkit_arch, list(shape), [str(i) for i in range(classes)],
                                          [0.5] * shape[0], [0.25] * shape[0]))
    return json.loads((folder / "cnnkit.json").read_text())["architecture"]


def _round_trips(record: ArchRecord, expected: dict) -> None:
    assert record.to_dict() == expected
    assert ArchRecord.from_dict(expected) == record
    assert ArchRecord.from_dict(record) is record


def test_a_spec_model_keeps_its_json(tmp_path):
    model = create_model(SPEC, input_shape=(1, 8, 8), num_classes=3)
    expected = {"source": "spec", "name": model.spec}  # no "kwargs" key, as before
    _round_trips(model.cnnkit_arch, expected)
    assert _saved_architecture(model, tmp_path / "b", (1, 8, 8)) == expected
    reloaded, meta = load_bundle(tmp_path / "b")
    assert meta.architecture == reloaded.cnnkit_arch == model.cnnkit_arch


def test_a_builtin_keeps_its_json(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=3)
    _round_trips(model.cnnkit_arch, {"source": "builtin", "name": "simple-cnn", "kwargs": {}})


def test_a_torchvision_transfer_model_keeps_its_json(tmp_path):
    net, plan = build_transfer("tv:resnet18", input_shape=(1, 32, 32), num_classes=2, head="dense8,relu")
    expected = {"source": "transfer", "name": "tv:resnet18",
                "kwargs": {"base": {"source": "tv", "name": "resnet18"}, "in_chans": 1, "head": "dense8,relu",
                           "resize": None}}
    _round_trips(net.cnnkit_arch, expected)
    assert _saved_architecture(net, tmp_path / "b", (1, 32, 32), classes=2) == expected
    reloaded, _ = load_bundle(tmp_path / "b")
    assert reloaded.cnnkit_arch == net.cnnkit_arch
    assert isinstance(plan, TransferPlan) and plan.removed == "fc" and plan.num_features == 512
    assert plan.pretrained.first_conv == "conv1" and plan.pretrained.classifier == "fc"
    assert plan.adapted_channels.startswith("first convolution conv1: 3 -> 1") and plan.mean is None


def test_a_bundle_based_transfer_model_keeps_its_json(tmp_path):
    donor = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10)
    save_bundle(donor, tmp_path / "donor", BundleMeta(donor.cnnkit_arch, [1, 28, 28], list("abcdefghij"),
                                                      [0.5], [0.25], {"dataset": "fashion-mnist"}))
    net, plan = build_transfer(str(tmp_path / "donor"), input_shape=(1, 8, 8), num_classes=2)
    expected = {"source": "transfer", "name": str(tmp_path / "donor"),
                "kwargs": {"base": {"source": "bundle", "arch": {"source": "builtin", "name": "simple-cnn",
                                                                 "kwargs": {}},
                                    "input_shape": [1, 28, 28], "num_classes": 10},
                           "in_chans": 1, "head": None, "resize": [28, 28]}}
    _round_trips(net.cnnkit_arch, expected)
    assert _saved_architecture(net, tmp_path / "b", (1, 8, 8), classes=2) == expected
    assert plan.resize == (28, 28) and plan.mean == (0.5,) and plan.std == (0.25,) and plan.exact_size
    assert plan.loaded.startswith(f"the cnnkit bundle {tmp_path / 'donor'} (simple-cnn, fashion-mnist")


def test_an_old_cnnkit_json_still_loads(tmp_path):
    """A fine-tuned bundle's cnnkit.json exactly as cnnkit wrote it before ArchRecord (bundle version 1)."""
    donor = create_model("simple-cnn", input_shape=(1, 8, 8), num_classes=10)
    save_bundle(donor, tmp_path / "digits", BundleMeta(donor.cnnkit_arch, [1, 8, 8], list("0123456789"),
                                                       [0.3], [0.3]))
    net, _ = build_transfer(str(tmp_path / "digits"), input_shape=(1, 8, 8), num_classes=5)
    save_bundle(net, tmp_path / "ft", BundleMeta(net.cnnkit_arch, [1, 8, 8], list("01234"), [0.3], [0.3]))
    old = {"architecture": {"source": "transfer", "name": "/tmp/baseline/before/digits", "kwargs": {
               "base": {"source": "bundle", "arch": {"source": "builtin", "name": "simple-cnn", "kwargs": {}},
                        "input_shape": [1, 8, 8], "num_classes": 10},
               "in_chans": 1, "head": None, "resize": None}},
           "input_shape": [1, 8, 8], "class_names": list("01234"), "mean": [0.3], "std": [0.3],
           "summary": {"dataset": "digits", "test_accuracy": 0.9}, "format": "cnnkit-bundle", "version": 1,
           "in_channels": 1, "num_classes": 5}
    (tmp_path / "ft" / "cnnkit.json").write_text(json.dumps(old, indent=2))
    model, meta = load_bundle(tmp_path / "ft")
    assert meta.architecture == ArchRecord.from_dict(old["architecture"])
    assert meta.architecture.to_dict() == old["architecture"]
    x = torch.rand(2, 1, 8, 8)
    net.eval()
    with torch.no_grad():
        assert torch.equal(model(x), net(x))
    # Written again, the file says the same (and now names its task: an old bundle is a classifier;
    # and its crop: none, the image is fitted straight to the input size).
    save_bundle(model, tmp_path / "again", read_meta(tmp_path / "ft"))
    again = json.loads((tmp_path / "again" / "cnnkit.json").read_text())
    assert again == {**old, "task": "classification", "crop_pct": 1.0}


@pytest.mark.parametrize("bad", ["resnet-small", {"source": "spec"}, {"name": "x"}, {"source": 1, "name": "x"},
                                 {"source": "builtin", "name": "x", "kwargs": [1]}, None])
def test_what_is_not_an_arch_record(bad):
    with pytest.raises(BundleError, match="must be a record with a source and a name"):
        ArchRecord.from_dict(bad)


def test_pretrained_info_is_frozen_and_replaced():
    info = PretrainedInfo("tv:x weights", mean=(0.5,), std=(0.5,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.loaded = "other"
    changed = info.replace(adapted_channels="note")
    assert changed.adapted_channels == "note" and info.adapted_channels is None and changed.mean == (0.5,)
    plan = TransferPlan(changed, num_features=4, removed="fc", resize=None, mean=(0.5,), std=(0.5,))
    assert plan.loaded == "tv:x weights" and plan.adapted_channels == "note" and not plan.exact_size
