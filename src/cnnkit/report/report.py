"""`report.md`: what was trained, on what, how it went, with the plots beside it."""

from __future__ import annotations

from pathlib import Path

from ..fileio import write_text


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def write_report(run_dir: Path, summary: dict, history: list[dict], per_class: list[dict],
                 sections: list[tuple[str, str]] = ()) -> Path:
    """Write run_dir/report.md from the summary, the epoch history and the per-class scores."""
    lines = [
        f"# Run `{run_dir.name}`",
        "",
        f"Model `{summary['model']}` ({summary.get('parameters', 0):,} parameters) trained on "
        f"`{summary['dataset']}` for {summary['epochs']} epochs in {summary['train_seconds']:.1f} s "
        f"({summary['images_per_second']:,.0f} images/s) on {summary.get('device', '?')}.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| test accuracy | {summary['test_accuracy']:.4f} |",
        f"| best validation accuracy | {summary['best_val_accuracy']:.4f} |",
        f"| test loss | {summary.get('test_loss', float('nan')):.4f} |",
        f"| train / val / test images | {summary.get('train_images')} / {summary.get('val_images')} / "
        f"{summary.get('test_images')} |",
        "",
    ]
    if summary.get("skipped_files"):
        lines += [f"{summary['skipped_files']} unreadable file(s) were skipped while loading the data.", ""]
    for title, body in sections:
        lines += [f"## {title}", "", body, ""]
    lines += ["## Learning curves", "", "![curves](plots/curves.png)", "",
              "## Per epoch", "", _table(history), "",
              "## Test set, per class", "", _table(per_class), "",
              "![confusion matrix](plots/confusion_matrix.png)", ""]
    path = run_dir / "report.md"
    write_text(path, "\n".join(lines))
    return path
