"""Foreign models: files cnnkit did not export, read by OpenCV DNN (`cv2.dnn.readNet`).

A foreign file carries no cnnkit metadata, so its preprocessing comes from the user:
flags (`--size 224x224 --scale 0.017 --mean 103.94,116.78,123.68 --swap-rb ...`) or a
small YAML beside the model (`<stem>.cnnkit.yaml`, or `cnnkit.yaml` in its folder).

The numbers mean what they mean in OpenCV (cv2.dnn.blobFromImage and OpenCV's own
samples/dnn/classification.py with models.yml), and the blob is made by OpenCV itself:

    blob = cv2.dnn.blobFromImage(image_bgr, scale, (W, H), mean, swap_rb, crop) / std
    i.e. x = (pixel - mean) * scale / std      pixel in 0..255, mean in pixel units

- `mean` and `std` are listed in the model's input channel order (after the swap);
- `swap_rb: true` turns OpenCV's BGR image into RGB (the model wants RGB: most
  TensorFlow/PyTorch/ONNX models); `false` keeps BGR (most Caffe and Darknet models);
- `crop: true` resizes to cover W x H and cuts the centre; `false` stretches (OpenCV's default).

Formats: ONNX (.onnx), Caffe (.prototxt + .caffemodel), TensorFlow (.pb, optional
.pbtxt), Darknet (.cfg + .weights). OpenCV 5 keeps only the ONNX (and TFLite) importers;
Caffe, TensorFlow and Darknet files need OpenCV 4.x (`pip install 'opencv-python-headless<5'`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

# suffix -> (format, the suffix of the file that goes with it, whether that file is required)
FORMATS: dict[str, tuple[str, str | None, bool]] = {
    ".onnx": ("ONNX", None, False),
    ".prototxt": ("Caffe", ".caffemodel", True),
    ".caffemodel": ("Caffe", ".prototxt", True),
    ".pb": ("TensorFlow", ".pbtxt", False),
    ".cfg": ("Darknet", ".weights", True),
    ".weights": ("Darknet", ".cfg", True),
}
FOREIGN_SUFFIXES = tuple(FORMATS)
KEYS = ("size", "channels", "scale", "mean", "std", "swap_rb", "crop", "labels", "config", "output")
OUTPUTS = ("auto", "logits", "probabilities")

YAML_EXAMPLE = """size: 224x224          # width x height of the model's input
channels: 3            # 3 (colour) or 1 (grey)
scale: 0.00392156862   # x = (pixel - mean) * scale / std, pixel in 0..255
mean: [123.675, 116.28, 103.53]   # pixel units, in the model's channel order
std: [0.229, 0.224, 0.225]        # optional, 1 by default
swap_rb: true          # true: the model wants RGB; false: BGR (Caffe, Darknet)
crop: false            # true: cover and cut the centre; false: stretch
labels: labels.txt     # one class name per line (relative to this file)"""


@dataclass
class ForeignPreprocessing:
    """How to turn an image into the blob a foreign model takes (OpenCV's meaning of each number)."""

    size: tuple[int, int]  # (width, height), as cv::Size
    channels: int = 3
    scale: float = 1.0
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    swap_rb: bool = False
    crop: bool = False
    labels: list[str] | None = None
    output: str = "auto"  # logits, probabilities, or auto: probabilities when every row sums to 1
    source: str = "flags"  # where it came from, for messages

    def per_channel(self, values: list[float], what: str) -> list[float]:
        if len(values) == 1:
            return values * self.channels
        if len(values) != self.channels:
            raise ConfigError(f"{what} has {len(values)} values for a {self.channels}-channel model "
                              f"(from {self.source}); give 1 or {self.channels}")
        return values

    def cnnkit_mean_std(self) -> tuple[list[float], list[float]]:
        """The same arithmetic in cnnkit's convention, (pixel / 255 - mean) / std."""
        mean, std = self.per_channel(self.mean, "mean"), self.per_channel(self.std, "std")
        return [m / 255.0 for m in mean], [s / (255.0 * self.scale) for s in std]


def needed_message(path: Path) -> str:
    yaml_name = path.with_name(path.stem + ".cnnkit.yaml")
    return (f"{path.name} is not a cnnkit export, so cnnkit needs its preprocessing: the input size "
            "(--size WxH), the pixel arithmetic (--scale, --mean, --std: x = (pixel - mean) * scale / std), "
            "the channel order (--swap-rb if the model wants RGB) and the class names (--labels FILE, "
            f"optional); give them as flags or write {yaml_name} (one line each: "
            + "; ".join(line.split("#")[0].strip() for line in YAML_EXAMPLE.splitlines()) + ")")


def _numbers(value: Any, what: str, where: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        out = [float(_fraction(v)) for v in value]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} {value!r} (from {where}) is not a number or list of numbers") from e
    if not out:
        raise ConfigError(f"{what} (from {where}) is empty")
    return out


def _fraction(v: Any) -> float:
    """'1/255' as well as '0.0039'."""
    if isinstance(v, str) and "/" in v:
        a, b = v.split("/", 1)
        return float(a) / float(b)
    return float(v)


def _size(value: Any, where: str) -> tuple[int, int]:
    try:
        if isinstance(value, int):
            return value, value
        if isinstance(value, str):
            parts = value.lower().replace("*", "x").split("x")
            value = [int(p) for p in parts]
        w, h = (int(v) for v in (value * 2 if len(value) == 1 else value))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"size {value!r} (from {where}) should be WIDTHxHEIGHT, e.g. 224x224") from e
    if w < 1 or h < 1:
        raise ConfigError(f"size {value!r} (from {where}) must be positive")
    return w, h


def _bool(value: Any, what: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(f"{what} {value!r} (from {where}) should be true or false")


def read_labels(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"labels file {path} cannot be read ({e.__class__.__name__}); give a text file "
                          "with one class name per line") from e
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ConfigError(f"labels file {path} has no class names; write one per line")
    return names


def find_yaml(path: Path) -> Path | None:
    """`<stem>.cnnkit.yaml` or `<name>.cnnkit.yaml` beside the model, else `cnnkit.yaml` in its folder."""
    for candidate in (path.with_name(path.stem + ".cnnkit.yaml"), path.with_name(path.name + ".cnnkit.yaml"),
                      path.with_name("cnnkit.yaml")):
        if candidate.is_file():
            return candidate
    return None


def resolve(path: Path, given: dict[str, Any] | None) -> tuple[ForeignPreprocessing, Path | None]:
    """The preprocessing (YAML beside the model or `given["preprocessing"]`, then flags on top) and
    the second file (config) if one was named. Raises the "what is needed" error when nothing is known."""
    from ..fileio import read_yaml

    given = {k: v for k, v in (given or {}).items() if v is not None}
    yaml_path = Path(given.pop("preprocessing")).expanduser() if "preprocessing" in given else find_yaml(path)
    values: dict[str, Any] = {}
    where = "flags"
    base = Path.cwd()
    if yaml_path is not None:
        if not yaml_path.is_file():
            raise ConfigError(f"preprocessing file {yaml_path}: no such file")
        data = read_yaml(yaml_path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{yaml_path} should be a mapping (key: value per line), like:\n{YAML_EXAMPLE}")
        if "width" in data or "height" in data:  # OpenCV's samples/dnn/models.yml keys
            data.setdefault("size", [data.pop("width", data.get("height")), data.pop("height", None)])
            if data["size"][1] is None:
                data["size"] = data["size"][:1]
        if "rgb" in data:
            data.setdefault("swap_rb", data.pop("rgb"))
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise ConfigError(f"{yaml_path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        values.update(data)
        where = str(yaml_path)
        base = yaml_path.parent
    labels_base = {k: base for k in values}
    for k, v in given.items():
        values[k] = v
        labels_base[k] = Path.cwd()
    if given:
        where = f"{where} and flags" if yaml_path is not None else "flags"
    if not values or "size" not in values:
        if values:
            raise ConfigError(f"{path.name}: the input size is missing (from {where}); give --size WxH "
                              "(or `size: WxH` in the YAML)")
        raise ConfigError(needed_message(path))
    pre = ForeignPreprocessing(size=_size(values["size"], where), source=where)
    if "channels" in values:
        channels = _numbers(values["channels"], "channels", where)[0]  # a word is a ConfigError, not a crash
        if channels not in (1, 3):
            raise ConfigError(f"channels {channels:g} (from {where}): image files give 1 (grey) or 3 (colour)")
        pre.channels = int(channels)
    if "scale" in values:
        pre.scale = _numbers(values["scale"], "scale", where)[0]
        if pre.scale <= 0:
            raise ConfigError(f"scale {pre.scale} (from {where}) must be positive")
    if "mean" in values:
        pre.mean = pre.per_channel(_numbers(values["mean"], "mean", where), "mean")
    if "std" in values:
        pre.std = pre.per_channel(_numbers(values["std"], "std", where), "std")
        if min(pre.std) <= 0:
            raise ConfigError(f"std {pre.std} (from {where}) must be positive")
    pre.swap_rb = _bool(values.get("swap_rb", False), "swap_rb", where)
    pre.crop = _bool(values.get("crop", False), "crop", where)
    pre.output = str(values.get("output", "auto"))
    if pre.output not in OUTPUTS:
        raise ConfigError(f"output {pre.output!r} (from {where}) should be one of {', '.join(OUTPUTS)}")
    if "labels" in values:
        labels = values["labels"]
        if isinstance(labels, list):
            pre.labels = [str(v) for v in labels]
        else:
            p = Path(str(labels)).expanduser()
            pre.labels = read_labels(p if p.is_absolute() else labels_base["labels"] / p)
    config = None
    if "config" in values:
        c = Path(str(values["config"])).expanduser()
        config = c if c.is_absolute() else labels_base["config"] / c
    return pre, config


def model_files(path: Path, config: Path | None) -> tuple[str, Path, Path | None]:
    """(format, main file, second file or None), finding the second file beside the first by name."""
    fmt, partner, required = FORMATS[path.suffix.lower()]
    if not path.is_file():
        raise ModelError(f"{path}: no such {fmt} file")
    if config is not None:
        if not config.is_file():
            raise ModelError(f"{path.name} goes with {config}, which does not exist")
        return fmt, path, config
    if partner is None:
        return fmt, path, None
    candidate = path.with_suffix(partner)
    if candidate.is_file():
        return fmt, path, candidate
    if required:
        raise ModelError(f"{path.name} is one half of a {fmt} model: its {partner} file ({candidate.name}) is not "
                         f"beside it; put it there or pass --config FILE{partner}")
    return fmt, path, None


def cv_reason(e: Exception) -> str:
    """OpenCV's first line, without its 'OpenCV(x) file.cpp:N: error: (-N:kind)' prefix and 'in function'."""
    line = next((s for s in str(e).strip().splitlines() if s.strip()), str(e)).strip()
    if "error: (" in line:
        line = line.split("error: (", 1)[1]
        line = line.split(") ", 1)[1] if ") " in line else line
    return line.split(" in function ")[0].strip()


def read_net(fmt: str, model: Path, config: Path | None):
    import cv2

    try:
        return cv2.dnn.readNet(str(model), str(config) if config else "")
    except cv2.error as e:
        reason = cv_reason(e)
        if "has been removed" in reason:
            raise ModelError(f"OpenCV {cv2.__version__} cannot read {fmt} files ({reason.split('.')[0]}); "
                             f"OpenCV 4.x still can: pip install 'opencv-python-headless<5' — or convert "
                             "the model to ONNX") from e
        raise ModelError(f"OpenCV DNN cannot read {model.name} as a {fmt} model: {reason}") from e


def to_blob(images: list[np.ndarray], pre: ForeignPreprocessing) -> np.ndarray:
    """uint8 images, H x W x 3 in RGB order or H x W grey, -> the float32 N x C x H x W blob
    OpenCV's blobFromImages makes of the same pictures read by cv2.imread (BGR), divided by std."""
    import cv2

    if pre.channels == 3:  # cnnkit reads RGB; OpenCV's numbers assume cv2.imread's BGR
        images = [np.ascontiguousarray(im[:, :, ::-1]) for im in images]
    mean = pre.per_channel(pre.mean, "mean")
    blob = cv2.dnn.blobFromImages(images, pre.scale, pre.size, tuple(mean) + (0.0,) * (4 - len(mean)),
                                  pre.swap_rb, pre.crop)
    std = np.asarray(pre.per_channel(pre.std, "std"), dtype=np.float32).reshape(1, -1, 1, 1)
    return blob / std if np.any(std != 1) else blob
