"""The two forms a split can take: decoded arrays (tensor path) or a list of files (streaming path).

`ImageArrays` holds uint8 N x C x H x W images in memory; `FileList` holds image
paths, labels and the size they decode to. Both have `labels`, `len()` and
`subset()`, so splitting, `--limit` and `--fraction` work the same on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


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

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index) -> ImageArrays:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageArrays(self.images[index], self.labels[index])


@dataclass
class FileList:
    """One split as image files: decoded on demand to `channels` x `size`.

    `boxes` optionally gives a crop (x1, y1, x2, y2) per file (GTSRB's sign ROI).
    """

    paths: list[str]
    labels: torch.Tensor
    size: tuple[int, int]
    channels: int
    boxes: list[tuple[int, int, int, int] | None] | None = None
    # Set by load_dataset on the streaming path: unreadable files found while streaming are
    # appended to this (shared) list, which is DataSplits.skipped; strict makes them an error.
    skipped: list[str] | None = field(default=None, repr=False)
    strict: bool = False

    def __post_init__(self) -> None:
        self.labels = torch.as_tensor(self.labels, dtype=torch.long)
        if len(self.paths) != len(self.labels):
            raise ValueError("paths and labels differ in length")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    def subset(self, index) -> FileList:
        index = torch.as_tensor(index, dtype=torch.long).tolist()
        return FileList([self.paths[i] for i in index], self.labels[index], self.size, self.channels,
                        [self.boxes[i] for i in index] if self.boxes is not None else None,
                        self.skipped, self.strict)


def to_tensor_images(array: np.ndarray) -> torch.Tensor:
    """N x H x W or N x H x W x C uint8 -> contiguous N x C x H x W tensor."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3, 4) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out), sorted, with `fraction` of each class held out, fixed by `seed`.

    ceil(fraction * N) items are held out in all, shared among the classes in proportion
    to their size (largest remainders first), so every class keeps at least one item.
    """
    labels = np.asarray(labels)
    n = len(labels)
    total = min(n - 1, max(1, int(np.ceil(fraction * n - 1e-9))))
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = counts * (total / n)
    take = np.minimum(np.floor(exact).astype(int), np.maximum(counts - 1, 0))
    short = total - int(take.sum())
    for c in np.argsort(-(exact - take), kind="stable"):  # largest remainders first
        if short <= 0:
            break
        if take[c] < counts[c] - 1:
            take[c] += 1
            short -= 1
    # Shuffle, group by class (stable), and hold out the first take[c] of each class group.
    perm = np.random.default_rng(seed).permutation(n)
    grouped = perm[np.argsort(inverse[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[inverse[grouped]]
    held_mask = np.zeros(n, dtype=bool)
    held_mask[grouped[rank < take[inverse[grouped]]]] = True
    return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)
