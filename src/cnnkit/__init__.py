"""cnnkit: convolutional neural networks end to end — build, train, transfer, explain, export.

The same verbs as the `cnnkit` command (the table in `cnnkit/api.py` says where each is done):

    >>> import cnnkit
    >>> run = cnnkit.train(data="digits", epochs=5)          # doctest: +SKIP
    >>> model = cnnkit.load(run.run_dir)                      # doctest: +SKIP
    >>> cnnkit.predict(run.run_dir, ["seven.png"])            # doctest: +SKIP
    >>> cnnkit.finetune(str(run.run_dir), "fashion-mnist", strategy="gradual")  # doctest: +SKIP
    >>> cnnkit.export(run.run_dir, format="onnx", out="model.onnx")            # doctest: +SKIP
"""

from . import explain as _explain_package  # noqa: F401  (see below)
from . import train as _train_package  # noqa: F401
from .errors import CnnkitError

# Two verbs share their names with subpackages (cnnkit.train, cnnkit.explain). Python sets a
# subpackage as an attribute of its parent the first time it is imported; importing both here
# (their __init__ files import nothing) and deleting the attributes lets the verbs below own
# the names for good.
del train, explain  # noqa: F821

# The verbs import torch (a second or two); `cnnkit --help` and `import cnnkit.errors` need not wait
# for it, so each name is imported on first use (PEP 562).
_LAZY = {
    "RunResult": ("train.run", "RunResult"), "evaluate": ("api", "evaluate"), "load": ("api", "load"),
    "lr_find": ("api", "lr_find"), "predict": ("api", "predict"), "train": ("api", "train"),
    "export": ("deploy.export", "export_model"), "explain": ("explain.report", "explain_model"),
    "finetune": ("transfer.finetune", "finetune"), "create_model": ("models", "create_model"),
    "list_models": ("api", "list_models"), "summarize": ("nn.summary", "summarize"),
    "datasets": ("api", "datasets"), "datasets_info": ("api", "datasets_info"),
    "datasets_show": ("api", "datasets_show"), "summary": ("api", "summary"),
    "TrainConfig": ("train.config", "TrainConfig"),
}


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
    "CnnkitError", "RunResult", "TrainConfig", "__version__", "create_model", "datasets", "datasets_info",
    "datasets_show", "evaluate", "explain", "export", "finetune", "list_models", "load", "lr_find", "predict",
    "summarize", "summary", "train",
]
