"""Classification: one label per image; the model outputs one logit per class.

Loss: cross-entropy (with the config's label smoothing). Metric: accuracy, which also picks
the best epoch. Test-time flips average the two probability vectors. A prediction is the top-k
classes with their probabilities; evaluation adds per-class precision/recall/F1 and a
confusion matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import Task, register_task


class Classification(Task):
    name = "classification"
    metric = "accuracy"
    metric_short = "acc"
    output_names = ("logits",)

    def criterion(self, config) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing or 0.0)

    def batch_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.argmax(1) == targets).sum()

    def split_scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
        loss = nn.functional.cross_entropy(outputs, targets).item()
        return loss, (outputs.argmax(1) == targets).float().mean().item()

    def merge_flip(self, outputs: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        # The mean of the two probability vectors, as log-probabilities (which argmax and
        # cross-entropy take as logits).
        both = outputs.softmax(1) + flipped.softmax(1)
        return (both / 2).clamp_min(1e-12).log()

    def write_report(self, run_dir: Path, summary: dict, history: list[dict], outputs: torch.Tensor,
                     targets: torch.Tensor, class_names: list[str], *, sections=(), images=None,
                     lr_trace=None, steps_per_epoch: int | None = None) -> Path:
        from ..report.run import finish_report

        return finish_report(run_dir, summary, history, targets.cpu().numpy(), outputs.argmax(1).cpu().numpy(),
                             class_names, sections=sections, images=images,
                             confidence=outputs.softmax(1).max(1).values.cpu().numpy(),
                             lr_trace=lr_trace, steps_per_epoch=steps_per_epoch)

    def evaluate_report(self, outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], *,
                        dataset: str, out_dir: Path) -> dict[str, Any]:
        from ..report.plots import plot_confusion_matrix
        from ..report.run import per_class_scores

        predictions, labels = outputs.argmax(1).numpy(), targets.numpy()
        matrix, per_class = per_class_scores(labels, predictions, class_names)
        png = plot_confusion_matrix(matrix, class_names, out_dir / "confusion_matrix.png",
                                    title=f"{dataset} test set")
        return {
            "dataset": dataset,
            "images": int(len(labels)),
            "accuracy": float((predictions == labels).mean()),
            "per_class": per_class,
            "confusion_matrix": matrix.tolist(),
            "confusion_matrix_png": str(png),
        }

    def decode(self, outputs: np.ndarray | torch.Tensor, class_names: list[str], top_k: int) -> list[list[dict]]:
        """For each image, its top-k classes: [{class, index, probability}], most probable first."""
        probabilities = torch.as_tensor(outputs).float().softmax(1)
        values, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        return [[{"class": class_names[int(i)], "index": int(i), "probability": round(float(v), 6)}
                 for v, i in zip(vs, ix, strict=True)] for vs, ix in zip(values, indices, strict=True)]


CLASSIFICATION = register_task(Classification())
