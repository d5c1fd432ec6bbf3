"""Keras Applications through Keras 3's PyTorch backend, trained by cnnkit's own loop, offline."""

from __future__ import annotations

import pytest
import torch
from helpers_transfer import tiny_splits

import cnnkit
from cnnkit.errors import ModelError
from cnnkit.models import list_models
from cnnkit.models.adapt import TransferNet
from cnnkit.models.pretrained import build_transfer
from cnnkit.models.sources_keras import _keras
from cnnkit.transfer.finetune import finetune

keras = _keras()  # keras with the PyTorch backend; in [dev], so CI always has it
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own np.array(copy=) use
NAME = "MobileNetV2"
NO_TOP = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"  # what get_file caches


def legacy_h5(path) -> dict[str, torch.Tensor]:
    """A randomly initialised no-top MobileNetV2 saved in the legacy .h5 layout of the published files."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(4)
    model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(None, None, 3),
                                           pooling="avg")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return {v.path.split("/")[0] + "/" + v.name: v.value.detach().clone() for v in model.weights}


def keras_weight(net: TransferNet, layer: str, variable: str) -> torch.Tensor:
    return next(v.value for v in net.backbone.keras_model.get_layer(layer).weights if v.name == variable)


class KerasProbe:
    """At every step: each group's requires_grad, whether its BatchNormalization layers train, its LR."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_step(self, trainer, step, steps, loss, accuracy) -> None:
        model = trainer.model
        params = dict(model.named_parameters())
        by_param = {id(v.value): layer for layer in model.backbone._batchnorms for v in layer.weights}
        record = {"stage": trainer.stage_name, "grad": {}, "bn": {}}
        for group, names in model.groups:
            flags = {params[n].requires_grad for n in names}
            assert len(flags) == 1, f"group {group} is partly frozen"
            record["grad"][group] = flags.pop()
            record["bn"][group] = {by_param[id(params[n])].trainable for n in names if id(params[n]) in by_param}
        record["lr"] = {g["block_group"]: g["initial_lr"] for g in trainer.optimizer.param_groups}
        self.seen.append(record)


def test_keras_application_weights_from_file_and_fine_tune(tmp_path):
    saved = legacy_h5(tmp_path / "mnv2_no_top.h5")
    net, info = build_transfer(f"keras:{NAME}", input_shape=(1, 32, 32), num_classes=2,
                               weights=str(tmp_path / "mnv2_no_top.h5"))
    assert str(tmp_path) in info.loaded
    assert torch.equal(keras_weight(net, "Conv1", "kernel"), saved["Conv1/kernel"])
    assert torch.equal(keras_weight(net, "Conv_1_bn", "moving_variance"), saved["Conv_1_bn/moving_variance"])
    assert info.mean == (0.5,) and info.std == (0.5,)  # MobileNetV2's 'tf' preprocessing: [-1, 1]
    # Grey images repeated to RGB give what summing the first convolution's filters over colour gives.
    x = torch.rand(2, 1, 32, 32)
    net.eval()
    with torch.no_grad():
        grey = net.backbone(x)
        rgb = net.backbone(x.expand(-1, 3, -1, -1))
    assert torch.allclose(grey, rgb)
    assert net.block_groups[0].startswith("stem") and net.block_groups[-1] == "head"
    assert len(net.block_groups) == 7  # 17 blocks merged into six stages, plus the head

    probe = KerasProbe()
    run = finetune(f"keras:{NAME}", tiny_splits(8, shape=(1, 32, 32)), weights=str(tmp_path / "mnv2_no_top.h5"),
                   strategy="fine-tune", epochs=2, batch_size=8, lr=1e-2, out=str(tmp_path / "runs"),
                   callbacks=[probe], log=lambda *a: None, live=False)
    stages = {}
    for record in probe.seen:
        assert record == stages.setdefault(record["stage"], record)  # every step of a stage looks the same
    frozen, unfrozen = stages.values()
    groups = [g for g in frozen["grad"] if g != "head"]
    # Stage 1: the head alone trains; every Keras BatchNormalization of the backbone runs in inference mode.
    assert frozen["grad"] == {**dict.fromkeys(groups, False), "head": True}
    assert all(frozen["bn"][g] == {False} for g in groups)
    assert list(frozen["lr"]) == ["head"]
    # Stage 2: everything trains, BatchNormalization too, earlier groups at smaller learning rates.
    assert all(unfrozen["grad"].values()) and all(unfrozen["bn"][g] == {True} for g in groups)
    rates = [unfrozen["lr"][g] for g in [*groups, "head"]]
    assert rates == sorted(rates) and rates[0] < rates[-1] / 50

    report = (run.run_dir / "report.md").read_text()
    assert "| head | 2,562 | trained" in report and "| eval mode |" in report and "| train mode |" in report

    # The bundle rebuilds the Keras network (a second build in this process) with the same weights.
    model = cnnkit.load(run.run_dir / "best")
    assert isinstance(model, TransferNet) and type(model.backbone).__name__ == "KerasBackbone"
    trained = cnnkit.load(run.run_dir / "last")
    model.eval()
    trained.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
        assert torch.equal(model(x), cnnkit.load(run.run_dir / "best")(x))
    assert not torch.equal(keras_weight(trained, "Conv1", "kernel"), saved["Conv1/kernel"].sum(2, keepdim=True))


def test_keras_imagenet_weights_come_from_keras_cache():
    from cnnkit.models.sources_keras import weights_dir

    weights_dir().mkdir(parents=True, exist_ok=True)
    path = weights_dir() / NO_TOP  # MobileNetV2's get_file names no hash; ResNet50's would be checked
    saved = legacy_h5(path)
    try:
        net, info = build_transfer(f"keras:{NAME}", input_shape=(3, 32, 32), num_classes=3, weights="imagenet")
        assert str(weights_dir()) in info.loaded
        assert torch.equal(keras_weight(net, "Conv1", "kernel"), saved["Conv1/kernel"])
    finally:
        path.unlink()


def test_keras_weights_missing_offline_names_url_and_cache_path(tmp_path, capsys):
    from cnnkit.cli import main
    from cnnkit.models.sources_keras import weights_dir

    with pytest.raises(ModelError) as err:
        build_transfer(f"keras:{NAME}", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")
    message = str(err.value)
    assert f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{NO_TOP}" in message
    assert str(weights_dir() / NO_TOP) in message
    rc = main(["finetune", "--model", f"keras:{NAME}", "--weights", "imagenet", "--data", "digits", "--limit", "20",
               "--out", str(tmp_path)])
    assert rc == 2 and "storage.googleapis.com" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_keras_names_are_listed_and_checked():
    names = [n for n, src, _ in list_models("resnet5*", pretrained=True) if src == "keras"]
    assert "keras:ResNet50" in names and "keras:ResNet50V2" in names
    assert {src for _, src, _ in list_models("*", source="keras")} == {"keras"}
    assert all(hasattr(keras.applications, n.split(":")[1]) for n, _, _ in list_models("*", source="keras"))
    with pytest.raises(ModelError, match="not a Keras Application"):
        build_transfer("keras:ResNet51", input_shape=(3, 32, 32), num_classes=2)
    with pytest.raises(ModelError, match="1- or 3-channel"):
        build_transfer("keras:ResNet50", input_shape=(4, 32, 32), num_classes=2)


@pytest.mark.parametrize("name, mean, bgr", [("ResNet50", 123.68 / 255, True), ("EfficientNetB0", 0.0, False),
                                             ("DenseNet121", 0.485, False)])
def test_each_family_gets_its_own_preprocessing(name, mean, bgr):
    net, info = build_transfer(f"keras:{name}", input_shape=(3, 32, 32), num_classes=2)
    assert info.mean[0] == pytest.approx(mean) and net.backbone.bgr is bgr
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, 2)


def test_a_cached_file_with_the_wrong_hash_is_reported_and_kept():
    from cnnkit.models.sources_keras import weights_dir

    weights_dir().mkdir(parents=True, exist_ok=True)
    path = weights_dir() / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"  # ResNet50 names a hash
    path.write_bytes(b"not the published file")
    try:
        with pytest.raises(ModelError, match="hash is not the one Keras expects"):
            build_transfer("keras:ResNet50", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")
        assert path.read_bytes() == b"not the published file"  # Keras's clean-up would have deleted it
    finally:
        path.unlink()


def test_ema_copy_computes_with_its_own_parameters_and_skips_integer_states():
    """EMA deep-copies the model: the copy's Keras network must use the copy's registered parameters."""
    from cnnkit.train.ema import ModelEma

    net, _ = build_transfer("keras:EfficientNetB0", input_shape=(3, 32, 32), num_classes=2)
    ema = ModelEma(net, decay=0.5)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    x = torch.rand(4, 3, 32, 32)
    torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 0, 1])).backward()
    optimizer.step()
    ema.update(net)  # integer variables (normalization count, seed states) are copied, not averaged
    with torch.no_grad():
        for mine, live in zip(ema.module.parameters(), net.parameters(), strict=True):
            mine.copy_(live)
        net.eval()
        assert torch.equal(ema.module(x), net(x))  # same weights in its parameters -> same outputs


def test_dropout_seed_states_travel_with_the_state_dict():
    net, _ = build_transfer("keras:EfficientNetB0", input_shape=(3, 32, 32), num_classes=2)
    assert any(k.endswith("seed_generator_state") for k in net.state_dict())
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 3, 32, 32)
    net.train()
    with torch.no_grad():
        first = net(x)
        assert not torch.equal(first, net(x))  # dropout drew new masks: the seed state moved on
        net.load_state_dict(saved)
        assert torch.equal(first, net(x))  # restored state, same masks: a resumed run repeats itself


def test_unnamed_stages_get_stable_names_and_several_processes_are_refused(monkeypatch):
    from cnnkit.errors import ConfigError
    from cnnkit.train import distributed

    net, _ = build_transfer("keras:InceptionV3", input_shape=(3, 75, 75), num_classes=2)
    assert net.block_groups == ["part1", "part2", "part3", "part4", "part5", "head"]
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ConfigError, match="several processes"):
        distributed.wrap_model(net, torch.device("cpu"))
