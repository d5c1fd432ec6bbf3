"""Export to ONNX / TorchScript and the three runtimes: outputs agree with PyTorch within 1e-4."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import timm
import torch
import torchvision
from PIL import Image

from cnnkit.api import predict
from cnnkit.cli import main
from cnnkit.deploy import (
    export_model,
    export_onnx,
    export_torchscript,
    open_runtime,
    predict_images,
    preprocess,
)
from cnnkit.deploy.export import verify
from cnnkit.errors import ConfigError, ModelError
from cnnkit.models.bundle import BundleMeta, save_bundle
from cnnkit.models.registry import create_model


def _meta(model, shape, classes):
    return BundleMeta(getattr(model, "cnnkit_arch", {"source": "test", "name": type(model).__name__}), list(shape),
                      [f"class{i}" for i in range(classes)], [0.5] * shape[0], [0.25] * shape[0])


def _models():
    torch.manual_seed(0)
    yield "builtin", create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10), (1, 28, 28)
    # 'same' with stride 2 pads unevenly: a ZeroPad2d in front of the conv; avgpool; global pooling
    spec = "conv8-3-s2-same,bn,relu,avgpool2,conv16-3,leaky_relu,dropout0.2,gap,dense5"
    yield "spec", create_model(spec, input_shape=(3, 32, 32), num_classes=5), (3, 32, 32)
    yield "torchvision", torchvision.models.resnet18(weights=None, num_classes=7), (3, 64, 64)
    yield "timm", timm.create_model("resnet18", pretrained=False, num_classes=6), (3, 64, 64)


MODELS = list(_models())


@pytest.mark.parametrize("kind,model,shape", MODELS, ids=[m[0] for m in MODELS])
def test_onnx_export_runs_in_onnxruntime_and_opencv_like_pytorch(kind, model, shape, tmp_path):
    model.eval()
    classes = model(torch.zeros(1, *shape)).shape[1]
    meta = _meta(model, shape, classes)
    result = export_onnx(model, meta, tmp_path / f"{kind}.onnx")
    assert set(result.differences) == {"onnxruntime", "opencv"}  # the export checked itself in both
    proto = onnx.load(str(result.path))
    assert proto.opset_import[0].version == 17
    props = {p.key: p.value for p in proto.metadata_props}
    stored = json.loads(props["cnnkit"])
    assert stored["input_shape"] == list(shape) and stored["class_names"] == meta.class_names
    assert json.loads(props["mean"]) == meta.mean and json.loads(props["std"]) == meta.std
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(5))  # a batch size not exported
    with torch.no_grad():
        reference = model(x).numpy()
    for runtime in ("onnxruntime", "opencv"):
        rt = open_runtime(result.path, runtime)
        assert rt.info.input_shape == list(shape) and rt.info.class_names == meta.class_names
        np.testing.assert_allclose(rt.run(x.numpy()), reference, atol=1e-4, rtol=0)
        np.testing.assert_allclose(rt.run(x[:1].numpy()), reference[:1], atol=1e-4, rtol=0)


def test_torchscript_export_keeps_the_preprocessing_and_any_batch_size(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()
    result = export_torchscript(model, _meta(model, (1, 28, 28), 10), tmp_path / "m.pt")
    assert result.differences == {"torch": 0.0}
    rt = open_runtime(result.path)
    assert rt.info.mean == [0.5] and rt.info.class_names[3] == "class3"
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(rt.run(x.numpy()), model(x).numpy(), atol=1e-5)


@pytest.fixture
def bundle_and_images(tmp_path):
    torch.manual_seed(0)
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10)
    with torch.no_grad():  # batch-norm statistics that are not the identity, so they are really exported
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    folder = save_bundle(model, tmp_path / "bundle", _meta(model, (1, 28, 28), 10))
    rng = np.random.default_rng(0)
    images = []
    for i, mode in enumerate(["L", "RGB", "L"]):
        size = (28, 28) if i != 1 else (40, 33)  # a colour image of another size gets converted
        array = rng.integers(0, 256, size=(*size, 3) if mode == "RGB" else size, dtype=np.uint8)
        Image.fromarray(array, mode=mode).save(tmp_path / f"img{i}.png")
        images.append(tmp_path / f"img{i}.png")
    return folder, images


def test_every_runtime_gives_the_same_logits_for_a_bundle(bundle_and_images):
    folder, images = bundle_and_images
    from cnnkit.data.images import load_image

    batch = torch.stack([load_image(p, 1, (28, 28)) for p in images])
    outputs = {}
    for runtime in ("torch", "onnxruntime", "opencv"):
        rt = open_runtime(folder, runtime)
        outputs[runtime] = rt.run(preprocess(batch, rt.info))
    np.testing.assert_allclose(outputs["onnxruntime"], outputs["torch"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(outputs["opencv"], outputs["torch"], atol=1e-4, rtol=0)
    assert np.abs(outputs["torch"]).max() > 0.1  # not trivially zero


def test_predict_through_each_runtime_and_file_agrees_with_the_torch_path(bundle_and_images, tmp_path):
    folder, images = bundle_and_images
    onnx_file = export_model(folder, format="onnx", out=tmp_path / "m.onnx").path
    pt_file = export_model(folder, format="torchscript", out=tmp_path / "m.pt").path
    baseline = predict(folder, images, top_k=10)  # the spine's own torch path
    runs = [(folder, "onnxruntime"), (folder, "opencv"), (onnx_file, None), (onnx_file, "opencv"), (pt_file, None)]
    for path, runtime in runs:
        results = predict(path, images, top_k=10, runtime=runtime)
        for got, want in zip(results, baseline, strict=True):
            assert [t["index"] for t in got["top"]] == [t["index"] for t in want["top"]]
            for a, b in zip(got["top"], want["top"], strict=True):
                assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)
    assert predict_images(onnx_file, images[:1])[0]["runtime"] == "onnxruntime"


def test_export_and_predict_cli(bundle_and_images, tmp_path, capsys):
    folder, images = bundle_and_images
    out = tmp_path / "model.onnx"
    assert main(["export", str(folder), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "opset 17" in printed and "opencv" in printed and "onnxruntime" in printed
    assert main(["predict", str(out), str(images[0]), "--runtime", "opencv", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["runtime"] == "opencv" and len(line["top"]) == 3
    assert main(["export", str(folder), "--format", "torchscript"]) == 0  # default: model.pt in the bundle
    assert (folder / "model.pt").is_file()
    assert main(["predict", str(out), str(images[0]), "--runtime", "torch"]) == 2
    assert "ONNX file" in capsys.readouterr().err
    assert main(["export", str(folder), "--out", str(tmp_path / "model.bin")]) == 2


def test_an_export_that_disagrees_with_pytorch_is_refused(tmp_path):
    torch.manual_seed(0)
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()
    meta = _meta(model, (1, 28, 28), 10)
    result = export_onnx(model, meta, tmp_path / "m.onnx")
    other = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()  # other weights
    with pytest.raises(ModelError, match="disagrees with PyTorch in onnxruntime"):
        verify(other, meta, result)


def test_foreign_onnx_files_and_bad_paths_give_clear_errors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()).eval()
    plain = tmp_path / "plain.onnx"
    with pytest.warns(DeprecationWarning):  # the classic exporter announces its deprecation
        torch.onnx.export(model, (torch.zeros(1, 1, 5, 5),), str(plain), dynamo=False, opset_version=17)
    with pytest.raises(ModelError, match="no cnnkit metadata"):
        open_runtime(plain, "onnxruntime")
    with pytest.raises(ModelError, match="no such ONNX file"):
        open_runtime(tmp_path / "missing.onnx", "opencv")
    with pytest.raises(ConfigError, match="unknown runtime"):
        open_runtime(plain, "tensorrt")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        open_runtime(broken, "onnxruntime")


@pytest.mark.parametrize("name", ["tv:resnet18", "timm:resnet18"])
def test_registry_models_export_from_their_bundles(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, input_shape=(3, 32, 32), num_classes=4)
    folder = save_bundle(model, tmp_path / "bundle", _meta(model, (3, 32, 32), 4))
    result = export_model(folder, format="onnx")  # rebuilt from the bundle, checked in both runtimes
    assert result.path == folder / "model.onnx" and max(result.differences.values()) <= 1e-4
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (70, 60, 3), dtype=np.uint8), mode="RGB").save(image)
    want = predict(folder, [image], top_k=4)[0]["top"]
    got = predict(result.path, [image], top_k=4, runtime="opencv")[0]["top"]
    assert [t["index"] for t in got] == [t["index"] for t in want]
    assert [t["probability"] for t in got] == pytest.approx([t["probability"] for t in want], abs=1e-4)


def test_a_rejected_export_leaves_the_previous_file_in_place(tmp_path, monkeypatch):
    from cnnkit.deploy import export as export_module

    torch.manual_seed(0)
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()
    meta = _meta(model, (1, 28, 28), 10)
    good = export_onnx(model, meta, tmp_path / "m.onnx")
    before = good.path.read_bytes()
    assert good.differences["onnxruntime"] <= 1e-4

    def disagree(model, meta, result):
        raise ModelError("the exported onnx file disagrees with PyTorch")

    monkeypatch.setattr(export_module, "verify", disagree)
    with pytest.raises(ModelError, match="disagrees"):
        export_onnx(model, meta, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == before  # the checked file is still there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left behind
