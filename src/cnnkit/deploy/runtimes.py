"""Three runtimes behind one interface: PyTorch, ONNX Runtime and OpenCV DNN.

`open_runtime(path, name)` takes a run or bundle folder, an `.onnx` file or a
TorchScript `.pt` file and gives a `Runtime`: `run(x)` maps a float32 N x C x H x W
batch (already normalised) to N x classes logits, and `info` says how to
normalise (input shape, mean/std, class names — read from the bundle or from the
metadata the exporter stored in the file). A bundle opened with onnxruntime or
opencv is exported to a temporary ONNX file first.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import ImageArrays
from ..data.images import load_image
from ..data.loader import TensorLoader
from ..errors import ConfigError, ImageError, ModelError
from ..models.bundle import BundleMeta
from ..models.resolve import load_model
from ..tasks.base import get_task
from .foreign import FOREIGN_SUFFIXES

RUNTIMES = ("torch", "onnxruntime", "opencv")
RUNTIMES_FOR = {"onnx": ("onnxruntime", "opencv"), "torchscript": ("torch",)}
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript")


@dataclass
class ModelInfo:
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    class_names: list[str]
    task: str = "classification"  # how the outputs are decoded (cnnkit/tasks/); older exports are classifiers
    crop_pct: float = 1.0  # resize to input size / crop_pct, then crop the centre (BundleMeta.crop_pct)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> ModelInfo:
        try:
            return cls([int(v) for v in data["input_shape"]], [float(v) for v in data["mean"]],
                       [float(v) for v in data["std"]], [str(v) for v in data["class_names"]],
                       str(data.get("task", "classification")), float(data.get("crop_pct", 1.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{where} lacks cnnkit's preprocessing metadata ({e}); export it with "
                             "`cnnkit export`") from e


class Runtime:
    """A loaded model: `run(float32 NCHW) -> logits`, plus its preprocessing `info`.

    `read_image` and `batch` turn image files into what `run` takes: cnnkit's own decoding
    (fit to the input size, then `preprocess`) unless a runtime knows better (foreign models).
    """

    name = "base"

    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def read_image(self, path: str | Path) -> Any:
        """One image file, decoded for this model (ImageError if it cannot be read)."""
        c, h, w = self.info.input_shape
        return load_image(path, c, (h, w), crop_pct=self.info.crop_pct)

    def batch(self, images: list[Any]) -> np.ndarray:
        """What `read_image` gave, as the float32 batch `run` takes."""
        return preprocess(torch.stack(images), self.info)


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, model: torch.nn.Module, info: ModelInfo, device: str = "cpu") -> None:
        super().__init__(info)
        self.model = model.eval().to(device)
        self.device = device

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)).float().cpu().numpy()


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"ONNX Runtime cannot load {path}: {str(e).splitlines()[0]}") from e
        metadata = self.session.get_modelmeta().custom_metadata_map
        super().__init__(_info_from_props(metadata, path))
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


class OpenCVRuntime(Runtime):
    name = "opencv"

    def __init__(self, path: Path) -> None:
        import cv2
        import onnx

        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as e:
            raise ModelError(f"OpenCV DNN cannot load {path}: {str(e).strip().splitlines()[-1]}") from e
        proto = onnx.load(str(path), load_external_data=False)
        super().__init__(_info_from_props({p.key: p.value for p in proto.metadata_props}, path))

    def run(self, x: np.ndarray) -> np.ndarray:
        return opencv_forward(self.net, x)


def opencv_forward(net, x: np.ndarray) -> np.ndarray:
    """An OpenCV DNN net's outputs for a float32 N x C x H x W batch, one row per image."""
    net.setInput(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(net.forward()).reshape(len(x), -1)


class ForeignOpenCVRuntime(Runtime):
    """A model file cnnkit did not export (ONNX, Caffe, TensorFlow, Darknet), read by cv2.dnn.readNet.

    Its `info` comes from the user's preprocessing (`foreign.ForeignPreprocessing`): input shape from
    size and channels, mean/std as the same arithmetic in cnnkit's convention, class names from the
    labels file (else "0", "1", ...). Images become blobs through cv2.dnn.blobFromImages, so scale,
    mean, swap_rb and crop mean what they mean in OpenCV. A net that ends in a softmax gives
    probabilities; `run` hands those on as log-probabilities, so the task's softmax gives them back.
    """

    name = "opencv"

    def __init__(self, path: Path, preprocessing: dict[str, Any] | None = None) -> None:
        from . import foreign

        self.preprocessing, config = foreign.resolve(path, preprocessing)
        self.format, self.model_path, self.config_path = foreign.model_files(path, config)
        self.net = foreign.read_net(self.format, self.model_path, self.config_path)
        pre = self.preprocessing
        w, h = pre.size
        probe = np.zeros((1, pre.channels, h, w), dtype=np.float32)  # the model must take this input
        try:
            classes = self.raw(probe).shape[1]
        except Exception as e:  # cv2.error; a size the net cannot take
            raise ModelError(f"{path.name} cannot run on a {pre.channels}x{h}x{w} input (size {w}x{h}, "
                             f"channels {pre.channels} from {pre.source}): {foreign.cv_reason(e)}") from e
        names = pre.labels or [str(i) for i in range(classes)]
        if len(names) != classes:
            raise ConfigError(f"{path.name} gives {classes} outputs but the labels (from {pre.source}) "
                              f"name {len(names)} classes; give one name per output")
        mean, std = pre.cnnkit_mean_std()
        super().__init__(ModelInfo([pre.channels, h, w], mean, std, names, "classification"))
        self.probabilities: bool | None = None if pre.output == "auto" else pre.output == "probabilities"

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The net's outputs as they are (logits, or probabilities for a net ending in softmax)."""
        return opencv_forward(self.net, x)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.as_logits(self.raw(x))

    def as_logits(self, out: np.ndarray) -> np.ndarray:
        """Logits as they are; probabilities (output: probabilities, or auto-detected) as their logarithm."""
        probabilities = self.probabilities
        if probabilities is None:  # auto: every value in [0, 1] and every row summing to 1
            probabilities = bool(out.min() >= 0 and out.max() <= 1 and np.allclose(out.sum(1), 1, atol=1e-4))
        if probabilities:
            return np.log(np.clip(out, np.finfo(np.float32).tiny, None))
        return out

    def read_image(self, path: str | Path) -> np.ndarray:
        from ..data.images import normalise_mode, open_image

        return np.asarray(normalise_mode(open_image(path), self.info.input_shape[0]), dtype=np.uint8)

    def batch(self, images: list[np.ndarray]) -> np.ndarray:
        """uint8 H x W x 3 (RGB) or H x W images -> the model's input, through cv2.dnn.blobFromImages."""
        from .foreign import to_blob

        return to_blob(images, self.preprocessing)


def _info_from_props(props: dict[str, str], path: Path) -> ModelInfo:
    if "cnnkit" not in props:
        raise ModelError(f"{path} has no cnnkit metadata (input size, mean/std, class names); "
                         "export it with `cnnkit export`, or run it as a foreign model in OpenCV DNN "
                         "with its preprocessing (--runtime opencv --size WxH ...; docs/export.md)")
    return ModelInfo.from_dict(json.loads(props["cnnkit"]), path)


def _info_from_meta(meta: BundleMeta) -> ModelInfo:
    return ModelInfo(list(meta.input_shape), list(meta.mean), list(meta.std), list(meta.class_names), meta.task,
                     meta.crop_pct)


def _require(module: str, runtime: str, missing_ok: bool) -> bool:
    try:
        __import__(module)
        return True
    except ImportError as e:
        if missing_ok:
            return False
        raise ConfigError(f"--runtime {runtime} needs the {module} package: pip install 'cnnkit[export]'") from e


def default_runtime(path: str | Path) -> str:
    """torch, or onnxruntime for a .onnx file (foreign formats have returned before this is asked)."""
    return "onnxruntime" if Path(path).suffix.lower() == ".onnx" else "torch"


def is_foreign(path: str | Path, preprocessing: dict[str, Any] | None = None) -> bool:
    """A file cnnkit did not export: Caffe, TensorFlow, Darknet, or an ONNX file given preprocessing
    or lacking cnnkit's metadata."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FOREIGN_SUFFIXES:
        return False
    if suffix != ".onnx":
        return True
    if preprocessing and any(v is not None for v in preprocessing.values()):
        return True
    return path.is_file() and not _has_cnnkit_metadata(path)


def _has_cnnkit_metadata(path: Path) -> bool:
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX at all: the runtime that opens it says so
        return True
    return any(p.key == "cnnkit" for p in proto.metadata_props)


def open_runtime(path: str | Path, runtime: str | None = None, *, device: str = "cpu",
                 threads: int | None = None, missing_ok: bool = False,
                 preprocessing: dict[str, Any] | None = None) -> Runtime | None:
    """Load a run, bundle, .onnx or TorchScript file into the named runtime.

    runtime None: torch, or onnxruntime for a .onnx file. With missing_ok, an uninstalled
    optional runtime gives None instead of an error.

    A foreign model (an ONNX file without cnnkit's metadata, Caffe .prototxt/.caffemodel,
    TensorFlow .pb, Darknet .cfg/.weights) runs in OpenCV DNN with `preprocessing`: a dict of
    size, channels, scale, mean, std, swap_rb, crop, labels, config (the second file), output and
    preprocessing (a YAML file), each optional, on top of a `<stem>.cnnkit.yaml` beside the model.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    given = bool(preprocessing and any(v is not None for v in preprocessing.values()))
    # A plain .onnx asked for in onnxruntime keeps the cnnkit path (and its "no metadata" error).
    if is_foreign(path, preprocessing) and (given or suffix != ".onnx" or runtime in (None, "opencv")):
        if runtime not in (None, "opencv"):
            raise ConfigError(f"{path.name} is not a cnnkit export: foreign models run in OpenCV DNN "
                              "(--runtime opencv, the default for them)")
        if not _require("cv2", "opencv", missing_ok):
            return None
        return ForeignOpenCVRuntime(path, preprocessing)
    if given:
        raise ConfigError(f"{path.name}: preprocessing flags (--size, --scale, --mean, --std, --swap-rb, "
                          "--labels, --config) are for foreign model files (.onnx, .prototxt, .caffemodel, "
                          ".pb, .cfg, .weights); a cnnkit model carries its own")
    runtime = runtime or default_runtime(path)
    if suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"{path}: no such ONNX file")
        if runtime == "torch":
            raise ConfigError(f"{path.name} is an ONNX file: run it with --runtime onnxruntime or --runtime opencv")
        if not _require("onnxruntime" if runtime == "onnxruntime" else "cv2", runtime, missing_ok):
            return None
        return OnnxRuntime(path, threads) if runtime == "onnxruntime" else OpenCVRuntime(path)
    if path.suffix in TORCHSCRIPT_SUFFIXES:
        if not path.is_file():
            raise ModelError(f"{path}: no such TorchScript file")
        if runtime != "torch":
            raise ConfigError(f"{path.name} is a TorchScript file: run it with --runtime torch "
                              "(or export the bundle with --format onnx for the other runtimes)")
        extra = {"cnnkit.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit announces its deprecation
                model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except RuntimeError as e:
            raise ModelError(f"{path} is not a TorchScript file torch can load: {str(e).splitlines()[0]}") from e
        if not extra["cnnkit.json"]:
            raise ModelError(f"{path} has no cnnkit.json inside; export it with `cnnkit export --format torchscript`")
        return TorchRuntime(model, ModelInfo.from_dict(json.loads(extra["cnnkit.json"]), path), device)
    model, meta = load_model(path, device=device)  # a run, a bundle or a pretrained model's name
    if runtime == "torch":
        return TorchRuntime(model, _info_from_meta(meta), device)
    if not _require("onnxruntime" if runtime == "onnxruntime" else "cv2", runtime, missing_ok):
        return None
    from .export import export_onnx

    # Both runtimes read the whole file at load time, so the temporary copy can go at once.
    with tempfile.TemporaryDirectory(prefix="cnnkit-onnx-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(model, meta, onnx_path, check=False)
        return OnnxRuntime(onnx_path, threads) if runtime == "onnxruntime" else OpenCVRuntime(onnx_path)


def preprocess(images: torch.Tensor, info: ModelInfo) -> np.ndarray:
    """uint8 N x C x H x W -> float32 normalised exactly as in training (TensorLoader's arithmetic)."""
    loader = TensorLoader(ImageArrays(images, torch.zeros(len(images), dtype=torch.long)), batch_size=len(images),
                          mean=tuple(info.mean), std=tuple(info.std), device=torch.device("cpu"))
    x, _ = next(iter(loader))
    return x.numpy()


def predict_images(path: str | Path, images: list[str | Path], *, runtime: str | None = None, top_k: int = 3,
                   device: str = "cpu", strict: bool = False,
                   preprocessing: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Top-k classes for image files, through any runtime; the records of `cnnkit.predict`.

    One record per image, in the order given: {"image", "runtime", "top": [...]} for an image
    that was read, {"image", "runtime", "error": why} for one that could not be (missing, not an
    image, cut short). With `strict`, the first unreadable image raises ImageError instead.
    """
    rt = open_runtime(path, runtime, device=device, preprocessing=preprocessing)
    c = rt.info.input_shape[0]
    if c not in (1, 3):  # the model, not any one file, is the problem: say it once
        raise ImageError(f"models with {c} input channels cannot take image files")
    records: list[dict[str, Any]] = []
    tensors, readable = [], []
    for p in images:
        record: dict[str, Any] = {"image": str(p), "runtime": rt.name}
        try:
            tensors.append(rt.read_image(p))
            readable.append(record)
        except ImageError as e:
            if strict:
                raise
            record["error"] = str(e)
        records.append(record)
    if tensors:
        outputs = rt.run(rt.batch(tensors))
        decoded = get_task(rt.info.task).decode(outputs, rt.info.class_names, top_k)  # the task reads the outputs
        for record, top in zip(readable, decoded, strict=True):
            record["top"] = top
    return records
