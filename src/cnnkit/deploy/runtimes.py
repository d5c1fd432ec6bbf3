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
from ..models.bundle import BundleMeta, load_bundle
from ..tasks.base import get_task

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

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> ModelInfo:
        try:
            return cls([int(v) for v in data["input_shape"]], [float(v) for v in data["mean"]],
                       [float(v) for v in data["std"]], [str(v) for v in data["class_names"]],
                       str(data.get("task", "classification")))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{where} lacks cnnkit's preprocessing metadata ({e}); export it with "
                             "`cnnkit export`") from e


class Runtime:
    """A loaded model: `run(float32 NCHW) -> logits`, plus its preprocessing `info`."""

    name = "base"

    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


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
        self.net.setInput(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(self.net.forward()).reshape(len(x), -1)


def _info_from_props(props: dict[str, str], path: Path) -> ModelInfo:
    if "cnnkit" not in props:
        raise ModelError(f"{path} has no cnnkit metadata (input size, mean/std, class names); "
                         "export it with `cnnkit export`")
    return ModelInfo.from_dict(json.loads(props["cnnkit"]), path)


def _info_from_meta(meta: BundleMeta) -> ModelInfo:
    return ModelInfo(list(meta.input_shape), list(meta.mean), list(meta.std), list(meta.class_names), meta.task)


def _require(module: str, runtime: str, missing_ok: bool) -> bool:
    try:
        __import__(module)
        return True
    except ImportError as e:
        if missing_ok:
            return False
        raise ConfigError(f"--runtime {runtime} needs the {module} package: pip install 'cnnkit[export]'") from e


def default_runtime(path: str | Path) -> str:
    return "onnxruntime" if Path(path).suffix == ".onnx" else "torch"


def open_runtime(path: str | Path, runtime: str | None = None, *, device: str = "cpu",
                 threads: int | None = None, missing_ok: bool = False) -> Runtime | None:
    """Load a run, bundle, .onnx or TorchScript file into the named runtime.

    runtime None: torch, or onnxruntime for a .onnx file. With missing_ok, an uninstalled
    optional runtime gives None instead of an error.
    """
    runtime = runtime or default_runtime(path)
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(path).expanduser()
    if path.suffix == ".onnx":
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
    model, meta = load_bundle(path, device=device)
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
                   device: str = "cpu", strict: bool = False) -> list[dict[str, Any]]:
    """Top-k classes for image files, through any runtime; the records of `cnnkit.predict`.

    One record per image, in the order given: {"image", "runtime", "top": [...]} for an image
    that was read, {"image", "runtime", "error": why} for one that could not be (missing, not an
    image, cut short). With `strict`, the first unreadable image raises ImageError instead.
    """
    rt = open_runtime(path, runtime, device=device)
    c, h, w = rt.info.input_shape
    if c not in (1, 3):  # the model, not any one file, is the problem: say it once
        raise ImageError(f"models with {c} input channels cannot take image files")
    records: list[dict[str, Any]] = []
    tensors, readable = [], []
    for p in images:
        record: dict[str, Any] = {"image": str(p), "runtime": rt.name}
        try:
            tensors.append(load_image(p, c, (h, w)))
            readable.append(record)
        except ImageError as e:
            if strict:
                raise
            record["error"] = str(e)
        records.append(record)
    if tensors:
        outputs = rt.run(preprocess(torch.stack(tensors), rt.info))
        decoded = get_task(rt.info.task).decode(outputs, rt.info.class_names, top_k)  # the task reads the outputs
        for record, top in zip(readable, decoded, strict=True):
            record["top"] = top
    return records
