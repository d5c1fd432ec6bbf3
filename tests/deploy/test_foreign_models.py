"""Foreign models: files cnnkit did not export, read by OpenCV DNN with preprocessing given by the user.

Each test writes a tiny model in the real format (plain torch.onnx.export; a Caffe prototxt + binary
caffemodel; a Darknet .cfg + .weights; a TensorFlow frozen GraphDef .pb), runs it through
`cnnkit.predict` and checks it against the same net with the same weights in PyTorch, fed the blob
OpenCV's own blobFromImage makes. OpenCV 5 removed the Caffe, Darknet and TensorFlow importers: the [export] extra pins OpenCV 4.x,
those tests fail (under CI) or skip without it, and OpenCV 5's message is checked with a stand-in readNet.
"""

from __future__ import annotations

import struct
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnkit
from cnnkit.cli import main
from cnnkit.deploy.runtimes import ForeignOpenCVRuntime, open_runtime
from cnnkit.errors import CnnkitError, ConfigError, ModelError
from conftest import unavailable

OPENCV_4 = int(cv2.__version__.split(".")[0]) < 5


def needs_opencv_4(test):
    """OpenCV 5 removed the Caffe, Darknet and TensorFlow importers; the [export] extra pins 4.x."""
    import functools

    @functools.wraps(test)
    def run(*args, **kwargs):
        if not OPENCV_4:
            unavailable(f"OpenCV 4.x (found {cv2.__version__}, which cannot read this format)",
                        "pip install 'opencv-python-headless<5'")
        return test(*args, **kwargs)

    return run
LABELS = ["apple", "bear", "cat", "dog", "eel"]


def _image(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _opencv_blob(path, scale, size, mean, swap_rb, std=None, crop=False):
    """What OpenCV's samples/dnn/classification.py feeds the net for this file."""
    blob = cv2.dnn.blobFromImage(cv2.imread(str(path)), scale, size, mean, swap_rb, crop=crop)
    if std is not None:
        blob[0] /= np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return blob


def _torch_logits(model, blob):
    with torch.no_grad():
        return model(torch.from_numpy(blob)).numpy()


def _probabilities(top):
    return {t["class"]: t["probability"] for t in top}


class Small(nn.Module):
    def __init__(self, c=3, classes=5, softmax=False):
        super().__init__()
        self.conv = nn.Conv2d(c, 4, 3)
        self.fc = nn.Linear(4, classes)
        self.softmax = softmax

    def forward(self, x):
        x = torch.relu(self.conv(x)).mean((2, 3))
        x = self.fc(x)
        return x.softmax(1) if self.softmax else x


# --------------------------------------------------------------------------- ONNX


@pytest.fixture
def plain_onnx(tmp_path):
    torch.manual_seed(0)
    model = Small().eval()
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 16, 12),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return model, path


def test_plain_onnx_with_a_yaml_predicts_like_pytorch_on_opencvs_blob(plain_onnx, tmp_path):
    model, path = plain_onnx
    (tmp_path / "net.cnnkit.yaml").write_text(
        "size: 12x16\nscale: 0.017\nmean: [123.68, 116.78, 103.94]\nstd: [0.9, 1.1, 1.0]\n"
        "swap_rb: true\nlabels: labels.txt\n")
    image = _image(tmp_path / "photo.png", 30, 20)  # another size: resized (stretched) as OpenCV does
    rt = open_runtime(path)
    assert isinstance(rt, ForeignOpenCVRuntime) and rt.info.input_shape == [3, 16, 12]
    assert rt.info.class_names == LABELS
    blob = _opencv_blob(image, 0.017, (12, 16), (123.68, 116.78, 103.94), True, std=[0.9, 1.1, 1.0])
    ours = rt.batch([rt.read_image(image)])
    assert np.abs(ours - blob).max() < 1e-5  # the same blob OpenCV makes from cv2.imread
    reference = _torch_logits(model, blob)
    assert np.abs(rt.run(ours) - reference).max() < 1e-4
    [record] = cnnkit.predict(path, [image], top_k=5)
    expected = torch.from_numpy(reference).softmax(1)[0]
    assert record["runtime"] == "opencv"
    assert record["top"][0]["class"] == LABELS[int(expected.argmax())]
    for name, p in _probabilities(record["top"]).items():
        assert abs(p - float(expected[LABELS.index(name)])) < 1e-5


def test_the_arithmetic_is_pixel_minus_mean_times_scale_over_std_in_the_models_channel_order(plain_onnx, tmp_path):
    model, path = plain_onnx
    image = _image(tmp_path / "exact.png", 12, 16, seed=3)  # already the input size: no resizing
    rgb = np.asarray(Image.open(image), dtype=np.float32)
    pre = {"size": "12x16", "scale": "1/255", "mean": "10,20,30", "std": "0.5"}
    for swap_rb, order in ((True, [0, 1, 2]), (False, [2, 1, 0])):  # swap_rb: RGB; else BGR as imread gives
        rt = open_runtime(path, preprocessing={**pre, "swap_rb": swap_rb})
        by_hand = ((rgb[:, :, order] - [10, 20, 30]) / 255 / 0.5).transpose(2, 0, 1)[None]
        assert np.abs(rt.batch([rt.read_image(image)]) - by_hand).max() < 1e-5
    # cnnkit's own convention, (pixel / 255 - mean) / std, describes the same arithmetic
    assert rt.info.mean == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    assert rt.info.std == pytest.approx([0.5, 0.5, 0.5])


def test_flags_override_the_yaml_and_crop_and_grey_models_work(plain_onnx, tmp_path):
    _, path = plain_onnx
    (tmp_path / "net.cnnkit.yaml").write_text("size: 12x16\nscale: 1\n")
    image = _image(tmp_path / "wide.png", 64, 16)
    rt = open_runtime(path, preprocessing={"crop": True, "mean": "127.5", "scale": "0.0078125"})
    blob = _opencv_blob(image, 0.0078125, (12, 16), (127.5, 127.5, 127.5), False, crop=True)
    assert np.abs(rt.batch([rt.read_image(image)]) - blob).max() < 1e-5
    assert rt.info.class_names == ["0", "1", "2", "3", "4"]  # no labels: the output index
    tiny = _image(tmp_path / "tiny.png", 2, 3)  # smaller than the input: resized, fine
    assert len(cnnkit.predict(path, [tiny])[0]["top"]) == 3
    grey = tmp_path / "grey.onnx"
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Small(c=1).eval(), (torch.zeros(1, 1, 8, 8),), str(grey), dynamo=False, opset_version=17)
    record = cnnkit.predict(grey, [image], preprocessing={"size": 8, "channels": 1, "scale": 1 / 255})[0]
    assert record["top"][0]["class"] in list("01234")


def test_cli_predicts_a_foreign_onnx_with_flags(plain_onnx, tmp_path, capsys):
    model, path = plain_onnx
    image = _image(tmp_path / "photo.png", 12, 16)
    assert main(["predict", str(path), str(image), "--size", "12x16", "--scale", "1/255", "--mean", "0.5",
                 "--swap-rb", "--labels", str(tmp_path / "labels.txt"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    blob = _opencv_blob(image, 1 / 255, (12, 16), (0.5, 0.5, 0.5), True)
    best = LABELS[int(_torch_logits(model, blob).argmax())]
    assert out.startswith(f"{image}: {best} ")


def test_a_cnnkit_export_still_reads_its_own_metadata(tmp_path):
    from cnnkit.deploy.runtimes import OnnxRuntime, OpenCVRuntime
    from cnnkit.models import BundleMeta, create_model, save_bundle

    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=3).eval()
    bundle = save_bundle(model, tmp_path / "b", BundleMeta(model.cnnkit_arch, [1, 28, 28], list("abc"), [0.5], [0.25]))
    path = cnnkit.export(bundle, format="onnx", out=tmp_path / "m.onnx").path
    assert isinstance(open_runtime(path), OnnxRuntime)
    assert isinstance(open_runtime(path, "opencv"), OpenCVRuntime)
    with pytest.raises(ConfigError, match="for foreign model files"):
        open_runtime(bundle, preprocessing={"size": "8x8"})


# --------------------------------------------------------------------------- errors


def test_a_foreign_model_without_preprocessing_says_exactly_what_is_needed(plain_onnx, tmp_path, capsys):
    _, path = plain_onnx
    with pytest.raises(ConfigError) as e:
        cnnkit.predict(path, [tmp_path / "x.png"])
    message = str(e.value)
    for needed in ("--size", "--scale", "--mean", "--std", "--swap-rb", "--labels", "net.cnnkit.yaml",
                   "size: 224x224", "swap_rb: true", "labels: labels.txt"):
        assert needed in message
    assert main(["predict", str(path), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "--size" in err
    with pytest.raises(ConfigError, match="input size is missing"):
        open_runtime(path, preprocessing={"scale": "1/255"})
    with pytest.raises(ConfigError, match="mean has 2 values for a 3-channel model"):
        open_runtime(path, preprocessing={"size": "12x16", "mean": "1,2"})
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    with pytest.raises(ConfigError, match="gives 5 outputs but the labels"):
        open_runtime(path, preprocessing={"size": "12x16", "labels": str(tmp_path / "three.txt")})
    with pytest.raises(ModelError, match="cannot run on a 3x2x2 input"):
        open_runtime(path, preprocessing={"size": "2x2"})


def test_a_missing_second_file_is_named(tmp_path):
    (tmp_path / "net.prototxt").write_text('name: "x"\n')
    with pytest.raises(ModelError, match=r"net\.caffemodel.*--config FILE\.caffemodel"):
        open_runtime(tmp_path / "net.prototxt", preprocessing={"size": "8x8"})
    (tmp_path / "yolo.weights").write_bytes(b"\0" * 20)
    with pytest.raises(ModelError, match=r"yolo\.cfg"):
        open_runtime(tmp_path / "yolo.weights", preprocessing={"size": "8x8"})
    with pytest.raises(ModelError, match=r"goes with .*other\.cfg, which does not exist"):
        open_runtime(tmp_path / "yolo.weights", preprocessing={"size": "8x8", "config": str(tmp_path / "other.cfg")})


def test_a_file_opencv_cannot_parse_gives_opencvs_reason_in_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x01 certainly not a model \xff")
    with pytest.raises(ModelError, match=r"OpenCV DNN cannot read garbage\.onnx as a ONNX model: .*parse"):
        open_runtime(garbage, preprocessing={"size": "8x8"})
    image = _image(tmp_path / "i.png", 8, 8)
    assert main(["predict", str(garbage), str(image), "--size", "8x8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "OpenCV DNN cannot read" in err and "in function" not in err


def test_opencv_5_says_which_opencv_reads_caffe_files(tmp_path, monkeypatch):
    def removed(*args):  # what OpenCV 5's readNet raises for a Caffe file
        raise cv2.error("OpenCV(5.1.0) importer.cpp:42: error: (-213:The function/feature is not implemented) "
                        "Caffe importer has been removed. in function 'readNet'")

    monkeypatch.setattr(cv2.dnn, "readNet", removed)
    (tmp_path / "net.prototxt").write_text('name: "x"\n')
    (tmp_path / "net.caffemodel").write_bytes(b"")
    with pytest.raises(ModelError, match=r"cannot read Caffe files .*opencv-python-headless<5"):
        open_runtime(tmp_path / "net.prototxt", preprocessing={"size": "8x8"})


# --------------------------------------------------------------------------- protobuf by hand


def _messages(package: str, syntax: str, spec: dict[str, list[tuple]]) -> dict:
    """Message classes from a hand-written descriptor: {message: [(field, number, type, label, type_name)]};
    a message name containing '.' is nested (map entries)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=f"{package}_by_hand.proto", package=package, syntax=syntax)
    made = {}
    for name, fields in spec.items():
        outer, _, inner = name.partition(".")
        msg = (made[outer].nested_type.add(name=inner) if inner else file.message_type.add(name=name))
        if inner:
            msg.options.map_entry = True
        made[name] = msg
        for field, number, ftype, label, *type_name in fields:
            f = msg.field.add(name=field, number=number, type=getattr(F, f"TYPE_{ftype.upper()}"),
                              label=getattr(F, f"LABEL_{label.upper()}"))
            if type_name:
                f.type_name = f".{package}.{type_name[0]}"
            if ftype in ("float", "int64", "int32") and label == "repeated":
                f.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in spec if "." not in name}


# --------------------------------------------------------------------------- Caffe

CAFFE = {  # the fields of BVLC caffe.proto that a caffemodel's weights need
    "BlobShape": [("dim", 1, "int64", "repeated")],
    "BlobProto": [("shape", 7, "message", "optional", "BlobShape"), ("data", 5, "float", "repeated")],
    "LayerParameter": [("name", 1, "string", "optional"), ("type", 2, "string", "optional"),
                       ("bottom", 3, "string", "repeated"), ("top", 4, "string", "repeated"),
                       ("blobs", 7, "message", "repeated", "BlobProto")],
    "NetParameter": [("name", 1, "string", "optional"), ("layer", 100, "message", "repeated", "LayerParameter")],
}

CAFFE_PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


class CaffeTwin(nn.Module):  # Convolution + ReLU + InnerProduct (+ Softmax) in PyTorch
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _write_caffe(folder):
    torch.manual_seed(2)
    twin = CaffeTwin().eval()
    m = _messages("caffe", "proto2", CAFFE)
    net = m["NetParameter"](name="tiny")
    for name, tensors in (("conv1", (twin.conv.weight, twin.conv.bias)), ("fc", (twin.fc.weight, twin.fc.bias))):
        layer = net.layer.add(name=name, type="Convolution" if name == "conv1" else "InnerProduct")
        for t in tensors:
            blob = layer.blobs.add()
            blob.shape.dim.extend(t.shape)
            blob.data.extend(t.detach().numpy().ravel().tolist())
    (folder / "tiny.prototxt").write_text(CAFFE_PROTOTXT)
    (folder / "tiny.caffemodel").write_bytes(net.SerializeToString())
    return twin


@needs_opencv_4
def test_caffe_prototxt_and_caffemodel_predict_like_pytorch(tmp_path):
    twin = _write_caffe(tmp_path)
    (tmp_path / "labels.txt").write_text("\n".join(LABELS))
    (tmp_path / "tiny.cnnkit.yaml").write_text("size: 8x8\nmean: [104, 117, 123]\nswap_rb: false\n"
                                               "labels: labels.txt\n")
    image = _image(tmp_path / "photo.jpg", 10, 10)
    rt = open_runtime(tmp_path / "tiny.prototxt")  # the caffemodel is found beside it
    assert rt.format == "Caffe" and rt.config_path.name == "tiny.caffemodel"
    blob = _opencv_blob(image, 1.0, (8, 8), (104, 117, 123), False)
    logits = _torch_logits(twin, blob)
    probabilities = torch.from_numpy(logits).softmax(1).numpy()
    assert np.abs(rt.raw(blob) - probabilities).max() < 1e-5  # the net ends in Softmax
    assert np.abs(rt.run(blob) - torch.from_numpy(logits).log_softmax(1).numpy()).max() < 1e-4
    [record] = cnnkit.predict(tmp_path / "tiny.caffemodel", [image], top_k=5)  # either file names the model
    assert record["top"][0]["class"] == LABELS[int(logits.argmax())]
    for name, p in _probabilities(record["top"]).items():  # shown as the net's own probabilities
        assert abs(p - probabilities[0, LABELS.index(name)]) < 1e-5


# --------------------------------------------------------------------------- Darknet

DARKNET_CFG = """[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=0
filters=4
size=3
stride=1
pad=1
activation=leaky

[connected]
output=5
activation=linear
"""


class DarknetTwin(nn.Module):  # conv 3x3 'same' + leaky 0.1, then a fully connected layer
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(nn.functional.leaky_relu(self.conv(x), 0.1).flatten(1))


def _write_darknet(folder):
    torch.manual_seed(3)
    twin = DarknetTwin().eval()
    (folder / "tiny.cfg").write_text(DARKNET_CFG)
    # header: major, minor, revision (int32), seen (int64 from version 0.2); then per layer
    # in order: conv (no batch norm) biases then weights; connected biases then weights
    parts = [struct.pack("<iiiq", 0, 2, 0, 0)]
    for t in (twin.conv.bias, twin.conv.weight, twin.fc.bias, twin.fc.weight):
        parts.append(t.detach().numpy().astype("<f4").tobytes())
    (folder / "tiny.weights").write_bytes(b"".join(parts))
    return twin


@needs_opencv_4
def test_darknet_cfg_and_weights_predict_like_pytorch(tmp_path):
    twin = _write_darknet(tmp_path)
    image = _image(tmp_path / "photo.png", 8, 8)
    rt = open_runtime(tmp_path / "tiny.cfg", preprocessing={"size": "8x8", "scale": "1/255", "swap_rb": True})
    assert rt.format == "Darknet" and rt.config_path.name == "tiny.weights"
    blob = _opencv_blob(image, 1 / 255, (8, 8), (0, 0, 0), True)
    logits = _torch_logits(twin, blob)
    assert np.abs(rt.run(blob) - logits).max() < 1e-4
    [record] = cnnkit.predict(tmp_path / "tiny.weights", [image], preprocessing={"size": "8x8", "scale": "1/255",
                                                                                 "swap_rb": True})
    assert record["top"][0]["class"] == str(int(logits.argmax()))


# --------------------------------------------------------------------------- TensorFlow

TF = {  # the fields of tensorflow's graph.proto / node_def.proto / attr_value.proto / tensor.proto used here
    "Dim": [("size", 1, "int64", "optional"), ("name", 2, "string", "optional")],
    "TensorShapeProto": [("dim", 2, "message", "repeated", "Dim")],
    "TensorProto": [("dtype", 1, "int32", "optional"), ("tensor_shape", 2, "message", "optional", "TensorShapeProto"),
                    ("tensor_content", 4, "bytes", "optional"), ("int_val", 7, "int32", "repeated")],
    "ListValue": [("i", 3, "int64", "repeated")],
    "AttrValue": [("list", 1, "message", "optional", "ListValue"), ("s", 2, "bytes", "optional"),
                  ("i", 3, "int64", "optional"), ("b", 5, "bool", "optional"), ("type", 6, "int32", "optional"),
                  ("shape", 7, "message", "optional", "TensorShapeProto"),
                  ("tensor", 8, "message", "optional", "TensorProto")],
    "NodeDef": [("name", 1, "string", "optional"), ("op", 2, "string", "optional"),
                ("input", 3, "string", "repeated"), ("attr", 5, "message", "repeated", "NodeDef.AttrEntry")],
    "NodeDef.AttrEntry": [("key", 1, "string", "optional"), ("value", 2, "message", "optional", "AttrValue")],
    "VersionDef": [("producer", 1, "int32", "optional")],
    "GraphDef": [("node", 1, "message", "repeated", "NodeDef"), ("versions", 4, "message", "optional", "VersionDef")],
}
DT_FLOAT, DT_INT32 = 1, 3


def _write_tensorflow(folder):
    """Placeholder (NHWC) -> Conv2D VALID + BiasAdd -> Relu -> Mean over H, W -> MatMul + BiasAdd."""
    torch.manual_seed(4)
    twin = Small().eval()
    m = _messages("tensorflow", "proto3", TF)
    graph = m["GraphDef"]()
    graph.versions.producer = 27

    def node(name, op, inputs=(), **attrs):
        n = graph.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, value in attrs.items():
            n.attr[key].CopyFrom(value)

    def attr(**kw):
        return m["AttrValue"](**kw)

    def const(name, array, dtype=DT_FLOAT):
        t = m["TensorProto"](dtype=dtype, tensor_content=array.tobytes())
        for d in array.shape:
            t.tensor_shape.dim.add(size=d)
        node(name, "Const", dtype=attr(type=dtype), value=attr(tensor=t))

    f = attr(type=DT_FLOAT)
    shape = m["TensorShapeProto"]()
    for d in (-1, 8, 8, 3):
        shape.dim.add(size=d)
    node("input", "Placeholder", dtype=f, shape=attr(shape=shape))
    const("conv/w", twin.conv.weight.detach().numpy().transpose(2, 3, 1, 0).astype("<f4").copy())  # HWIO
    const("conv/b", twin.conv.bias.detach().numpy().astype("<f4"))
    node("conv", "Conv2D", ["input", "conv/w"], T=f, strides=attr(list=m["ListValue"](i=[1, 1, 1, 1])),
         padding=attr(s=b"VALID"), data_format=attr(s=b"NHWC"))
    node("conv/bias", "BiasAdd", ["conv", "conv/b"], T=f, data_format=attr(s=b"NHWC"))
    node("relu", "Relu", ["conv/bias"], T=f)
    const("axes", np.array([1, 2], dtype="<i4"), DT_INT32)
    node("pool", "Mean", ["relu", "axes"], T=f, Tidx=attr(type=DT_INT32), keep_dims=attr(b=False))
    const("fc/w", twin.fc.weight.detach().numpy().T.astype("<f4").copy())
    const("fc/b", twin.fc.bias.detach().numpy().astype("<f4"))
    node("fc", "MatMul", ["pool", "fc/w"], T=f, transpose_a=attr(b=False), transpose_b=attr(b=False))
    node("logits", "BiasAdd", ["fc", "fc/b"], T=f, data_format=attr(s=b"NHWC"))
    (folder / "frozen.pb").write_bytes(graph.SerializeToString())
    return twin


@needs_opencv_4
def test_tensorflow_frozen_graph_predicts_like_pytorch(tmp_path):
    twin = _write_tensorflow(tmp_path)
    image = _image(tmp_path / "photo.png", 9, 7)
    pre = {"size": "8x8", "scale": "1/127.5", "mean": "127.5", "swap_rb": True}
    rt = open_runtime(tmp_path / "frozen.pb", preprocessing=pre)
    assert rt.format == "TensorFlow" and rt.config_path is None
    blob = _opencv_blob(image, 1 / 127.5, (8, 8), (127.5, 127.5, 127.5), True)
    logits = _torch_logits(twin, blob)
    assert np.abs(rt.run(blob) - logits).max() < 1e-4
    assert cnnkit.predict(tmp_path / "frozen.pb", [image], preprocessing=pre)[0]["top"][0]["index"] == logits.argmax()


def test_every_error_here_is_a_cnnkit_error():
    assert issubclass(ModelError, CnnkitError) and issubclass(ConfigError, CnnkitError)


def test_evaluate_runs_a_foreign_model_on_a_dataset(tmp_path, capsys):
    torch.manual_seed(5)
    path = tmp_path / "digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Small(c=1, classes=10).eval(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "n"}})
    with pytest.raises(CnnkitError, match="pass --data NAME"):
        cnnkit.evaluate(path, preprocessing={"size": "8x8", "channels": 1})
    pre = {"size": "8x8", "channels": 1, "scale": "1/255"}
    result = cnnkit.evaluate(path, "digits", out=tmp_path / "eval", preprocessing=pre)
    assert result["images"] > 0 and 0 <= result["accuracy"] <= 1
    assert (tmp_path / "eval" / "evaluation.json").is_file()
    assert main(["evaluate", str(path), "--data", "digits", "--size", "8x8", "--channels", "1", "--scale", "1/255",
                 "--out", str(tmp_path / "eval2")]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_preprocessing_mistakes_are_one_clear_line(tmp_path):
    from cnnkit.deploy.foreign import resolve

    model = tmp_path / "net.onnx"
    (tmp_path / "net.cnnkit.yaml").write_text("size: 8x8\nchannels: three\n")
    with pytest.raises(ConfigError, match=r"channels \['three'\] \(from .*net.cnnkit.yaml\) is not a number"):
        resolve(model, None)
    (tmp_path / "net.cnnkit.yaml").write_text("size: 8x8\n")
    with pytest.raises(ConfigError, match=r"channels 2 \(from \S+net.cnnkit.yaml and flags\):"):
        resolve(model, {"scale": "1/255", "mean": "0", "channels": 2})
