"""Export a trained model to ONNX or TorchScript, with its preprocessing inside the file.

ONNX goes through PyTorch's classic TorchScript-based exporter (`dynamo=False`)
at opset 17: it is fast (a fraction of a second for small models, where the
dynamo exporter takes seconds) and its graphs load in ONNX Runtime and in
OpenCV DNN (4.9+ and 5.x). The batch dimension is dynamic. What a runtime
needs to feed the model (input shape, channels, mean/std, class names) is stored
as ONNX `metadata_props` (TorchScript: the `_extra_files` entry `cnnkit.json`).
Every export checks itself: the file is read back, run beside PyTorch on a
batch of two, and must agree within 1e-4.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ModelError
from ..fileio import atomic_path
from ..models.bundle import BundleMeta
from ..nn.model import SpecNet
from ..tasks.base import get_task
from .static_padding import freeze_same_padding

DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # max |exported - PyTorch| over every logit of the check batch
FORMATS = ("onnx", "torchscript")
META_KEY = "cnnkit"  # the one JSON entry; flat keys are written too for tools that read them


@dataclass
class ExportResult:
    path: Path
    format: str
    opset: int | None
    differences: dict[str, float] = field(default_factory=dict)  # runtime -> max |output - PyTorch|
    tolerance: float = TOLERANCE


def preprocessing(meta: BundleMeta) -> dict:
    """What a runtime must do to an image before the model sees it."""
    c, h, w = (int(v) for v in meta.input_shape)
    task = get_task(meta.task)
    return {
        "input_shape": [c, h, w],
        "channels": c,
        "color": "grayscale" if c == 1 else "rgb",
        "scale": "pixel / 255",
        "mean": [float(v) for v in meta.mean],
        "std": [float(v) for v in meta.std],
        "class_names": list(meta.class_names),
        "input_name": "input",
        "task": task.name,
        "output": task.output_names[0] if len(task.output_names) == 1 else list(task.output_names),
        "architecture": meta.architecture.to_dict(),
        "layout": "NCHW",
        "crop_pct": float(meta.crop_pct),  # resize to input size / crop_pct, then crop the centre
    }


def _example(meta: BundleMeta, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *(int(v) for v in meta.input_shape), generator=g)


def export_onnx(model: nn.Module, meta: BundleMeta, path: str | Path, *, opset: int = DEFAULT_OPSET,
                check: bool = True) -> ExportResult:
    """Write `model` as ONNX with a dynamic batch size and the preprocessing as metadata."""
    try:
        import onnx
    except ImportError as e:
        raise ConfigError("ONNX export needs the onnx package: pip install 'cnnkit[export]'") from e
    path = Path(path)
    model = model.eval().cpu()
    x = _example(meta, 1)
    outputs = get_task(meta.task).output_names  # classification: one output, the logits
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classic exporter announces its deprecation
        # The reference for the check below stays `model`: the frozen copy must agree with it.
        torch.onnx.export(freeze_same_padding(model, x), (x,), str(tmp), dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=list(outputs),
                          dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in outputs}})
        proto = onnx.load(str(tmp))
        info = preprocessing(meta)
        entries = {META_KEY: json.dumps(info)}
        entries.update({k: json.dumps(info[k]) for k in ("input_shape", "mean", "std", "class_names")})
        del proto.metadata_props[:]
        for key, value in entries.items():
            proto.metadata_props.add(key=key, value=value)
        proto.producer_name = "cnnkit"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        return _checked(model, meta, ExportResult(tmp, "onnx", opset), path, check)


class _Traced(nn.Module):
    """A plain wrapper: tracing probes every attribute of the top module, and a model's Python
    properties (num_features, ...) need not survive that."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def export_torchscript(model: nn.Module, meta: BundleMeta, path: str | Path, *, check: bool = True) -> ExportResult:
    """Write `model` as a traced TorchScript file with `cnnkit.json` among its extra files."""
    path = Path(path)
    model = model.eval().cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit announces its deprecation in favour of torch.export
        # A SpecNet's forward is exactly its `layers` Sequential; tracing that skips the probing of
        # the SpecNet's Python properties, which the tracer evaluates one by one.
        target = model.layers if isinstance(model, SpecNet) else model
        traced = torch.jit.trace(_Traced(target), _example(meta, 1), check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={"cnnkit.json": json.dumps(preprocessing(meta))})
            return _checked(model, meta, ExportResult(tmp, "torchscript", None), path, check)


def _checked(model: nn.Module, meta: BundleMeta, result: ExportResult, path: Path, check: bool) -> ExportResult:
    """Verify the temporary file (inside atomic_path), so a rejected export never replaces a good one.

    The runtimes tell a file's format by its suffix, so they read it through a link named like it."""
    if check:
        probe = result.path.with_name(result.path.name + path.suffix)
        try:
            os.link(result.path, probe)
        except OSError:  # a file system without hard links
            shutil.copyfile(result.path, probe)
        try:
            result.differences = verify(model, meta, dataclasses.replace(result, path=probe)).differences
        finally:
            probe.unlink(missing_ok=True)
    result.path = path
    return result


def verify(model: nn.Module, meta: BundleMeta, result: ExportResult) -> ExportResult:
    """Run the exported file beside PyTorch on a batch of two; raise ModelError past the tolerance."""
    from .runtimes import RUNTIMES_FOR, open_runtime

    x = _example(meta, 2, seed=1)
    with torch.no_grad():
        reference = model(x).float().numpy()
    allowed = TOLERANCE
    for name in RUNTIMES_FOR[result.format]:
        runtime = open_runtime(result.path, name, missing_ok=True)
        if runtime is None:
            continue  # an optional runtime that is not installed
        difference = float(np.abs(runtime.run(x.numpy()) - reference).max())
        result.differences[name] = difference
        if not difference <= allowed:
            raise ModelError(f"the exported {result.format} file disagrees with PyTorch in {name} by {difference:.2e} "
                             f"(allowed {allowed:.1e}); the model uses an operation this export does not "
                             "carry faithfully — try another --opset or --format torchscript")
    return result


def export_model(model_path: str | Path, *, format: str = "onnx", out: str | Path | None = None,
                 opset: int = DEFAULT_OPSET, check: bool = True) -> ExportResult:
    """Export a run, a bundle or a pretrained model's name (`efficientnet-lite0`, with its ImageNet
    classifier); the default file is `model.onnx` / `model.pt` beside the bundle, or `./NAME.onnx`."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose onnx or torchscript")
    from ..fileio import safe_name
    from ..models.bundle import find_bundle, is_bundle_path
    from ..models.resolve import load_model

    suffix = ".onnx" if format == "onnx" else ".pt"
    if out:
        path = Path(out)
    elif is_bundle_path(model_path, found=False):
        path = find_bundle(model_path) / f"model{suffix}"
    else:
        path = Path(f"{safe_name(str(model_path))}{suffix}")
    if path.suffix != suffix:  # before loading anything
        raise ConfigError(f"a {format} file should end in {suffix}, got {path.name}")
    model, meta = load_model(model_path)
    if format == "onnx":
        return export_onnx(model, meta, path, opset=opset, check=check)
    return export_torchscript(model, meta, path, check=check)
