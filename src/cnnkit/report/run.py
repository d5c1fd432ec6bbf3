"""The end of a training run: plots, per-class scores and report.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import plot_confident_mistakes, plot_confusion_matrix, plot_curves
from .report import write_report


def per_class_scores(labels: np.ndarray, predictions: np.ndarray,
                     class_names: list[str]) -> tuple[np.ndarray, list[dict]]:
    """(confusion matrix, [{class, precision, recall, f1, support}]) for one split."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    index = list(range(len(class_names)))
    matrix = confusion_matrix(labels, predictions, labels=index)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=index,
                                                                     zero_division=0)
    per_class = [
        {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]
    return matrix, per_class


def finish_report(run_dir: Path, summary: dict, history: list[dict], labels: np.ndarray,
                  predictions: np.ndarray, class_names: list[str],
                  sections: list[tuple[str, str]] = (), *, images=None, confidence: np.ndarray | None = None,
                  lr_trace: list | None = None, steps_per_epoch: int | None = None) -> Path:
    """Plots (curves, confusion matrix, confident mistakes when images are given) and report.md."""
    matrix, per_class = per_class_scores(labels, predictions, class_names)
    plots = run_dir / "plots"
    plot_curves(history, plots / "curves.png", lr_trace=lr_trace, steps_per_epoch=steps_per_epoch)
    plot_confusion_matrix(matrix, class_names, plots / "confusion_matrix.png",
                          title=f"{summary['dataset']} test set, accuracy {summary['test_accuracy']:.4f}")
    sections = list(sections)
    if images is not None and confidence is not None:
        images = images.cpu().numpy() if hasattr(images, "cpu") else np.asarray(images)
        png = plot_confident_mistakes(images, labels, predictions, confidence, class_names,
                                      plots / "confident_mistakes.png")
        if png is not None:
            sections.append(("Most confidently wrong test images",
                             "The test images the model was surest about and got wrong "
                             "(true class, predicted class, probability of the prediction): "
                             "often label noise or truly ambiguous images.\n\n"
                             "![confident mistakes](plots/confident_mistakes.png)"))
    return write_report(run_dir, summary, history, per_class, sections)
