"""From a dataset name to train/val/test splits: the one entry point the trainer uses.

`load_dataset(name)` finds the files (sources), reads them (a reader per on-disk
format, registered with `@reader`), makes the splits (official ones where the
authors publish them, else a stratified validation split from train with a fixed
seed), applies `--limit`/`--fraction`, and picks the loading path:

- tensor path: uint8 N x C x H x W in memory (`ImageArrays`); image files are
  decoded once (and cached) when they fit in `TENSOR_PATH_BYTES`;
- streaming path: the splits stay `FileList`s, decoded batch by batch by
  `loader.StreamingLoader` (use `loader.make_loader`, which picks the right one).

`DataSplits.path` says which applies.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DatasetError
from .arrays import FileList, ImageArrays, stratified_split, to_tensor_images
from .catalog import DatasetInfo, get_info
from .sources import cnnkit_home, locate

__all__ = [
    "READERS", "DataSplits", "FileList", "ImageArrays", "ReadOptions", "load_dataset", "reader",
    "stratified_split", "to_tensor_images", "TENSOR_PATH_BYTES", "locate",
]

# Decoded image folders up to this size go to memory (the tensor path); larger ones stream.
TENSOR_PATH_BYTES = int(float(os.environ.get("CNNKIT_TENSOR_PATH_GB", "2")) * 2**30)
Split = ImageArrays | FileList


@dataclass
class DataSplits:
    """Everything the trainer needs to know about the data of a run."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"  # used only where the run's recipe names no augmentation (folders, data in memory)
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, for the report
    path: str = "tensor"  # "tensor" (ImageArrays in memory) or "streaming" (FileList, decoded per batch)
    warnings: list[str] = field(default_factory=list)  # e.g. empty class folders
    task: str = "classification"  # which Task (cnnkit/tasks/) reads these targets

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.sample_shape

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class ReadOptions:
    """What a reader may need beyond the catalog record."""

    strict: bool = False
    image_size: tuple[int, int] | None = None  # override the record's load_size


# A reader takes the record (and ReadOptions) and returns {"train": split, "test": split,
# ["val": split], ["class_names": [...]], ["skipped": [...]]}; a split is ImageArrays or FileList.
Reader = Callable[..., dict]
READERS: dict[str, Reader] = {}


def reader(key: str) -> Callable[[Reader], Reader]:
    def add(fn: Reader) -> Reader:
        READERS[key] = fn
        return fn

    return add


def _call_reader(fn: Reader, info: DatasetInfo, options: ReadOptions) -> dict:
    if len(inspect.signature(fn).parameters) >= 2:
        return fn(info, options)
    return fn(info)


def _load_readers() -> None:
    # The reader modules register themselves on import.
    from . import folder, readers_arrays, readers_images, readers_tables  # noqa: F401


def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.1,
    limit: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    strict: bool = False,
    image_size: int | tuple[int, int] | None = None,
    stream: bool | None = None,
    cache: bool | None = None,
) -> DataSplits:
    """Load a catalogued dataset (or an image folder) by name into train/val/test splits.

    Args:
        name: catalog name or alias (`fashion-mnist`, `cifar10`, ...) or a folder path.
        val_fraction: share of the training split held out, stratified, for validation
            (ignored where the dataset has an official validation split).
        limit: keep N training images, stratified by class (quick runs).
        fraction: keep this share of the training images, stratified.
        seed: fixes the validation split.
        strict: an unreadable image raises DatasetError instead of being skipped.
        image_size: size variable-size images are resized to (default: the record's, or
            for a folder the common size of its images).
        stream: force the streaming path (True) or the tensor path (False); None chooses
            by the decoded size (TENSOR_PATH_BYTES).
        cache: keep decoded image folders under $CNNKIT_HOME/decoded (default: for 1,000+ images).
    """
    _load_readers()
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if Path(name).expanduser().is_dir():
        from .folder import read_folder
        from .sources import catalogued_in

        root = Path(name).expanduser().resolve()
        found = catalogued_in(root)  # a catalogued dataset's own files (sign_mnist_train.csv, IDX, ...)
        if found is not None:
            info = dataclasses.replace(found, name=root.name)
            raw = _call_reader(READERS[info.reader], info, ReadOptions(strict=strict, image_size=size))
            augment = "none"  # as for the catalogued dataset: the (size-based) recipe names it
        else:
            raw = read_folder(root, size, strict=strict)
            info = DatasetInfo(name=root.name, title=f"image folder {root}", level="user", task="classification",
                               shape=None, num_classes=len(raw["class_names"]), reader="folder")
            # A folder has no recipe of its own: the size-based one (train/recipes.py `fallback`) names
            # an augmentation from 17 px up; below that this one is used.
            augment = raw.pop("augment", "crop-flip")
    else:
        info = get_info(name)
        if not info.trainable:
            what = f"a {info.task} dataset" if info.task != "classification" else "stored in a format cnnkit cannot read yet"
            raise DatasetError(
                f"{info.title} is {what}; cnnkit trains image classifiers only for now, so it cannot train "
                f"on it yet. `cnnkit datasets info {info.name}` describes it and how to obtain it."
            )
        if info.reader not in READERS:
            raise DatasetError(f"{info.name}: reader {info.reader!r} is not available")
        raw = _call_reader(READERS[info.reader], info, ReadOptions(strict=strict, image_size=size))
        augment = "none"  # a catalog dataset's augmentation is its recipe's (train/recipes.py)
    splits = _finish(info, raw, val_fraction=val_fraction, limit=limit, fraction=fraction, seed=seed,
                     strict=strict, stream=stream, cache=cache)
    splits.augment = augment
    return splits


def _finish(info: DatasetInfo, raw: dict, *, val_fraction, limit, fraction, seed, strict, stream,
            cache) -> DataSplits:
    class_names = list(raw.get("class_names") or info.class_names or [str(i) for i in range(info.num_classes)])
    skipped = list(raw.get("skipped", []))
    train = raw["train"]
    if "val" in raw:
        val = raw["val"]
    else:
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        keep, held = stratified_split(train.labels.numpy(), val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    train = limit_split(train, limit=limit, fraction=fraction, seed=seed)
    test = raw["test"]
    splits = {"train": train, "val": val, "test": test}
    path = "tensor"
    if any(isinstance(s, FileList) for s in splits.values()):
        total = sum(len(s) * int(np.prod(s.sample_shape)) for s in splits.values())
        path = "streaming" if (stream if stream is not None else total > TENSOR_PATH_BYTES) else "tensor"
        if path == "tensor":
            from .decode import decode_all

            for key, split in splits.items():
                if isinstance(split, FileList):
                    use_cache = cache if cache is not None else len(split) >= 1000
                    arrays, bad = decode_all(split, strict=strict,
                                             cache_dir=cnnkit_home() / "decoded" if use_cache else None)
                    splits[key] = arrays
                    skipped += bad
    for key, split in splits.items():
        if len(split) == 0:
            raise DatasetError(f"{info.name}: the {key} split is empty; add images or lower --val-fraction")
    if path == "streaming":
        for split in splits.values():
            split.skipped, split.strict = skipped, strict  # the loader reports into DataSplits.skipped
    mean, std = info.mean, info.std
    if not mean:
        mean, std = channel_stats(splits["train"])
    return DataSplits(
        name=info.name, train=splits["train"], val=splits["val"], test=splits["test"], class_names=class_names,
        mean=tuple(mean), std=tuple(std), skipped=skipped, path=path,
        warnings=list(raw.get("warnings", [])), task=info.task,
    )


def channel_stats(split: Split, max_images: int = 10000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0-1 scale, from up to `max_images` evenly spaced images."""
    n = len(split)
    index = torch.linspace(0, n - 1, min(n, max_images if isinstance(split, ImageArrays) else 256)).long()
    if isinstance(split, FileList):
        from .decode import decode_all

        with warnings.catch_warnings():  # bad files are reported when the loader meets them
            warnings.simplefilter("ignore")
            images = decode_all(split.subset(index))[0].images
    else:
        images = split.images[index]
    x = images.float().div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    mean = tuple(round(float(v), 4) for v in x.mean(1))
    std = tuple(round(max(float(v), 1e-3), 4) for v in x.std(1))
    return mean, std


def limit_split(split: Split, *, limit: int | None, fraction: float | None, seed: int) -> Split:
    if fraction is not None:
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"--fraction must be in (0, 1], got {fraction}")
        if fraction < 1.0:
            keep, _ = stratified_split(split.labels.numpy(), 1.0 - fraction, seed)
            split = split.subset(keep)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be a positive number of images, got {limit}")
        if limit < len(split):
            # N images kept per class in proportion (folders list their files class by class,
            # so "the first N" would be one class only).
            keep, _ = stratified_split(split.labels.numpy(), 1.0 - limit / len(split), seed)
            split = split.subset(keep[:limit])
    return split
