"""cnnkit: convolutional neural networks end to end — build, train, transfer, explain, export.

The same verbs as the `cnnkit` command:

    >>> import cnnkit
    >>> run = cnnkit.train(data="digits", epochs=5)          # doctest: +SKIP
    >>> model = cnnkit.load(run.run_dir)                      # doctest: +SKIP
    >>> cnnkit.predict(run.run_dir, ["seven.png"])            # doctest: +SKIP
    >>> cnnkit.finetune(str(run.run_dir), "fashion-mnist", strategy="gradual")  # doctest: +SKIP
    >>> cnnkit.export(run.run_dir, format="onnx", out="model.onnx")            # doctest: +SKIP
"""

from .api import RunResult, evaluate, load, lr_find, predict, train
from .deploy.export import export_model as export
from .errors import CnnkitError
from .explain.report import explain_model as explain
from .finetune import finetune
from .models import create_model, list_models
from .nn.summary import summarize
from .train.config import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "CnnkitError", "RunResult", "TrainConfig", "__version__", "create_model", "evaluate", "explain",
    "export", "finetune", "list_models", "load", "lr_find", "predict", "summarize", "train",
]
