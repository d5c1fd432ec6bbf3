"""Text views of the catalog for `cnnkit datasets`: the table, one record, a sample grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .catalog import DatasetInfo, get_info, list_datasets
from .sources import _parent_folders, _present, dataset_cache_dir

LEVELS = ("builtin", "beginner", "intermediate", "advanced")


def availability(info: DatasetInfo) -> str:
    """cached / system copy / downloadable / manual download / not a classification task yet."""
    if info.obtain == "builtin":
        return "built in"
    if info.task != "classification":
        return "not a classification task yet"
    if not info.trainable:
        return "not supported yet (no reader)"
    cache = dataset_cache_dir(info.name)
    if info.files:
        folders = [cache, *_parent_folders(info)]
        if any(all(_present(f, r) for r in info.files) for f in folders):
            return "cached"
        if any(all(_present(Path(p), r) for r in info.files) for p in info.system_paths):
            return "system copy"
        if info.extra.get("expect") is None and info.obtain == "download":
            return "downloadable"
    expect = info.extra.get("expect", ())
    if any((cache / e).exists() for e in expect):
        return "cached"
    return "downloadable" if info.obtain == "download" else "manual download"


def _shape(i: DatasetInfo | dict) -> str:
    shape, load_size = (i["shape"], i["load_size"]) if isinstance(i, dict) else (i.shape, i.load_size)
    if shape:
        return "x".join(map(str, shape))
    return f"var->{load_size[0]}" if load_size else "variable"


def _count(n: int | None) -> str:
    return f"{n:,}" if isinstance(n, int) else "-"


# {recipe level: augmentation preset} for (dataset name, input shape): the training recipe's
# (train/recipes.py `augmentation`), which the CLI passes in; the catalog does not state it.
Augmentation = Callable[[str, "tuple[int, ...] | None"], dict]


def _augmentation_text(levels: dict) -> str:
    default = levels.get("default") or "none"
    others = [f"--recipe {level}: {preset or 'none'}" for level, preset in levels.items() if level != "default"]
    return f"{default} (the training recipe's{''.join('; ' + o for o in others)})"


def record(name: str, augmentation: Augmentation | None = None) -> dict:
    """One record as plain data (for --json), with its availability here (and its recipe's augmentation)."""
    import dataclasses

    i = get_info(name)
    data = dataclasses.asdict(i)
    if augmentation is not None and i.trainable:
        data["augment"] = augmentation(i.name, i.input_shape)
    data["availability"] = availability(i)
    data["cache_folder"] = str(dataset_cache_dir(i.name))
    return data


def records(level: str | None = None, augmentation: Augmentation | None = None) -> list[dict]:
    return [record(i.name, augmentation) for i in list_datasets() if level in (None, i.level)]


def table(rows: list[dict] | None = None, only_level: str | None = None) -> str:
    """The `cnnkit datasets` table of `rows` (records(); default: every dataset of `only_level` or all)."""
    rows = records(only_level) if rows is None else rows
    lines = [f"  {'name':<22} {'task':<14} {'C x H x W':<10} {'classes':>7} {'train':>10} {'test':>8}  here"]
    for level in [only_level] if only_level else LEVELS:
        shown = [r for r in rows if r["level"] == level]
        if not shown:
            continue
        lines.append(f"{level}:")
        for r in shown:
            name = ("  " + r["name"]) if r["parent"] else r["name"]
            lines.append(f"  {name:<22} {r['task']:<14} {_shape(r):<10} {r['num_classes']:>7,} "
                         f"{_count(r['train_size']):>10} {_count(r['test_size']):>8}  {r['availability']}")
    lines.append("`cnnkit datasets info NAME` tells how to obtain one; any image folder works too: "
                 "cnnkit train --data ./folder")
    return "\n".join(lines)


def info(name: str, augmentation: Augmentation | None = None) -> str:
    i = get_info(name)
    names = ""
    if i.class_names:
        shown = i.class_names if len(i.class_names) <= 50 else (*i.class_names[:20], "...")
        names = ": " + ", ".join(shown)
    splits = f"train {_count(i.train_size)}" + (f", val {_count(i.val_size)}" if i.val_size else "") \
        + f", test {_count(i.test_size)}"
    lines = [
        f"{i.title} ({i.name})",
        f"  level          {i.level}",
        f"  task           {i.task}",
        f"  image          {'x'.join(map(str, i.shape)) if i.shape else 'variable size'} (C x H x W)"
        + (f"; loaded at {i.load_size[0]}x{i.load_size[1]}" if i.load_size else ""),
        f"  classes        {i.num_classes:,}{names}",
        f"  splits         {splits}",
    ]
    if i.format:
        lines.append(f"  format         {i.format}")
    lines += [
        f"  licence        {i.license or 'unconfirmed'}",
        f"  homepage       {i.homepage}",
    ]
    if i.access:
        lines.append(f"  access         {i.access}")
    if i.aliases:
        lines.append(f"  aliases        {', '.join(i.aliases)}")
    if i.parent:
        lines.append(f"  variant of     {i.parent}")
    if i.trainable:
        norm = f"mean {i.mean} std {i.std}" if i.mean else "computed from the training split when loaded"
        lines.append(f"  normalisation  {norm}")
        if augmentation is not None:
            lines.append(f"  augmentation   {_augmentation_text(augmentation(i.name, i.input_shape))}")
        lines.append(f"  reader         {i.reader}")
    lines.append(f"  here           {availability(i)}")
    if i.accuracy:
        lines.append("  published accuracy (test set):")
        lines += [f"    {level:<28} {result}" for level, result in i.accuracy]
    cache = dataset_cache_dir(i.name)
    if i.files:
        lines.append(f"  files (downloaded to, or put by hand into, {cache}/):")
        for f in i.files:
            check = f"sha256 {f.sha256}" if f.sha256 else (f"md5 {f.md5}" if f.md5 else "no published checksum")
            size = f", {f.size:,} bytes" if f.size else ""
            lines.append(f"    {f.name}  ({check}{size})")
            lines += [f"      {u}" for u in f.urls]
        if i.system_paths:
            lines.append(f"  system copy:   {', '.join(i.system_paths)}")
    if i.manual_steps:
        lines.append(f"  how to obtain: {i.manual_steps}.")
        lines.append(f"  folder:        {cache}/")
    if not i.trainable and i.obtain != "builtin":
        lines.append("  training:      not supported yet (cnnkit trains image classifiers)")
    if i.notes:
        lines.append(f"  notes: {i.notes}")
    return "\n".join(lines)


def show(name: str, out: str | None = None, per_class: int = 8, max_classes: int = 20) -> str:
    """Write a PNG grid with `per_class` training samples for each of the first classes; returns its path.

    `out` ending in .png is the file itself; any other `out` is a folder (default: the current
    one) that gets NAME-samples.png.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ..fileio import atomic_path
    from .arrays import FileList
    from .dataset import load_dataset

    data = load_dataset(name, stream=True)  # image folders: paths only; the few shown are decoded below
    n = min(data.num_classes, max_classes)
    labels = data.train.labels
    picks = [(labels == c).nonzero().flatten()[:per_class] for c in range(n)]
    chosen = data.train.subset(torch.cat(picks)) if picks else data.train
    if isinstance(chosen, FileList):
        from .decode import decode_all

        chosen, _ = decode_all(chosen)
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * 0.9, n * 0.9 + 0.4), squeeze=False)
    for c in range(n):
        rows = (chosen.labels == c).nonzero().flatten()
        for j in range(per_class):
            ax = axes[c][j]
            ax.axis("off")
            if j < len(rows):
                img = chosen.images[rows[j]].numpy()
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=255)
        axes[c][0].set_title(data.class_names[c], fontsize=7, loc="left")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in data.name)
    path = Path(out or ".").expanduser()
    if path.suffix.lower() != ".png":
        path = path / f"{safe}-samples.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path)
