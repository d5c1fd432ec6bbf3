"""PNG pictures of tensors: an image as the model sees it, grids of maps or filters, heat maps.

Plain PIL with nearest-neighbour upscaling, so one model pixel stays one visible
square. Grid functions return a `Grid` record (panels, rows, columns, panel
size) so callers and tests know exactly what was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..fileio import atomic_path

GAP = 2  # pixels between panels
BACKGROUND = 40  # dark grey between panels


@dataclass
class Grid:
    path: Path
    panels: int
    rows: int
    cols: int
    panel_size: tuple[int, int]  # height, width in pixels of one panel


def save_png(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale an array into 0..255 by its own range (a constant array becomes mid grey)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-12:
        return np.full(a.shape, 128, dtype=np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def scale_for(h: int, w: int, target: int) -> int:
    """Integer upscaling factor that brings the longer side near `target` pixels."""
    return max(1, target // max(h, w))


def image_from_chw(a: np.ndarray) -> Image.Image:
    """uint8 C x H x W (C = 1 or 3) -> PIL image."""
    a = np.asarray(a, dtype=np.uint8)
    if a.shape[0] == 1:
        return Image.fromarray(a[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(a[:3].transpose(1, 2, 0)), mode="RGB")


def save_input(image: np.ndarray, path: str | Path, target: int = 224) -> Path:
    """The uint8 C x H x W image the model receives, enlarged without smoothing."""
    img = image_from_chw(image)
    k = scale_for(img.height, img.width, target)
    return save_png(img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST), path)


def save_grid(panels: list[np.ndarray], path: str | Path, panel_target: int = 56,
              cols: int | None = None) -> Grid:
    """One panel per array (H x W grey, or 3 x H x W colour), each scaled by its own range."""
    if not panels:
        raise ValueError("no panels to draw")
    n = len(panels)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = panels[0].shape[-2:]
    k = scale_for(h, w, panel_target)
    ph, pw = h * k, w * k
    colour = panels[0].ndim == 3
    canvas = Image.new("RGB" if colour else "L", (cols * pw + (cols + 1) * GAP, rows * ph + (rows + 1) * GAP),
                       (BACKGROUND,) * 3 if colour else BACKGROUND)
    for index, a in enumerate(panels):
        r, c = divmod(index, cols)
        tile = image_from_chw(to_uint8(a) if colour else to_uint8(a)[None])
        tile = tile.resize((pw, ph), Image.Resampling.NEAREST)
        canvas.paste(tile, (GAP + c * (pw + GAP), GAP + r * (ph + GAP)))
    return Grid(save_png(canvas, path), n, rows, cols, (ph, pw))


def jet(values: np.ndarray) -> np.ndarray:
    """0..1 values -> H x W x 3 uint8 colours of matplotlib's 'jet' map."""
    from matplotlib import colormaps

    return (colormaps["jet"](np.clip(values, 0, 1))[..., :3] * 255).round().astype(np.uint8)


def save_heatmap(image: np.ndarray, heatmap: np.ndarray, path: str | Path, alpha: float = 0.45,
                 target: int = 224) -> Path:
    """A 0..1 heat map (H x W) over the uint8 C x H x W image, enlarged together."""
    base = np.asarray(image_from_chw(image).convert("RGB"), dtype=np.float64)
    overlay = (1 - alpha) * base + alpha * jet(np.asarray(heatmap, dtype=np.float64))
    img = Image.fromarray(overlay.round().clip(0, 255).astype(np.uint8), mode="RGB")
    k = scale_for(img.height, img.width, target)
    return save_png(img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST), path)
