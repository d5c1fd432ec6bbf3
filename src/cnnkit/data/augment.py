"""Augmentation on whole batches, on the training device (the airbench way).

On a 2-core CPU, per-image PIL transforms in worker processes cost more than the
model; shifting, flipping and erasing a whole uint8-derived batch with a few
tensor ops costs almost nothing. Every random draw comes from a generator the
caller seeds, so a resumed run sees exactly the batches the original would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class BatchAugment:
    pad: int = 0  # random crop after zero padding by this many pixels (a random shift)
    flip: bool = False  # horizontal flip with probability 0.5 (never for digits, letters, signs)
    erase: int = 0  # side of a square zeroed at a random place (cutout), 0 = off

    @property
    def active(self) -> bool:
        return bool(self.pad or self.flip or self.erase)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a float batch N x C x H x W (after normalisation, so zero = the mean)."""
        n, _, h, w = x.shape
        dev = x.device

        def rand_int(high: int, size: int) -> torch.Tensor:
            return torch.randint(0, high, (size,), generator=generator).to(dev)

        if self.pad:
            # A random shift in [-pad, pad] per image: view the zero-padded batch as every
            # (2p+1) x (2p+1) window at once (as_strided, no copy) and pick one window per
            # image in a single indexing op; much faster than per-pixel gather indices.
            p = self.pad
            dy, dx = rand_int(2 * p + 1, n), rand_int(2 * p + 1, n)
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            s0, s1, s2, s3 = padded.stride()
            windows = padded.as_strided((n, x.shape[1], 2 * p + 1, 2 * p + 1, h, w), (s0, s1, s2, s3, s2, s3))
            x = windows[torch.arange(n, device=dev), :, dy, dx]
        if self.flip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.erase:
            s = self.erase
            cy, cx = rand_int(h, n), rand_int(w, n)
            ys = torch.arange(h, device=dev)[None, :, None]
            xs = torch.arange(w, device=dev)[None, None, :]
            inside = ((ys - cy[:, None, None]).abs() <= s // 2) & ((xs - cx[:, None, None]).abs() <= s // 2)
            x = x.masked_fill(inside[:, None], 0.0)
        return x


# Presets named in the catalog. Flip only where a mirrored image is still the same class.
PRESETS: dict[str, BatchAugment] = {
    "none": BatchAugment(),
    "crop": BatchAugment(pad=2),
    "crop-flip": BatchAugment(pad=2, flip=True),
    "crop-flip-erase": BatchAugment(pad=2, flip=True, erase=8),
    "crop4": BatchAugment(pad=4),  # SVHN, ASL: shifted, never mirrored
    "crop4-flip": BatchAugment(pad=4, flip=True),
    "crop4-flip-erase": BatchAugment(pad=4, flip=True, erase=12),
    "crop8-flip": BatchAugment(pad=8, flip=True),  # ~128 px photos
    "crop12-flip": BatchAugment(pad=12, flip=True),  # STL-10 at 96 px
    "crop16-flip": BatchAugment(pad=16, flip=True),  # ImageNet / Places at 224 px
}


def get_augment(name: str) -> BatchAugment:
    if name not in PRESETS:
        raise ConfigError(f"unknown augmentation {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
