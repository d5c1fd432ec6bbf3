"""Text views of the catalog for `cnnkit datasets`: the table, one record, a sample grid."""

from __future__ import annotations

from pathlib import Path

from .catalog import DatasetInfo, get_info, list_datasets
from .sources import dataset_cache_dir

LEVELS = ("builtin", "beginner", "intermediate", "advanced")


def availability(info: DatasetInfo) -> str:
    if info.obtain == "builtin":
        return "built in"
    if not info.trainable:
        return f"{info.task}: not trainable yet"
    names = [f.name for f in info.files]
    if names and all((dataset_cache_dir(info.name) / n).exists() for n in names):
        return "cached"
    if names and any(all((Path(p) / n).exists() for n in names) for p in info.system_paths):
        return "system copy"
    return "downloadable" if info.obtain == "download" else "manual download"


def table() -> str:
    lines = []
    for level in LEVELS:
        rows = [i for i in list_datasets() if i.level == level]
        if not rows:
            continue
        lines.append(f"{level}:")
        for i in rows:
            shape = "x".join(map(str, i.shape)) if i.shape else "variable"
            sizes = f"{i.train_size or '?':>9,}" if isinstance(i.train_size, int) else f"{'?':>9}"
            test = f"{i.test_size:,}" if isinstance(i.test_size, int) else "-"
            lines.append(f"  {i.name:<22} {i.task:<15} {shape:<10} {i.num_classes:>5} classes "
                         f"{sizes} train {test:>7} test  {availability(i)}")
    return "\n".join(lines)


def info(name: str) -> str:
    i = get_info(name)
    lines = [
        f"{i.title} ({i.name})",
        f"  level         {i.level}",
        f"  task          {i.task}",
        f"  image         {'x'.join(map(str, i.shape)) if i.shape else 'variable'} (C x H x W)",
        f"  classes       {i.num_classes}" + (f": {', '.join(i.class_names)}" if 0 < len(i.class_names) <= 30 else ""),
        f"  splits        train {i.train_size}, test {i.test_size}" + (f", val {i.val_size}" if i.val_size else ""),
        f"  licence       {i.license or 'unconfirmed'}",
        f"  homepage      {i.homepage}",
        f"  availability  {availability(i)}",
    ]
    if i.accuracy:
        lines.append("  published accuracy:")
        lines += [f"    {level:<26} {result}" for level, result in i.accuracy]
    if i.files:
        lines.append(f"  files (into {dataset_cache_dir(i.name)}):")
        lines += [f"    {f.name}  {' | '.join(f.urls)}" for f in i.files]
    if i.manual_steps:
        lines.append(f"  how to obtain: {i.manual_steps}")
    if i.notes:
        lines.append(f"  notes: {i.notes}")
    return "\n".join(lines)


def show(name: str, out: str | None = None) -> str:
    """Write a PNG grid with a few samples per class; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path
    from .dataset import load_dataset

    data = load_dataset(name)
    per_class = 8
    n = data.num_classes
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * 0.9, n * 0.9 + 0.4), squeeze=False)
    labels = data.train.labels
    for c in range(n):
        index = (labels == c).nonzero().flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c][j]
            ax.axis("off")
            if j < len(index):
                img = data.train.images[index[j]]
                ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray")
        axes[c][0].set_title(data.class_names[c], fontsize=7, loc="left")
    path = Path(out or ".") / f"{data.name}-samples.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path)
