"""The public verbs: one function per `cnnkit` command, each a thin shell over the package that does the work.

| verb (CLI)          | function                  | where the work is done               |
|---------------------|---------------------------|--------------------------------------|
| `cnnkit train`      | `cnnkit.train`            | train/run.py                         |
| `cnnkit finetune`   | `cnnkit.finetune`         | transfer/finetune.py (`finetune`)    |
| `cnnkit lr-find`    | `cnnkit.lr_find`          | train/lr_find.py                     |
| `cnnkit evaluate`   | `cnnkit.evaluate`         | report/evaluate.py                   |
| `cnnkit predict`    | `cnnkit.predict`          | deploy/runtimes.py                   |
| `cnnkit explain`    | `cnnkit.explain`          | explain/report.py (`explain_model`)  |
| `cnnkit export`     | `cnnkit.export`           | deploy/export.py (`export_model`)    |
| (load a bundle)     | `cnnkit.load`             | models/bundle.py                     |

finetune, explain and export are those functions themselves (`cnnkit/__init__.py` names them);
the rest are defined here. Heavy imports (torch) happen inside each function, so `import cnnkit` and `cnnkit --help` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from .train.config import LRFindOptions, TrainConfig
    from .train.run import RunResult


def train(config: TrainConfig | dict | None = None, *, resume: str | Path | None = None,
          live: bool | None = None, log=print, **overrides: Any) -> RunResult:
    """Train a model and write a run directory; returns its path and summary.

    Examples:
        >>> import cnnkit
        >>> run = cnnkit.train(data="digits", epochs=3)          # doctest: +SKIP
        >>> run.summary["test_accuracy"]                         # doctest: +SKIP
    """
    from .train.run import run_training

    return run_training(config, resume=resume, live=live, log=log, **overrides)


def lr_find(config: TrainConfig | dict | None = None, *, options: LRFindOptions | None = None,
            start: float | None = None, end: float | None = None, steps: int | None = None,
            out: str | Path | None = None, log=print, **overrides: Any) -> dict[str, Any]:
    """The learning-rate range test on a dataset's recipe model: plot + suggested peak lr.

    `start`/`end`/`steps`/`out` (or `options`, an LRFindOptions: defaults 1e-6 -> 1.0 in 100
    steps) are the test's own settings; `overrides` are TrainConfig fields. Writes lr_find.png
    and lr_find.json into `out` (default runs/lr-find-<data>-<time>/) and returns
    {suggestion, minimum, stopped_early, plot, ...}.

    Examples:
        >>> cnnkit.lr_find(data="fashion-mnist", steps=100)["suggestion"]   # doctest: +SKIP
    """
    from .train.lr_find import run_lr_find

    return run_lr_find(config, options=options, start=start, end=end, steps=steps, out=out, log=log, **overrides)


def load(path: str | Path, device: str = "cpu") -> nn.Module:
    """Rebuild a trained model from a bundle or run directory (no pickle); eval mode.

    The bundle's description is on `model.cnnkit_meta` (class names, input shape, mean/std).
    """
    from .models.bundle import load_bundle

    model, _ = load_bundle(path, device=device)
    return model


def evaluate(path: str | Path, data: str | None = None, *, out: str | Path | None = None,
             device: str = "auto", batch_size: int = 512) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and a confusion matrix PNG on a test split."""
    from .report.evaluate import evaluate_bundle

    return evaluate_bundle(path, data, out=out, device=device, batch_size=batch_size)


def predict(path: str | Path, images: list[str | Path], *, top_k: int = 3, device: str = "cpu",
            runtime: str | None = None) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file, converted to the model's input.

    `path` is a run, a bundle, a .onnx or a TorchScript .pt file; `runtime` torch, onnxruntime or
    opencv (None: torch, or onnxruntime for a .onnx file).
    """
    from .deploy.runtimes import predict_images

    return predict_images(path, images, runtime=runtime, top_k=top_k, device=device)
