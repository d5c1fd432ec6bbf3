"""cnnkit: convolutional neural networks end to end — build, train, transfer, explain, export.

The same verbs as the `cnnkit` command:

    >>> import cnnkit
    >>> run = cnnkit.train(data="digits", epochs=5)          # doctest: +SKIP
    >>> model = cnnkit.load(run.run_dir)                      # doctest: +SKIP
    >>> cnnkit.predict(run.run_dir, ["seven.png"])            # doctest: +SKIP
    >>> cnnkit.finetune(str(run.run_dir), "fashion-mnist", strategy="gradual")  # doctest: +SKIP
    >>> cnnkit.export(run.run_dir, format="onnx", out="model.onnx")            # doctest: +SKIP
"""

import sys
import types

from .errors import CnnkitError

# The verbs import torch (a second or two); `cnnkit --help` and `import cnnkit.errors` need not wait
# for it, so each name is imported on first use (PEP 562).
_LAZY = {
    "RunResult": ("api", "RunResult"), "evaluate": ("api", "evaluate"), "load": ("api", "load"),
    "lr_find": ("api", "lr_find"), "predict": ("api", "predict"), "train": ("api", "train"),
    "export": ("deploy.export", "export_model"), "explain": ("explain.report", "explain_model"),
    "finetune": ("finetune", "finetune"), "create_model": ("models", "create_model"),
    "list_models": ("models", "list_models"), "summarize": ("nn.summary", "summarize"),
    "TrainConfig": ("train.config", "TrainConfig"),
}


class _Package(types.ModuleType):
    """Three verbs share their names with subpackages (cnnkit.train, cnnkit.finetune, cnnkit.explain).
    Importing a subpackage makes Python set it as an attribute of this package; the verb keeps the name."""

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


__version__ = "0.1.0"

__all__ = [
    "CnnkitError", "RunResult", "TrainConfig", "__version__", "create_model", "evaluate", "explain",
    "export", "finetune", "list_models", "load", "lr_find", "predict", "summarize", "train",
]
