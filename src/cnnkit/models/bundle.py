"""The bundle: a trained model in two files, `model.safetensors` and `cnnkit.json`.

No pickle: the JSON names the architecture (a registry name, a source model or a
layer spec) and the data it expects (input shape, class names, normalisation),
and the weights are plain tensors. `load_bundle` rebuilds the model from these
two files alone. Both files are written atomically; `cnnkit.json` is written
last, so a folder without it is an unfinished bundle.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..errors import BundleError
from ..fileio import atomic_path, read_json, write_json
from .records import ArchRecord
from .registry import rebuild

FORMAT = "cnnkit-bundle"
VERSION = 1
WEIGHTS, META = "model.safetensors", "cnnkit.json"


@dataclass
class BundleMeta:
    architecture: ArchRecord  # stored as its to_dict(); a dict given here is read with from_dict
    input_shape: list[int]  # C, H, W the model was trained on
    class_names: list[str]
    mean: list[float]
    std: list[float]
    summary: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"  # what the outputs mean (cnnkit/tasks/); bundles without it are classifiers
    # A photo is resized to input size / crop_pct, then centre-cropped (ImageNet weights: 224 of 256).
    # 1.0 (every bundle cnnkit trains): the photo is fitted straight to the input size.
    crop_pct: float = 1.0
    format: str = FORMAT
    version: int = VERSION

    def __post_init__(self) -> None:
        self.architecture = ArchRecord.from_dict(self.architecture)

    @property
    def in_channels(self) -> int:
        return int(self.input_shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def save_bundle(model: nn.Module, folder: str | Path, meta: BundleMeta) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    # Serialised here and written by Python: safetensors' own file writer (Rust) reports a full
    # disk as a SafetensorError without its errno, which fileio.atomic_path needs to say so.
    data = safetensors_bytes(state, metadata={"format": FORMAT})
    with atomic_path(folder / WEIGHTS, needed=len(data)) as tmp:
        tmp.write_bytes(data)
    _write_meta(folder, meta)
    return folder


def _write_meta(folder: Path, meta: BundleMeta) -> None:
    data = asdict(meta)
    data["architecture"] = meta.architecture.to_dict()
    data["in_channels"] = meta.in_channels
    data["num_classes"] = meta.num_classes
    write_json(folder / META, data)


def unwrap(model: Any) -> nn.Module:
    """The model inside the wrappers that rename its state dict: torch.compile (`_orig_mod`), DDP
    (`.module`) and an EMA holder (train/ema.py's ModelEma: not a Module, the average at `.module`)."""
    while True:
        if isinstance(model, nn.Module) and "_orig_mod" in model._modules:
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel) or (
                not isinstance(model, nn.Module) and isinstance(getattr(model, "module", None), nn.Module)):
            model = model.module
        else:
            return model


def find_bundle(path: str | Path) -> Path:
    """A bundle folder, or the `best/` bundle of a run directory (or `runs/latest`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BundleError(f"{path} does not exist; give a run directory (runs/NAME) or a bundle folder")
    for candidate in (path, path / "best", path / "last"):
        if (candidate / META).is_file():
            return candidate
    raise BundleError(f"{path} is neither a cnnkit bundle (no {META}) nor a run directory with best/ or last/")


def set_summary(folder: Path, summary: dict[str, Any]) -> None:
    """Put a run's final summary into a bundle's description (atomically), so that a bundle copied
    elsewhere still says what it is."""
    meta = read_meta(folder)
    meta.summary = summary
    _write_meta(folder, meta)


def is_bundle_path(target: str | Path, *, found: bool = True) -> bool:
    """Whether `target` names a bundle (or a run directory with one) rather than a model name or a spec.

    found=True: find_bundle finds a bundle there (a weights file or a folder without cnnkit.json is
    not one). found=False: it reads as a path, a bundle or not, so that load_bundle can say what is
    wrong with it: it exists, or it has a slash and no `source:` prefix (hf-hub:org/name is a model).
    """
    if found:
        try:
            find_bundle(target)
        except BundleError:
            return False
        return True
    text = str(target)
    if Path(text).expanduser().exists():
        return True
    if re.match(r"[a-z][a-z0-9_-]*:", text, flags=re.IGNORECASE):
        return False
    return "/" in text or "\\" in text


def read_meta(folder: Path) -> BundleMeta:
    try:
        data = read_json(folder / META)
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{folder / META} cannot be read ({e}); the bundle is damaged") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{folder / META} is not a cnnkit bundle description")
    if data.get("version", 0) > VERSION:
        raise BundleError(f"{folder} was written by a newer cnnkit (bundle version {data['version']}); upgrade cnnkit")
    fields = {k: data[k] for k in BundleMeta.__dataclass_fields__ if k in data}
    try:
        return BundleMeta(**fields)
    except TypeError as e:
        raise BundleError(f"{folder / META} lacks a field: {e}") from e
    except BundleError as e:  # the architecture record
        raise BundleError(f"{folder / META}: {e}; the bundle is damaged") from e


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, BundleMeta]:
    """Rebuild a model from a bundle or run directory; returns (model in eval mode, meta)."""
    folder = find_bundle(path)
    meta = read_meta(folder)
    model = rebuild(meta.architecture, input_shape=tuple(meta.input_shape), num_classes=meta.num_classes)
    try:
        state = load_file(str(folder / WEIGHTS), device=str(device))
    except (OSError, SafetensorError) as e:
        raise BundleError(f"{folder / WEIGHTS} cannot be read ({e}); the bundle is damaged") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        # torch's first line only says "Error(s) in loading state_dict"; the keys and shapes follow it.
        detail = " ".join(line.strip() for line in str(e).splitlines()[1:3]) or str(e)
        raise BundleError(f"{folder / WEIGHTS} does not fit the architecture in {META}: {detail[:300]}") from e
    model.to(device).eval()
    model.cnnkit_meta = meta
    return model, meta
