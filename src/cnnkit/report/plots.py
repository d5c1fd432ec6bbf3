"""The pictures of a run: learning curves, the confusion matrix, the most confident mistakes.

matplotlib with the Agg backend (no screen); every PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..fileio import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(history: list[dict], path: Path, lr_trace: list | None = None,
                steps_per_epoch: int | None = None) -> Path:
    """Loss, accuracy and learning rate per epoch, train beside validation.

    With `lr_trace` ([global step, lr] pairs) the learning-rate panel shows the
    schedule step by step (warm-up included), on the same epoch axis.
    """
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], marker="o", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    if lr_trace and steps_per_epoch:
        steps = np.array([t[0] for t in lr_trace], dtype=float)
        axes[2].plot(steps / steps_per_epoch, [t[1] for t in lr_trace], color="tab:green")
        axes[2].set_title("learning rate (per step)")
    else:
        axes[2].plot(epochs, [h["lr"] for h in history], marker="o", color="tab:green")
        axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path, title: str = "") -> Path:
    """Rows are true classes, columns predictions; cells show counts, colour the row share."""
    n = len(class_names)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def plot_confident_mistakes(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                            confidence: np.ndarray, class_names: list[str], path: Path,
                            count: int = 16) -> Path | None:
    """A grid of the test images the model got wrong with the highest confidence.

    images: uint8 N x C x H x W (C = 1 or 3); confidence: the probability of the predicted
    class. Returns None (and writes nothing) when there is no mistake.
    """
    wrong = np.flatnonzero(predictions != labels)
    if len(wrong) == 0:
        return None
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    cols = min(8, len(order))
    rows = -(-len(order) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order, strict=False):
        img = np.asarray(images[i])
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.transpose(img[:3], (1, 2, 0)))
        ax.set_title(f"true {class_names[labels[i]]}\npred {class_names[predictions[i]]}\n"
                     f"p={confidence[i]:.2f}", fontsize=7)
    fig.suptitle("most confidently wrong test images", fontsize=9)
    return _save(fig, path)


def plot_lr_find(lrs: list[float], losses: list[float], smoothed: list[float], suggestion: float,
                 path: Path, title: str = "") -> Path:
    """The range test: loss against learning rate (log axis), the suggestion marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(lrs, losses, color="0.75", linewidth=0.8, label="loss per step")
    ax.plot(lrs, smoothed, color="tab:blue", label="smoothed")
    ax.set_xscale("log")
    finite = [v for v in smoothed if np.isfinite(v)]
    if finite:  # keep the blow-up at the end from flattening the interesting part
        low = min(finite + [v for v in losses if np.isfinite(v)])
        first = max(finite[: max(1, len(finite) // 10)])
        ax.set_ylim(low - 0.1 * abs(first - low) - 1e-3, first + 0.5 * abs(first - low) + 1e-3)
    if np.isfinite(suggestion):
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested lr {suggestion:.2g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)
