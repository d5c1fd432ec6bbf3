"""The Task interface: what a batch holds and what "right" means, asked by every part of a run.

The trainer, `cnnkit evaluate`, `cnnkit predict`, the run report and export never branch on
a task's name; they ask its Task object (DESIGN.md, "Tasks"):

| question                                    | method / attribute                  | asked by                 |
|---------------------------------------------|-------------------------------------|--------------------------|
| the loss of a batch                         | `criterion(config)`                 | Trainer.train_step       |
| the running training score of a batch       | `batch_score(outputs, targets)`     | Trainer.train_step       |
| loss and score of a whole split             | `split_scores(outputs, targets)`    | Trainer.evaluate         |
| which score picks the best epoch            | `metric` (higher is better)         | Trainer.fit, metrics.csv |
| how flip test-time augmentation merges      | `merge_flip(outputs, flipped)`      | Trainer.predict          |
| the test metrics of summary.json            | `test_summary(outputs, targets)`    | train/run.finish_run     |
| plots and report.md of a finished run       | `write_report(...)`                 | train/run.finish_run     |
| `cnnkit evaluate`'s result and pictures     | `evaluate_report(...)`              | report/evaluate.py       |
| how predictions are decoded for a user      | `decode(outputs, class_names, k)`   | deploy/runtimes.py       |
| what an exported model outputs              | `output_names`                      | deploy/export.py         |

`outputs` are what the model returns for a batch (stacked over a split as one tensor) and
`targets` what the loader yields beside the images. Classification (tasks/classification.py)
is the first implementation; a new task subclasses `Task`, fills these in and registers
itself with `register_task` (see docs/tasks.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class Task:
    """Base class of the tasks; every method is one question the run asks (see the module doc)."""

    name: str = "task"
    metric: str = "score"  # the headline metric: metrics.csv's train_<metric>/val_<metric>, best epoch
    metric_short: str = "score"  # its label in the progress line
    output_names: tuple[str, ...] = ("output",)  # the exported model's outputs, in order

    @property
    def metrics_columns(self) -> tuple[str, ...]:
        """The columns of metrics.csv: nothing that depends on the clock (train/rundir.py)."""
        return ("epoch", "lr", "train_loss", f"train_{self.metric}", "val_loss", f"val_{self.metric}")

    def criterion(self, config) -> nn.Module:
        raise NotImplementedError

    def batch_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The sum over the batch of the per-sample score (a 0-d tensor on the device; the trainer
        divides the running sum by the samples seen, without waiting for the device every step)."""
        raise NotImplementedError

    def split_scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
        """(mean loss, metric) over a whole split."""
        raise NotImplementedError

    def merge_flip(self, outputs: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """Combine the outputs for images and their left-right mirror images (test-time augmentation)."""
        raise NotImplementedError

    def test_summary(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """The test metrics that go into summary.json (at least `test_<metric>` and `test_loss`)."""
        loss, score = self.split_scores(outputs, targets)
        return {f"test_{self.metric}": round(score, 6), "test_loss": round(loss, 6)}

    def write_report(self, run_dir: Path, summary: dict, history: list[dict], outputs: torch.Tensor,
                     targets: torch.Tensor, class_names: list[str], *, sections=(), images=None,
                     lr_trace=None, steps_per_epoch: int | None = None) -> Path:
        raise NotImplementedError

    def evaluate_report(self, outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], *,
                        dataset: str, out_dir: Path) -> dict[str, Any]:
        raise NotImplementedError

    def decode(self, outputs: np.ndarray | torch.Tensor, class_names: list[str], top_k: int) -> list[Any]:
        """One record per sample of the batch, as `cnnkit predict` shows it."""
        raise NotImplementedError


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make a task known by its name; a second task of the same name is an error."""
    if task.name in TASKS:
        raise ValueError(f"a task named {task.name!r} is registered already ({type(TASKS[task.name]).__name__})")
    TASKS[task.name] = task
    return task


# The modules of the tasks, imported on first use; each registers its task.
TASK_MODULES = ("classification",)


def get_task(name: str | None) -> Task:
    """The task of this name (None: classification, what runs and bundles made before tasks existed)."""
    import importlib

    from ..errors import ConfigError

    for module in TASK_MODULES:
        importlib.import_module(f".{module}", __package__)
    name = name or "classification"
    if name not in TASKS:
        raise ConfigError(f"cnnkit has no {name!r} task yet; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]
