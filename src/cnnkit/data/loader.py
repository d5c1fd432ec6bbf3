"""The tensor path: batches by index from one uint8 tensor held on the training device.

No worker processes and no per-image Python: each batch is an index into the
whole split, converted to float, normalised and augmented in a handful of tensor
ops. The order of an epoch comes from (seed, epoch) alone, and each batch's
augmentation from (seed, epoch, batch), so a run resumed mid-epoch reproduces the
original exactly. `rank`/`world_size` give each distributed process a disjoint
slice of the same permutation.

`make_loader(split, ...)` returns a TensorLoader for ImageArrays and a
streaming.StreamingLoader (same interface) for a FileList.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .arrays import FileList, ImageArrays
from .augment import BatchAugment


def normaliser(mean, std, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with x_normalised = x_uint8 * scale + shift: one fused multiply-add per pixel."""
    c = channels
    mean_t = torch.tensor(mean, dtype=torch.float32).expand(c) if len(mean) == 1 else torch.tensor(mean)
    std_t = torch.tensor(std, dtype=torch.float32).expand(c) if len(std) == 1 else torch.tensor(std)
    scale = (1.0 / (255.0 * std_t)).view(1, c, 1, 1).to(device)
    shift = (-mean_t / std_t).view(1, c, 1, 1).to(device)
    return scale, shift


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The sample order of one epoch, from (seed, epoch) alone; a rank's slice when distributed."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world_size > 1:
        # As DistributedSampler: pad to a multiple of the world size by repeating the
        # first indices, so every rank runs the same number of steps and collectives match.
        total = -(-n // world_size) * world_size
        order = torch.cat([order, order[: total - n]])[rank::world_size]
    return order


@contextlib.contextmanager
def one_thread(device: torch.device):
    """Run the batch preparation on one CPU thread.

    Gathering, normalising and augmenting a batch are small memory-bound ops (~1 ms);
    with two or more OpenMP threads on a busy CPU the barrier waits cost far more than
    the parallelism saves (measured: 3-13k vs ~90k augmented 28x28 images/s with the
    load average at 11 on 2 cores). The model's own ops keep every thread.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def make_loader(split: ImageArrays | FileList, **kwargs):
    """The loader for a split: TensorLoader (in memory) or StreamingLoader (image files).

    Keywords are TensorLoader's; streaming-only ones (num_workers, cache_dir, transform)
    are ignored for a tensor split.
    """
    if isinstance(split, FileList):
        from .streaming import StreamingLoader

        return StreamingLoader(split, **kwargs)
    for key in ("num_workers", "cache_dir", "transform"):
        kwargs.pop(key, None)
    return TensorLoader(split, **kwargs)


class BatchLoader:
    """What both loading paths share: the epoch's order, its length, and batch preparation.

    Subclasses hold the samples (`num_items` of them) and implement `iterate(start_batch)`;
    `prepare` turns a uint8 batch into the normalised, augmented float batch the model sees.
    """

    def __init__(
        self,
        num_items: int,
        channels: int,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: BatchAugment | None = None,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_items = num_items
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.rank, self.world_size = rank, world_size
        self.scale, self.shift = normaliser(mean, std, channels, self.device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        return epoch_order(self.num_items, self.shuffle, self.seed, self.epoch, self.rank, self.world_size)

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch (padded as DistributedSampler pads)."""
        n = self.num_items
        return -(-n // self.world_size) if self.world_size > 1 else n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def iterate(self, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def prepare(self, x: torch.Tensor, batch_number: int) -> torch.Tensor:
        """uint8 batch on the device -> normalised float, augmented from (seed, epoch, batch)."""
        x = torch.addcmul(self.shift, x.float(), self.scale)
        if self.augment is not None:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 100_003 + batch_number)
            x = self.augment(x, g)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


class TensorLoader(BatchLoader):
    def __init__(self, data: ImageArrays, **kwargs) -> None:
        super().__init__(len(data.labels), data.images.shape[1], **kwargs)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)

    def iterate(self, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._indices().to(self.device)
        for b in range(start_batch, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.make_batch(idx, b)

    def make_batch(self, idx: torch.Tensor, batch_number: int) -> tuple[torch.Tensor, torch.Tensor]:
        with one_thread(self.device):
            return self.prepare(self.images[idx], batch_number), self.labels[idx]
