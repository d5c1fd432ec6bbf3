"""The streaming path: image files decoded batch by batch in DataLoader worker processes.

For image folders too large to hold decoded in memory (ImageNet, Places365).
`StreamingLoader` has the interface of `TensorLoader` (same constructor keywords,
`set_epoch`, `len`, `num_samples`, `iterate(start_batch)`, same (seed, epoch)
order and (seed, epoch, batch) augmentation), so the trainer cannot tell them
apart; `loader.make_loader` picks one by the type of the split. Workers decode
(PIL, with libjpeg's draft mode), resize and centre-crop, then apply an optional
per-image `transform` (any torchvision.transforms.v2 transform on uint8 tensors,
e.g. RandomResizedCrop); normalisation and the seeded batch augmentation happen
on whole batches on the training device.
An optional decoded cache (a uint8 memory map on disk) makes later epochs skip
JPEG decoding. Unreadable files are skipped, warned about and appended to
`split.skipped` (DataSplits.skipped); with `split.strict` they raise.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DatasetError
from .arrays import FileList
from .decode import DECODE_ERRORS, DataWarning, _cache_key, decode_file
from .loader import BatchLoader, one_thread


class DecodedCache:
    """N x C x H x W uint8 on disk plus a `done` byte per image; safe to fill from several workers
    because each index is written by exactly one worker per epoch."""

    def __init__(self, folder: Path, files: FileList) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        key = _cache_key(files)
        self.images_path, self.done_path = folder / f"{key}.images.npy", folder / f"{key}.done.npy"
        self.shape = (len(files), files.channels, *files.size)
        if not self.images_path.exists():
            np.lib.format.open_memmap(self.images_path, mode="w+", dtype=np.uint8, shape=self.shape).flush()
            np.lib.format.open_memmap(self.done_path, mode="w+", dtype=np.uint8, shape=(len(files),)).flush()
        self._images = self._done = None

    def _open(self) -> None:  # lazily, in each worker process
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r+")
            self._done = np.load(self.done_path, mmap_mode="r+")

    def get(self, i: int) -> np.ndarray | None:
        self._open()
        return np.array(self._images[i]) if self._done[i] else None

    def put(self, i: int, image: np.ndarray) -> None:
        self._open()
        self._images[i] = image
        self._done[i] = 1  # after the pixels: a crash in between leaves the slot "not done"

    def __getstate__(self):  # memory maps are reopened in each worker, not pickled
        return {**self.__dict__, "_images": None, "_done": None}


class _Files(Dataset):
    def __init__(self, files: FileList, cache: DecodedCache | None, transform=None) -> None:
        self.files, self.cache, self.transform = files, cache, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        files = self.files
        if self.cache is not None and (hit := self.cache.get(i)) is not None:
            return self._transform(torch.from_numpy(hit)), int(files.labels[i]), None
        box = files.boxes[i] if files.boxes is not None else None
        try:
            image = decode_file(files.paths[i], files.size, files.channels, box)
        except DECODE_ERRORS as e:
            return None, int(files.labels[i]), (files.paths[i], f"{type(e).__name__}: {e}")
        if self.cache is not None:
            self.cache.put(i, image)
        return self._transform(torch.from_numpy(np.ascontiguousarray(image))), int(files.labels[i]), None

    def _transform(self, image: torch.Tensor) -> torch.Tensor:
        return image if self.transform is None else self.transform(image)


def _collate(items):
    good = [(x, y) for x, y, _ in items if x is not None]
    bad = [err for x, _, err in items if x is None]
    if not good:
        return None, None, bad
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


class StreamingLoader(BatchLoader):
    def __init__(
        self,
        data: FileList,
        *,
        num_workers: int | None = None,
        cache_dir: str | Path | None = None,
        transform=None,
        **kwargs,
    ) -> None:
        super().__init__(len(data), data.channels, **kwargs)
        self.files = data
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.cache = DecodedCache(Path(cache_dir), data) if cache_dir else None
        self.transform = transform  # per image, in the workers; must keep uint8 C x H x W of data.size

    def iterate(self, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._indices()
        batches = [order[b * self.batch_size : (b + 1) * self.batch_size].tolist() for b in range(start_batch, len(self))]
        loader = DataLoader(
            _Files(self.files, self.cache, self.transform), batch_sampler=batches, num_workers=self.num_workers,
            collate_fn=_collate, pin_memory=self.device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if self.num_workers else None,
        )
        for b, (x, y, bad) in enumerate(loader, start=start_batch):
            if bad:
                self._report(bad)
            if x is None:
                continue  # every file of this batch was unreadable
            yield self.make_batch(x, y, b)

    def _report(self, bad: list[tuple[str, str]]) -> None:
        if self.files.strict:
            raise DatasetError(f"unreadable image {bad[0][0]} ({bad[0][1]}); remove it or run without --strict "
                               "to skip it")
        new = [(path, why) for path, why in bad if path not in (self.files.skipped or [])]
        if self.files.skipped is not None:
            self.files.skipped.extend(path for path, _ in new)
        if new:
            warnings.warn(f"skipped {len(new)} unreadable image(s), e.g. {new[0][0]} ({new[0][1]})", DataWarning,
                          stacklevel=3)

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, batch_number: int) -> tuple[torch.Tensor, torch.Tensor]:
        with one_thread(self.device):
            x = self.prepare(x.to(self.device, non_blocking=True), batch_number)
            return x, y.to(self.device, non_blocking=True)
