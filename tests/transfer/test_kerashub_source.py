"""KerasHub image classifiers (kerashub:PRESET) through Keras 3's PyTorch backend, from presets written here."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers_transfer import tiny_splits

import cnnkit
from cnnkit.errors import ModelError
from cnnkit.models import list_models
from cnnkit.models.adapt import TransferNet
from cnnkit.models.pretrained import build_transfer
from cnnkit.models.registry import INSTALL_COMMANDS
from cnnkit.models.sources_keras import _keras
from cnnkit.transfer.finetune import finetune
from conftest import need_package

keras = _keras()  # the PyTorch backend first: keras_hub imports keras
keras_hub = need_package("keras_hub", INSTALL_COMMANDS["kerashub"])
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NAME = "resnet_18_imagenet"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A small ResNet classifier (5 classes, random weights, ImageNet normalisation) saved by `save_to_preset`."""
    keras.utils.set_random_seed(3)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3))
    converter = keras_hub.layers.ResNetImageConverter(  # as the ImageNet presets: ImageNet's mean/std on 0-255
        image_size=(32, 32), scale=[1 / (255 * s) for s in IMAGENET_STD],
        offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)])
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=5,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter))
    folder = tmp_path_factory.mktemp("kerashub") / "tiny_resnet"
    classifier.save_to_preset(str(folder))
    return folder, classifier


def keras_logits(classifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's own answer for 0-255 NHWC images: its preprocessor (image converter), then the model."""
    return keras.ops.convert_to_numpy(classifier(classifier.preprocessor(images), training=False))


def test_preset_folder_gives_keras_own_outputs_trains_and_reloads(preset, tmp_path):
    folder, classifier = preset
    assert {"config.json", "model.weights.h5", "metadata.json", "task.json", "task.weights.h5",
            "preprocessor.json", "image_converter.json"} <= {p.name for p in folder.iterdir()}
    net, plan = build_transfer(f"kerashub:{NAME}", input_shape=(3, 32, 32), num_classes=5, weights=str(folder))
    assert plan.loaded == f"kerashub:{NAME} weights from {folder}"
    assert plan.mean == pytest.approx(IMAGENET_MEAN) and plan.std == pytest.approx(IMAGENET_STD)
    assert plan.recommended_size == (32, 32) and plan.resize is None
    assert plan.removed == "predictions" and plan.num_features == 32
    assert net.block_groups == ["conv1", "stack0", "stack1", "head"]
    assert net.cnnkit_arch.kwargs["base"] == {"source": "kerashub", "name": str(folder.resolve())}

    # With the preset's own Dense as the new head, cnnkit's normalisation + the cut network = KerasHub's answer.
    dense = classifier.get_layer("predictions")
    linear = [m for m in net.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        linear.weight.copy_(dense.kernel.value.T)
        linear.bias.copy_(dense.bias.value)
    images = torch.randint(0, 256, (4, 32, 32, 3)).float()
    x = (images.permute(0, 3, 1, 2) / 255 - torch.tensor(plan.mean).view(1, 3, 1, 1)) / torch.tensor(
        plan.std).view(1, 3, 1, 1)
    net.eval()
    with torch.no_grad():
        ours = net(x)
    assert ours.numpy() == pytest.approx(keras_logits(classifier, images), abs=1e-5)

    # One training step in cnnkit's loop changes the Keras weights; the bundle rebuilds from the folder.
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    run = finetune(f"kerashub:{NAME}", tiny_splits(8, shape=(3, 32, 32), classes=2), weights=str(folder),
                   strategy="full", epochs=1, batch_size=8, lr=1e-2, out=str(tmp_path / "runs"),
                   log=lambda *a: None, live=False)
    trained = cnnkit.load(run.run_dir / "last")
    assert isinstance(trained, TransferNet) and type(trained.backbone).__name__ == "KerasBackbone"
    after = trained.backbone.state_dict()
    conv = next(k for k in before if k.endswith("kernel"))
    assert not torch.equal(after[conv], before[conv])
    with torch.no_grad():  # a second rebuild in this process: the same parameter names, the same answer
        assert torch.equal(trained.eval()(x), cnnkit.load(run.run_dir / "last").eval()(x))


def test_grey_images_and_the_preset_folder_as_the_model(preset):
    folder, _ = preset
    net, plan = build_transfer(f"kerashub:{folder}", input_shape=(1, 28, 28), num_classes=3, weights="imagenet")
    assert plan.resize == (32, 32) and plan.mean == (pytest.approx(sum(IMAGENET_MEAN) / 3),)
    assert "repeated to the 3 channels" in plan.adapted_channels
    x = torch.rand(2, 1, 32, 32)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net.backbone(x), net.backbone(x.expand(-1, 3, -1, -1)))
    random, info = build_transfer(f"kerashub:{folder}", input_shape=(3, 32, 32), num_classes=3)
    assert "random weights" in info.loaded and info.mean is None  # no weights: the data's own normalisation
    with pytest.raises(ModelError, match="not a KerasHub preset folder"):
        build_transfer(f"kerashub:{NAME}", input_shape=(3, 32, 32), num_classes=3, weights=str(folder.parent))
    with pytest.raises(ModelError, match="did you mean resnet_18_imagenet"):
        build_transfer("kerashub:resnet_19_imagenet", input_shape=(3, 32, 32), num_classes=3)


def test_a_named_preset_comes_from_kagglehub_cache(preset, tmp_path, monkeypatch):
    kagglehub = need_package("kagglehub", INSTALL_COMMANDS["kerashub"])
    from kagglehub.cache import get_cached_path
    from kagglehub.handle import parse_model_handle

    from cnnkit.models.sources_kerashub import presets

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    handle = presets()[NAME]["kaggle_handle"]
    # The folder kagglehub itself downloads this preset into.
    place = tmp_path / "kaggle" / "models" / "keras" / "resnetv1" / "keras" / NAME / handle.rsplit("/", 1)[1]
    assert get_cached_path(parse_model_handle(handle.removeprefix("kaggle://"))) == str(place)
    assert kagglehub.config.get_cache_folder() == str(tmp_path / "kaggle")
    assert "weights from Kaggle" in dict((n, d) for n, _, d in list_models(NAME, source="kerashub"))[
        f"kerashub:{NAME}"]

    shutil.copytree(preset[0], place)
    net, plan = build_transfer(f"kerashub:{NAME}", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")
    assert plan.loaded == f"kerashub:{NAME} weights from KerasHub's cache ({place})"
    assert net.cnnkit_arch.kwargs["base"] == {"source": "kerashub", "name": NAME}
    assert "weights cached" in dict((n, d) for n, _, d in list_models(NAME, source="kerashub"))[f"kerashub:{NAME}"]


def test_named_preset_missing_offline_names_its_files_and_folder(tmp_path, monkeypatch, capsys):
    from cnnkit.cli import main

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    with pytest.raises(ModelError) as err:
        build_transfer(f"kerashub:{NAME}", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")
    message = str(err.value)
    assert "\n" not in message and "CNNKIT_OFFLINE=1" in message
    for file in ("config.json", "model.weights.h5", "metadata.json", "task.json", "task.weights.h5",
                 "preprocessor.json", "image_converter.json"):
        assert file in message
    folder = tmp_path / "kaggle" / "models" / "keras" / "resnetv1" / "keras" / NAME
    assert f" into {folder}/" in message and f"kaggle://keras/resnetv1/keras/{NAME}/" in message
    rc = main(["finetune", "--model", f"kerashub:{NAME}", "--weights", "imagenet", "--data", "digits",
               "--limit", "20", "--out", str(tmp_path / "runs")])
    assert rc == 2 and str(folder) in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("scale, offset, mean, std", [(1 / 255, None, 0.0, 1.0), (1 / 127.5, -1.0, 0.5, 0.5),
                                                      (1.0, None, 0.0, 1 / 255)])
def test_image_converter_becomes_mean_and_std(preset, tmp_path, scale, offset, mean, std):
    from cnnkit.models.sources_kerashub import _normalisation

    folder = tmp_path / "preset"
    shutil.copytree(preset[0], folder)
    config = json.loads((folder / "image_converter.json").read_text())
    config["config"].update(scale=scale, offset=offset, image_size=[64, 48])
    (folder / "image_converter.json").write_text(json.dumps(config))
    got = _normalisation(keras_hub, folder)
    assert got["mean"] == pytest.approx((mean,) * 3) and got["std"] == pytest.approx((std,) * 3)
    assert got["recommended_size"] == (64, 48)


def test_without_keras_hub_the_listing_says_how_to_install_it(monkeypatch, capsys):
    import sys

    from cnnkit.cli import main

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # as if keras-hub were not installed
    assert main(["models", "--source", "kerashub"]) == 2
    assert "pip install --no-deps 'keras-hub" in capsys.readouterr().err
