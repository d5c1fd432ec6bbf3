"""Image folders: a user's own (`cnnkit train --data ./photos`) and the Kaggle-style layouts.

Recognised layouts (hidden files, non-images and `__MACOSX` are ignored):

    root/<class>/*.jpg                         one folder per class, no split
    root/{train,val,test}/<class>/*.jpg        official splits (also seg_train, *_train, ...)
    root/<one folder>/...                      a wrapper folder is looked through
                                               (flowers/, seg_train/seg_train/)
    root/cat.0.jpg, root/dog.1.jpg             labels in the file names (Dogs vs Cats)

Without a test folder a stratified 20% (fixed seed) becomes the test split. An
empty class folder is reported and left out. The image size is the images' own
when they all share one (up to 256), else 128x128; grayscale when all are.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .arrays import FileList, stratified_split
from .decode import DECODE_ERRORS, DataWarning

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tif", ".tiff",
                    ".webp"}
_SPLIT_PATTERNS = {
    "train": re.compile(r"(^|[_\-\s])(train|training)$", re.I),
    "val": re.compile(r"(^|[_\-\s])(val|valid|validation|dev)$", re.I),
    "test": re.compile(r"(^|[_\-\s])(test|testing)$", re.I),
}
_FILENAME_LABEL = re.compile(r"^([A-Za-z][A-Za-z0-9_\- ]*?)[._](\d+)\.[A-Za-z]+$")
TEST_SEED = 0  # the held-out test split must not move when the run's seed changes
DEFAULT_SIZE = (128, 128)
MAX_NATIVE_SIDE = 256


def visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name != "__MACOSX"


def is_image(path: Path) -> bool:
    return path.is_file() and visible(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def images_in(folder: Path) -> list[Path]:
    """Image files under `folder`, at any depth, in a stable order (hidden and non-images left out)."""
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).parts
        if all(not part.startswith(".") and part != "__MACOSX" for part in rel) and is_image(p):
            found.append(p)
    return found


def split_of(name: str) -> str | None:
    for split, pattern in _SPLIT_PATTERNS.items():
        if pattern.search(name):
            return split
    return None


def look_through(folder: Path, stop_at_split: bool = True) -> Path:
    """Descend wrapper folders: a folder holding one visible folder and no images (flowers/,
    seg_train/seg_train). At the top, a lone `train/` is a split, not a wrapper."""
    while True:
        dirs = subdirs(folder)
        if len(dirs) != 1 or any(is_image(p) for p in folder.iterdir()):
            return folder
        if stop_at_split and split_of(dirs[0].name):
            return folder
        folder = dirs[0]


def _split_dirs(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in subdirs(folder):
        split = split_of(d.name)
        if split and split not in found:
            found[split] = look_through(d, stop_at_split=False)
    return found


def scan_classes(folder: Path, class_names: list[str] | None = None) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """(paths, labels, class names, empty classes) of a folder-per-class directory."""
    dirs = {d.name: d for d in subdirs(folder)}
    names = list(class_names) if class_names is not None else sorted(dirs)
    paths: list[str] = []
    labels: list[int] = []
    empty = []
    for index, name in enumerate(names):
        files = images_in(dirs[name]) if name in dirs else []
        if not files:
            empty.append(name)
        paths += map(str, files)
        labels += [index] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), names, empty


def scan_filename_labels(folder: Path) -> tuple[list[str], np.ndarray, list[str]] | None:
    """Dogs-vs-Cats style `cat.123.jpg`: the label is the name before the number; None if not so."""
    files = [p for p in sorted(folder.iterdir()) if is_image(p)]
    matches = [_FILENAME_LABEL.match(p.name) for p in files]
    if not files or not all(matches):
        return None
    prefixes = [m.group(1).lower() for m in matches]  # type: ignore[union-attr]
    names = sorted(set(prefixes))
    if len(names) < 2:
        return None
    index = {n: i for i, n in enumerate(names)}
    return [str(p) for p in files], np.asarray([index[p] for p in prefixes], dtype=np.int64), names


def guess_format(paths: list[str], sample: int = 64) -> tuple[tuple[int, int], int]:
    """(size (H, W), channels) from the headers of up to `sample` evenly spaced images."""
    sizes, gray = Counter(), True
    step = max(1, len(paths) // sample)
    for p in paths[::step][:sample]:
        try:
            with Image.open(p) as img:
                sizes[(img.height, img.width)] += 1
                gray &= img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        except DECODE_ERRORS:
            continue
    size = DEFAULT_SIZE
    if len(sizes) == 1:
        (h, w), = sizes
        if max(h, w) <= MAX_NATIVE_SIDE:
            size = (h, w)
    return size, 1 if gray and sizes else 3


def _report_empty(empty: list[str], where: Path, strict: bool, messages: list[str]) -> None:
    if not empty:
        return
    text = f"{where}: class folder(s) {', '.join(empty)} hold no images"
    if strict:
        raise DatasetError(text + "; add images or remove the folders")
    messages.append(text + " and were left out")
    warnings.warn(text + " and were left out", DataWarning, stacklevel=3)


def read_folder(root: Path, size: tuple[int, int] | None = None, *, strict: bool = False,
                channels: int | None = None, class_names: list[str] | None = None,
                test_fraction: float = 0.2, val_as_test: bool = False) -> dict:
    """Scan an image folder into FileList splits (see the module docstring for the layouts)."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    base = look_through(root)
    split_dirs = _split_dirs(base)
    if val_as_test and "val" in split_dirs and "test" not in split_dirs:
        split_dirs["test"] = split_dirs.pop("val")
    if "train" not in split_dirs:
        split_dirs = {"train": base}
    messages: list[str] = []
    raw: dict = {}
    train_dir = split_dirs["train"]
    by_name = scan_filename_labels(train_dir) if not subdirs(train_dir) else None
    if by_name is not None:
        paths, labels, names = by_name
        empty: list[str] = []
    else:
        paths, labels, names, empty = scan_classes(train_dir, class_names)
    if not paths:
        raise DatasetError(f"{root} holds no images in class folders (expected {root}/<class>/*.jpg, "
                           f"or train/<class>/ and test/<class>/ inside it)")
    _report_empty(empty, train_dir, strict, messages)
    kept = [n for n in names if n not in empty] if class_names is None else names
    if class_names is None and empty:
        remap = {names.index(n): i for i, n in enumerate(kept)}
        labels = np.asarray([remap[int(v)] for v in labels], dtype=np.int64)
    guessed_size, guessed_channels = guess_format(paths)
    size = size or guessed_size
    channels = channels or guessed_channels

    def as_list(p, lab) -> FileList:
        return FileList(p, lab, tuple(size), channels)

    raw["train"] = as_list(paths, labels)
    for split in ("val", "test"):
        if split not in split_dirs:
            continue
        folder = split_dirs[split]
        if by_name is not None:
            other = scan_filename_labels(folder)
            if other is None:
                continue  # e.g. Kaggle's unlabelled test1/
            p, lab, other_names = other
            known = [other_names[int(v)] in kept for v in lab]  # a class train lacks: its files are left out
            p = [path for path, keep in zip(p, known, strict=True) if keep]
            lab = np.asarray([kept.index(other_names[int(v)]) for v, keep in zip(lab, known, strict=True) if keep])
        else:
            if not subdirs(folder):
                continue  # a flat, unlabelled folder (seg_pred, the 29-image ASL test folder)
            p, lab, _, split_empty = scan_classes(folder, kept)
            _report_empty(split_empty, folder, strict, messages)
        if len(p):
            raw[split] = as_list(p, lab)
    if "test" not in raw:
        keep, held = stratified_split(raw["train"].labels.numpy(), test_fraction, TEST_SEED)
        raw["train"], raw["test"] = raw["train"].subset(keep), raw["train"].subset(held)
    raw["class_names"] = kept
    raw["warnings"] = messages
    return raw


def load_folder(path: str | Path, **kwargs):
    """Load a user's image folder into DataSplits (same keywords as `load_dataset`)."""
    from .dataset import load_dataset

    if not Path(path).expanduser().is_dir():
        raise DatasetError(f"{path} is not a folder of images")
    return load_dataset(str(path), **kwargs)
