"""The Task interface: the trainer, the run's finish, predict and export ask the task object.

A task that is not classification (here: top-2 accuracy, with its own loss and decoding) plugs in
by registering itself; nothing in the loop names it, yet metrics.csv, summary.json, the bundle and
`cnnkit predict` all follow it.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnkit.deploy.runtimes import predict_images
from cnnkit.errors import ConfigError
from cnnkit.models.bundle import read_meta
from cnnkit.models.registry import create_model
from cnnkit.tasks.base import TASKS, Task, get_task, register_task
from cnnkit.tasks.classification import Classification
from cnnkit.train.run import finish_run, make_trainer, start_run


class TopTwo(Task):
    """Right when the label is among the two most probable classes."""

    name = "top2-test"
    metric = "top2"
    metric_short = "top2"
    output_names = ("scores",)

    def __init__(self) -> None:
        self.losses = 0  # how often the trainer asked for the loss

    def criterion(self, config) -> nn.Module:
        task = self

        class Counting(nn.CrossEntropyLoss):
            def forward(self, outputs, targets):
                task.losses += 1
                return super().forward(outputs, targets)

        return Counting()

    def _hits(self, outputs, targets):
        return (outputs.topk(2, dim=1).indices == targets[:, None]).any(1)

    def batch_score(self, outputs, targets):
        return self._hits(outputs, targets).sum()

    def split_scores(self, outputs, targets):
        return nn.functional.cross_entropy(outputs, targets).item(), self._hits(outputs, targets).float().mean().item()

    def merge_flip(self, outputs, flipped):
        return (outputs + flipped) / 2

    def write_report(self, run_dir, summary, history, outputs, targets, class_names, **_):
        path = run_dir / "report.md"
        path.write_text(f"# top-2 {summary['test_top2']:.4f}\n")
        return path

    def decode(self, outputs, class_names, top_k):
        pairs = torch.as_tensor(outputs).topk(2, dim=1).indices
        return [[class_names[int(i)] for i in pair] for pair in pairs]


@pytest.fixture(scope="module")
def top_two():
    task = TASKS.get("top2-test") or register_task(TopTwo())
    yield task


def test_a_registered_task_drives_loss_metrics_summary_bundle_and_predict(top_two, tmp_path):
    quiet = dict(log=lambda *_: None)
    config, data, run_dir, device = start_run(None, data="digits", epochs=2, limit=300, tensorboard=False,
                                              out=str(tmp_path), name="t", **quiet)
    data = dataclasses.replace(data, task=top_two.name)
    model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    trainer = make_trainer(model, data, config, device, run_dir, live=False, **quiet)
    assert trainer.task is top_two
    trainer.fit()
    assert top_two.losses == 2 * len(trainer.train_loader)  # every training step asked the task
    result = finish_run(trainer, **quiet)

    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "train_top2", "val_loss", "val_top2"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "top2-test" and "test_accuracy" not in summary
    assert summary["test_top2"] == result.summary["test_top2"] and 0.5 < summary["test_top2"] <= 1.0
    assert summary["best_val_top2"] == max(float(r["val_top2"]) for r in rows)
    assert (run_dir / "report.md").read_text().startswith("# top-2")
    assert read_meta(run_dir / "best").task == "top2-test"

    image = tmp_path / "seven.png"
    Image.fromarray(np.full((8, 8), 128, dtype=np.uint8)).save(image)
    [record] = predict_images(run_dir, [image])
    assert len(record["top"]) == 2 and all(name in data.class_names for name in record["top"])


def test_classification_is_the_default_and_names_are_unique():
    assert isinstance(get_task(None), Classification) and get_task("classification") is get_task(None)
    with pytest.raises(ValueError, match="registered already"):
        register_task(Classification())
    with pytest.raises(ConfigError, match="no 'detection' task yet"):
        get_task("detection")


def test_classification_merges_flips_as_the_mean_of_probabilities():
    task = get_task("classification")
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    assert torch.allclose(task.merge_flip(a, b).exp(), torch.tensor([[0.5, 0.5]]))
    [top] = task.decode(torch.tensor([[0.0, 1.0, 3.0]]), ["a", "b", "c"], top_k=2)
    assert [t["class"] for t in top] == ["c", "b"] and top[0]["probability"] > top[1]["probability"]
