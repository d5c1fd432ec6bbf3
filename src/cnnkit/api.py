"""The public verbs: one function per `cnnkit` command, each a thin shell over the package that does the work.

The function is the verb's name with `-` as `_` (`cnnkit lr-find` -> `cnnkit.lr_find`); a verb with
actions adds `_ACTION` (`cnnkit datasets info` -> `cnnkit.datasets_info`). One exception: `cnnkit models`
is `cnnkit.list_models`, because `cnnkit.models` is the models subpackage. `VERBS` below is the map.

| verb (CLI)              | function                  | where the work is done               |
|-------------------------|---------------------------|--------------------------------------|
| `cnnkit train`          | `cnnkit.train`            | train/run.py                         |
| `cnnkit finetune`       | `cnnkit.finetune`         | transfer/finetune.py (`finetune`)    |
| `cnnkit lr-find`        | `cnnkit.lr_find`          | train/lr_find.py                     |
| `cnnkit evaluate`       | `cnnkit.evaluate`         | report/evaluate.py                   |
| `cnnkit predict`        | `cnnkit.predict`          | deploy/runtimes.py                   |
| `cnnkit explain`        | `cnnkit.explain`          | explain/report.py (`explain_model`)  |
| `cnnkit export`         | `cnnkit.export`           | deploy/export.py (`export_model`)    |
| `cnnkit datasets`       | `cnnkit.datasets`         | data/catalog_view.py (`records`)     |
| `cnnkit datasets info`  | `cnnkit.datasets_info`    | data/catalog_view.py (`record`)      |
| `cnnkit datasets show`  | `cnnkit.datasets_show`    | data/catalog_view.py (`show`)        |
| `cnnkit models`         | `cnnkit.list_models`      | models/registry.py (`list_models`)   |
| `cnnkit summary`        | `cnnkit.summary`          | models/resolve.py + nn/summary.py    |
| (load a bundle)         | `cnnkit.load`             | models/bundle.py                     |

finetune, explain and export are those functions themselves (`cnnkit/__init__.py` names them);
the rest are defined here. Heavy imports (torch) happen inside each function, so `import cnnkit` and `cnnkit --help` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from .nn.summary import Summary
    from .train.config import LRFindOptions, TrainConfig
    from .train.run import RunResult

# `cnnkit VERB` -> the name of its function in `cnnkit` (the table above).
VERBS = {
    "train": "train", "finetune": "finetune", "lr-find": "lr_find", "evaluate": "evaluate", "predict": "predict",
    "explain": "explain", "export": "export", "datasets": "datasets", "models": "list_models", "summary": "summary",
}


def train(config: TrainConfig | dict | None = None, *, resume: str | Path | None = None,
          live: bool | None = None, log=print, **overrides: Any) -> RunResult:
    """Train a model and write a run directory; returns its path and summary.

    Ctrl-C or SIGTERM (in the main thread) lets the current step finish, writes a checkpoint and
    raises `cnnkit.errors.Interrupted`, whose message names the run; `resume=run_dir` continues it
    (docs/training.md, "Faults a run survives").

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
             device: str = "auto", batch_size: int = 512,
             preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and a confusion matrix PNG on a test split.

    `path` may also be a foreign model file (see `predict`); then `data` is required, and the
    labels, if given, must be the dataset's class names (without labels, output i is class i).
    """
    from .deploy.runtimes import is_foreign

    if is_foreign(path, preprocessing):
        from .report.evaluate import evaluate_foreign

        return evaluate_foreign(path, data, out=out, batch_size=batch_size, preprocessing=preprocessing)
    if preprocessing and any(v is not None for v in preprocessing.values()):
        from .errors import ConfigError

        raise ConfigError("preprocessing flags (--size, --scale, --mean, ...) are for foreign model files "
                          "(.onnx, .prototxt, .caffemodel, .pb, .cfg, .weights); a cnnkit model carries its own")
    from .report.evaluate import evaluate_bundle

    return evaluate_bundle(path, data, out=out, device=device, batch_size=batch_size)


def predict(path: str | Path, images: list[str | Path], *, top_k: int = 3, device: str = "cpu",
            runtime: str | None = None, strict: bool = False,
            preprocessing: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file, converted to the model's input.

    `path` is a run, a bundle, a .onnx or a TorchScript .pt file; `runtime` torch, onnxruntime or
    opencv (None: torch, or onnxruntime for a .onnx file).

    `path` may also be a foreign model that cnnkit did not export (ONNX without cnnkit's metadata,
    Caffe .prototxt + .caffemodel, TensorFlow .pb, Darknet .cfg + .weights), run in OpenCV DNN;
    `preprocessing` then says how to feed it, in OpenCV's terms: {"size": "224x224" (W x H),
    "channels": 3, "scale": 1/255, "mean": [...] (pixel units), "std": [...], "swap_rb": True,
    "crop": False, "labels": "labels.txt", "config": second file, "preprocessing": a YAML file},
    each on top of a `<stem>.cnnkit.yaml` beside the model (docs/export.md).

    Returns one record per image, in the order given, each with "image" and "runtime" and either
    "top" (a list of {"class", "index", "probability"}, best first) or, for a file that could not
    be read, "error" (why, naming the file). `strict=True` raises ImageError at the first
    unreadable file instead.

    Examples:
        >>> for r in cnnkit.predict("runs/latest", ["a.png", "b.png"]):     # doctest: +SKIP
        ...     print(r["image"], r["top"][0]["class"] if "top" in r else r["error"])
    """
    from .deploy.runtimes import predict_images

    return predict_images(path, images, runtime=runtime, top_k=top_k, device=device, strict=strict,
                          preprocessing=preprocessing)


def datasets(level: str | None = None) -> list[dict[str, Any]]:
    """Every dataset of the catalog (or one level: builtin, beginner, intermediate, advanced) as plain
    records: the catalog's facts plus "availability" here and "cache_folder".

    Examples:
        >>> [r["name"] for r in cnnkit.datasets("beginner")][:2]     # doctest: +SKIP
        ['mnist', 'fashion-mnist']
    """
    from .data import catalog_view

    if level is not None and level not in catalog_view.LEVELS:
        from .errors import ConfigError

        raise ConfigError(f"unknown level {level!r}; choose one of {', '.join(catalog_view.LEVELS)}")
    from .train.recipes import augmentation  # what training uses: the recipe states it

    return catalog_view.records(level, augmentation)


def datasets_info(name: str) -> dict[str, Any]:
    """One dataset's record (name or alias), as `cnnkit datasets info NAME --json` prints it."""
    from .data import catalog_view
    from .train.recipes import augmentation

    return catalog_view.record(name, augmentation)


def datasets_show(name: str, out: str | Path | None = None, *, per_class: int = 8) -> str:
    """Write a PNG grid of training samples, `per_class` per class; returns its path.

    `out` ending in .png is the file; any other `out` is a folder for NAME-samples.png (default: here).
    """
    from .data import catalog_view

    return catalog_view.show(name, None if out is None else str(out), per_class=per_class)


def list_models(pattern: str = "*", source: str | None = None,
                pretrained: bool | None = None) -> list[tuple[str, str, str]]:
    """[(name, source, description)] of the registry: built-ins and every source (tv, timm, hf, ...).

    `pattern` is shell-style ('res*'); `source` keeps one source (an unknown one is a ModelError
    naming the valid ones); `pretrained=True` keeps the models with pretrained weights.
    """
    from .models.registry import list_models as registry_list_models

    return registry_list_models(pattern, source, pretrained=pretrained)


def summary(model: str, input: str | tuple[int, int, int] | None = None, *, batch_size: int = 1,
            classes: int | None = None) -> Summary:
    """Every layer's output shape, parameters and MACs, with totals (Keras-style).

    `model` is a layer spec, a registry name or a bundle / run directory; `input` the image shape
    ('1x28x28' or (1, 28, 28); a bundle knows its own). A tv:/timm:/hf:/keras: model keeps its
    library's own classifier unless `classes` asks for a new one. `.format()` is the table the CLI
    prints, `.to_dict()` its JSON.

    Examples:
        >>> cnnkit.summary("conv32-3,relu,maxpool2,flatten,dense10", input="1x28x28").total_params  # doctest: +SKIP
        54410
    """
    from .models.resolve import resolve_model, weights_note
    from .nn.summary import summarize

    net, input_shape = resolve_model(model, input_shape=input, num_classes=classes)
    result = summarize(net, input_shape, batch_size=batch_size)
    result.notes.append(weights_note(model))
    return result
