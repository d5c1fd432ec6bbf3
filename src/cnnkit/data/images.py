"""Decoding one image file into the uint8 C x H x W tensor a model expects.

Any PIL-readable file, any mode (L, LA, RGB, RGBA, P, CMYK, I;16, I, F), any size:
converted to the model's channel count and resized to its input size. A file
that is not an image, or is cut short, raises ImageError naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError

# What PIL raises for a file that is not a (whole) image; a decompression bomb is refused too.
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float images (modes I;16, I, F) scaled into 0..255 by their own range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.round().astype(np.uint8), mode="L")
    return img


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, or raise ImageError saying why it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            return _to_8bit(img.copy())
    except DECODE_ERRORS as e:
        raise ImageError(f"{path} is not a readable image ({e}); give a PNG or JPEG file") from e


def normalise_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any mode -> "L" (channels=1) or "RGB" (channels=3); transparency flattened onto white."""
    if channels not in (1, 3):
        raise ImageError(f"models with {channels} input channels cannot take image files")
    img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGB", img.size, (255, 255, 255))  # flatten transparency onto white
        rgba = img.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        img = background
    return img.convert("L" if channels == 1 else "RGB")  # also CMYK, P, 1, YCbCr, ...


def fit(img: Image.Image, size: tuple[int, int], crop_pct: float = 1.0) -> Image.Image:
    """Resize so the image covers `size` (H, W) / crop_pct, then crop `size` from the centre.

    crop_pct < 1 is the ImageNet evaluation convention (resize to 256, crop 224: 0.875), which
    the pretrained weights were measured with."""
    h, w = size
    if (img.height, img.width) == (h, w):
        return img
    scale = max(h / img.height, w / img.width) / crop_pct
    new_w, new_h = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (new_w - w) // 2, (new_h - h) // 2
    return img.crop((left, top, left + w, top + h))


def to_tensor(img: Image.Image) -> torch.Tensor:
    array = np.asarray(img, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())  # np.asarray of a PIL image is read-only


def convert_image(img: Image.Image, channels: int, size: tuple[int, int] | None = None,
                  crop_pct: float = 1.0) -> torch.Tensor:
    """PIL image -> uint8 tensor channels x H x W, fitted to size=(H, W) when given.

    `fit` (cover, then crop the centre) as the training data was: a photo of another shape is
    cropped the same way at prediction time, not stretched."""
    img = normalise_mode(img, channels)
    if size is not None:
        img = fit(img, tuple(size), crop_pct)
    return to_tensor(img)


def load_image(path: str | Path, channels: int, size: tuple[int, int] | None = None,
               crop_pct: float = 1.0) -> torch.Tensor:
    return convert_image(open_image(path), channels, size, crop_pct)
