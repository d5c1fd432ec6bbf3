"""From a dataset name to train/val/test arrays: the one entry point the trainer uses.

`load_dataset(name)` finds the files (sources), reads them (a reader per on-disk
format), makes the splits (official ones where the authors publish them, a
stratified validation split from train with a fixed seed) and returns uint8
N x C x H x W tensors ready for the tensor path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DatasetError
from .catalog import DatasetInfo, get_info
from .sources import locate


@dataclass
class ImageArrays:
    """One split: uint8 images N x C x H x W and int64 labels N."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 NxCxHxW, got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError("images and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> ImageArrays:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageArrays(self.images[index], self.labels[index])


@dataclass
class DataSplits:
    """Everything the trainer needs to know about the data of a run."""

    name: str
    train: ImageArrays
    val: ImageArrays
    test: ImageArrays
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, for the report

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# A reader takes the catalog record and returns {"train": ImageArrays, "test": ..., ["val": ...]}.
Reader = Callable[[DatasetInfo], dict[str, ImageArrays]]
READERS: dict[str, Reader] = {}


def reader(key: str) -> Callable[[Reader], Reader]:
    def add(fn: Reader) -> Reader:
        READERS[key] = fn
        return fn

    return add


def to_tensor_images(array: np.ndarray) -> torch.Tensor:
    """N x H x W or N x H x W x C uint8 -> contiguous N x C x H x W tensor."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3, 4) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.uint8))


@reader("digits")
def _read_digits(info: DatasetInfo) -> dict[str, ImageArrays]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are counts 0..16 of an 4x4 block; scale to the 0..255 of every other image.
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    everything = ImageArrays(to_tensor_images(images), labels)
    train_idx, test_idx = stratified_split(labels.numpy(), 0.2, seed=0)
    return {"train": everything.subset(train_idx), "test": everything.subset(test_idx)}


@reader("idx")
def _read_idx_dataset(info: DatasetInfo) -> dict[str, ImageArrays]:
    from .idx import read_idx

    paths = locate(info)
    arrays = {name.split("-")[0] + "-" + name.split("-")[1]: read_idx(p) for name, p in paths.items()}
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[f"{prefix}-images"], arrays[f"{prefix}-labels"]
        if len(images) != len(labels):
            raise DatasetError(f"{info.name}: {len(images)} {split} images but {len(labels)} labels")
        out[split] = ImageArrays(to_tensor_images(images), torch.from_numpy(labels.astype(np.int64)))
    return out


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with `fraction` of each class held out, fixed by `seed`."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    keep, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(held)


def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.1,
    limit: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
) -> DataSplits:
    """Load a catalogued dataset (or an image folder) by name into train/val/test splits.

    Args:
        name: catalog name or alias (`fashion-mnist`, `digits`, ...) or a folder path.
        val_fraction: share of the training split held out, stratified, for validation
            (ignored where the dataset has an official validation split).
        limit: keep only the first N training images (quick runs).
        fraction: keep this share of the training images, stratified.
        seed: fixes the validation split.
    """
    if Path(name).expanduser().is_dir():
        from .folder import load_folder  # an image folder of the user's

        return load_folder(Path(name).expanduser(), val_fraction=val_fraction, limit=limit,
                           fraction=fraction, seed=seed)
    info = get_info(name)
    if not info.trainable:
        raise DatasetError(
            f"{info.title} is a {info.task} dataset; cnnkit trains classifiers only for now. "
            f"`cnnkit datasets info {info.name}` describes it."
        )
    if info.reader not in READERS:
        raise DatasetError(f"{info.name}: reader {info.reader!r} is not available")
    splits = READERS[info.reader](info)
    train = splits["train"]
    if "val" in splits:
        val = splits["val"]
    else:
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        keep, held = stratified_split(train.labels.numpy(), val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    train = limit_split(train, limit=limit, fraction=fraction, seed=seed)
    return DataSplits(
        name=info.name,
        train=train,
        val=val,
        test=splits["test"],
        class_names=list(info.class_names) or [str(i) for i in range(info.num_classes)],
        mean=info.mean,
        std=info.std,
        augment=info.augment,
    )


def limit_split(split: ImageArrays, *, limit: int | None, fraction: float | None, seed: int) -> ImageArrays:
    if fraction is not None:
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"--fraction must be in (0, 1], got {fraction}")
        if fraction < 1.0:
            keep, _ = stratified_split(split.labels.numpy(), 1.0 - fraction, seed)
            split = split.subset(keep)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be a positive number of images, got {limit}")
        split = split.subset(torch.arange(min(limit, len(split))))
    return split
