"""`cnnkit explain conv|pool`: the output-size formula and the sliding window, on small numbers.

The CNN Explainer idea for a learner: a small integer matrix, a kernel, and one
picture per kernel position showing the window, the multiply-and-sum (or the
max / mean for pooling) and the output cell it fills. Frames are PNGs plus one
animated GIF. The numbers are checked against PyTorch's own conv2d / pooling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError, ShapeError
from ..fileio import atomic_path, write_text
from ..nn.spec import conv_output_size
from .handwork import work_conv_value
from .pictures import save_png

CELL = 34  # pixels per matrix cell in the frames


@dataclass
class Step:
    row: int
    col: int
    top: int  # window origin in the unpadded input
    left: int
    text: str  # "1x1 + 0x2 + ... = 7"
    value: float


@dataclass
class Demo:
    kind: str  # conv | maxpool | avgpool
    input: np.ndarray
    kernel: np.ndarray | None
    size: tuple[int, int]
    stride: int
    padding: int
    output: np.ndarray
    steps: list[Step]
    formula: list[str]
    torch_agrees: bool
    frames: list[Path] = field(default_factory=list)
    gif: Path | None = None
    text: str = ""


def parse_size(text: str | int | tuple[int, int], what: str) -> tuple[int, int]:
    """'6x6', '6' or 6 -> (6, 6)."""
    if isinstance(text, tuple):
        return text
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} must look like 6 or 6x6, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise ConfigError(f"{what} must be one or two positive numbers like 6x6, got {text!r}")
    if max(values) > 16:
        raise ConfigError(f"{what} {text} is too large to draw; use at most 16x16")
    return values


def example_input(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Small integers 0..9, the same for the same size and seed."""
    return np.random.default_rng(seed).integers(0, 10, size=(h, w)).astype(np.float64)


def example_kernel(k: int, seed: int = 1) -> np.ndarray:
    """A vertical-edge detector for 3x3 (the guide's classic), small random integers otherwise."""
    if k == 3:
        return np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64)
    return np.random.default_rng(seed).integers(-1, 2, size=(k, k)).astype(np.float64)


def _formula(n: int, k: int, s: int, p: int, dim: str) -> str:
    out = conv_output_size(n, k, s, p)
    return (f"{dim}: floor((n + 2p - k) / s) + 1 = floor(({n} + 2*{p} - {k}) / {s}) + 1 "
            f"= floor({n + 2 * p - k} / {s}) + 1 = {out}")


def _check(h: int, w: int, k: int, s: int, p: int, pool: bool) -> None:
    if k < 1 or s < 1 or p < 0:
        raise ConfigError("kernel and stride must be >= 1 and padding >= 0")
    if k > min(h, w) + 2 * p:
        raise ShapeError(f"a {k}x{k} kernel does not fit a {h}x{w} input with padding {p}: "
                         f"the output would be empty; use a smaller kernel or more padding")
    if pool and p > k // 2:
        raise ConfigError(f"pooling padding must be at most half the window ({k // 2} for size {k}), got {p}")


def conv_demo(input_size="6x6", kernel: int = 3, stride: int = 1, padding: int = 0, *,
              out: str | Path | None = None, seed: int = 0) -> Demo:
    """Work a whole convolution of a small integer matrix; frames + GIF into `out` when given."""
    h, w = parse_size(input_size, "--input")
    _check(h, w, kernel, stride, padding, pool=False)
    x = example_input(h, w, seed)
    k = example_kernel(kernel)
    oh, ow = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
    output = np.zeros((oh, ow))
    steps = []
    for i in range(oh):
        for j in range(ow):
            worked = work_conv_value(x[None], k[None, None], None, 0, i, j, stride=stride, padding=padding)
            output[i, j] = worked.value
            terms = " + ".join(f"{t.pixel:g}x{t.weight:g}" if t.weight >= 0 else f"{t.pixel:g}x({t.weight:g})"
                               for t in worked.terms)
            steps.append(Step(i, j, worked.top, worked.left, f"{terms} = {worked.value:g}", worked.value))
    ref = F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None], stride=stride,
                   padding=padding)[0, 0].numpy()
    demo = Demo("conv", x, k, (kernel, kernel), stride, padding, output, steps,
                [_formula(h, kernel, stride, padding, "height"), _formula(w, kernel, stride, padding, "width")],
                bool(np.allclose(ref, output)))
    return _finish(demo, out)


def pool_demo(input_size="4x4", size: int = 2, stride: int | None = None, padding: int = 0, op: str = "max", *,
              out: str | Path | None = None, seed: int = 0) -> Demo:
    """Work a whole max or average pooling of a small integer matrix (padding is ignored by both)."""
    if op not in ("max", "avg"):
        raise ConfigError(f"pooling is max or avg, got {op!r}")
    stride = stride or size
    h, w = parse_size(input_size, "--input")
    _check(h, w, size, stride, padding, pool=True)
    x = example_input(h, w, seed)
    oh, ow = conv_output_size(h, size, stride, padding), conv_output_size(w, size, stride, padding)
    output = np.zeros((oh, ow))
    steps = []
    for i in range(oh):
        for j in range(ow):
            top, left = i * stride - padding, j * stride - padding
            window = [x[r, c] for r in range(top, top + size) for c in range(left, left + size)
                      if 0 <= r < h and 0 <= c < w]  # padding cells take no part
            value = max(window) if op == "max" else sum(window) / len(window)
            output[i, j] = value
            shown = ", ".join(f"{v:g}" for v in window)
            text = f"max({shown}) = {value:g}" if op == "max" else f"({' + '.join(f'{v:g}' for v in window)}) / {len(window)} = {value:g}"
            steps.append(Step(i, j, top, left, text, value))
    t = torch.from_numpy(x)[None, None]
    ref = (F.max_pool2d(t, size, stride, padding) if op == "max"
           else F.avg_pool2d(t, size, stride, padding, count_include_pad=False))[0, 0].numpy()
    demo = Demo(f"{op}pool", x, None, (size, size), stride, padding, output, steps,
                [_formula(h, size, stride, padding, "height"), _formula(w, size, stride, padding, "width")],
                bool(np.allclose(ref, output)))
    return _finish(demo, out)


# --------------------------------------------------------------------------- text and pictures


def _matrix_text(a: np.ndarray) -> list[str]:
    width = max(len(f"{v:g}") for v in a.ravel())
    return ["  " + " ".join(f"{v:g}".rjust(width) for v in row) for row in a]


def describe(d: Demo) -> str:
    name = {"conv": "convolution", "maxpool": "max pooling", "avgpool": "average pooling"}[d.kind]
    k = d.size[0]
    lines = [f"{name}: input {d.input.shape[0]}x{d.input.shape[1]}, "
             f"{'kernel' if d.kind == 'conv' else 'window'} {k}x{k}, stride {d.stride}, padding {d.padding}",
             "", "output size (the formula of every convolution and pooling layer):"]
    lines += ["  " + f for f in d.formula]
    lines += ["", "input:"] + _matrix_text(d.input)
    if d.kernel is not None:
        lines += ["", "kernel:"] + _matrix_text(d.kernel)
    lines += ["", "each position (window origin = output position x stride - padding):"]
    lines += [f"  out[{s.row},{s.col}] window at ({s.top},{s.left}): {s.text}" for s in d.steps]
    lines += ["", f"output {d.output.shape[0]}x{d.output.shape[1]}:"] + _matrix_text(d.output)
    lines += ["", f"PyTorch's {'conv2d' if d.kind == 'conv' else d.kind.replace('pool', '_pool2d')} "
              f"gives {'the same' if d.torch_agrees else 'A DIFFERENT'} output."]
    return "\n".join(lines)


def _font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _draw_matrix(draw: ImageDraw.ImageDraw, origin: tuple[int, int], values: np.ndarray, font,
                 pad: int = 0, box: tuple[int, int, int, int] | None = None, filled: int | None = None,
                 colour: str = "#d62728", pad_label: str = "0") -> None:
    """Draw values (with `pad` rings of padding cells) at origin; outline `box` (r0, c0, r1, c1)."""
    x0, y0 = origin
    h, w = values.shape
    for r in range(-pad, h + pad):
        for c in range(-pad, w + pad):
            x, y = x0 + (c + pad) * CELL, y0 + (r + pad) * CELL
            inside = 0 <= r < h and 0 <= c < w
            index = r * w + c
            visible = inside and (filled is None or index < filled)
            fill = "#ffffff" if inside else "#e4e4e4"
            if filled is not None and inside and index == filled - 1:
                fill = "#ffd7d7"
            draw.rectangle([x, y, x + CELL, y + CELL], fill=fill, outline="#999999")
            label = f"{values[r, c]:g}" if visible else (pad_label if not inside else "")
            if label:
                draw.text((x + CELL / 2, y + CELL / 2), label, fill="#000000" if inside else "#888888",
                          font=font, anchor="mm")
    if box is not None:
        r0, c0, r1, c1 = box
        draw.rectangle([x0 + (c0 + pad) * CELL, y0 + (r0 + pad) * CELL,
                        x0 + (c1 + pad) * CELL, y0 + (r1 + pad) * CELL], outline=colour, width=3)


def render_frames(d: Demo) -> list[Image.Image]:
    font, small = _font(14), _font(12)
    h, w = d.input.shape
    k = d.size[0]
    pw = (w + 2 * d.padding) * CELL
    kw = k * CELL if d.kernel is not None else 0
    ow = d.output.shape[1] * CELL
    width = 20 + pw + 30 + kw + (30 if kw else 0) + ow + 20
    height = 50 + max(h + 2 * d.padding, k, d.output.shape[0]) * CELL + 50
    frames = []
    for n, s in enumerate(d.steps):
        img = Image.new("RGB", (width, height), "#ffffff")
        draw = ImageDraw.Draw(img)
        draw.text((20, 12), f"input {h}x{w}, padding {d.padding}, stride {d.stride}", fill="#000000", font=font)
        _draw_matrix(draw, (20, 40), d.input, font, pad=d.padding,
                     box=(s.top, s.left, s.top + k, s.left + k), pad_label="0" if d.kernel is not None else "")
        x = 20 + pw + 30
        if d.kernel is not None:
            draw.text((x, 12), "kernel", fill="#000000", font=font)
            _draw_matrix(draw, (x, 40), d.kernel, font)
            x += kw + 30
        draw.text((x, 12), f"output {d.output.shape[0]}x{d.output.shape[1]}", fill="#000000", font=font)
        _draw_matrix(draw, (x, 40), d.output, font, filled=n + 1,
                     box=(s.row, s.col, s.row + 1, s.col + 1))
        text = f"out[{s.row},{s.col}] = {s.text}"
        if len(text) > width // 7:
            text = text[: width // 7 - 3] + "..."
        draw.text((20, height - 30), text, fill="#000000", font=small)
        frames.append(img)
    return frames


def _finish(d: Demo, out: str | Path | None) -> Demo:
    d.text = describe(d)
    if out is None:
        return d
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = render_frames(d)
    d.frames = [save_png(f, out / f"{d.kind}_step_{n + 1:02d}.png") for n, f in enumerate(frames)]
    d.gif = out / f"{d.kind}.gif"
    with atomic_path(d.gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=900, loop=0)
    write_text(out / f"{d.kind}.txt", d.text + "\n")
    return d
