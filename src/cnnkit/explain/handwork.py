"""One output value of a convolution, worked by hand: multiply and sum, then move by the stride.

`work_conv_value` repeats in plain float64 NumPy what `nn.Conv2d` does for one
output position (through `cnnkit.nn.reference.conv2d_at`), and keeps every
(pixel, weight) term so a person can follow it. Padding pixels are zeros
outside the image. Nothing here calls PyTorch's convolution, so agreeing with
it is a real check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..nn.reference import Term, conv2d_at
from ..nn.spec import pair


@dataclass
class WorkedValue:
    filter: int
    row: int  # output position
    col: int
    top: int  # where the kernel window starts in the input: row * stride - padding
    left: int
    terms: list[Term] = field(default_factory=list)  # the reference's multiplications, in window order
    bias: float = 0.0

    @property
    def value(self) -> float:
        return float(sum(t.product for t in self.terms) + self.bias)


def work_conv_value(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, f: int, i: int, j: int,
                    *, stride=1, padding=0, dilation=1, groups: int = 1) -> WorkedValue:
    """Output value (filter f, row i, col j) of a 2-D convolution of x (C x H x W).

    weight is F x C/groups x kh x kw, as in `nn.Conv2d.weight`. The arithmetic is the layers'
    own NumPy reference (`nn.reference.conv2d_at`); this adds where the window starts.
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    trace = conv2d_at(x, weight, bias, f, i, j, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                      groups=groups)
    return WorkedValue(f, i, j, i * sh - ph, j * sw - pw, terms=list(trace.terms), bias=trace.bias)


def conv_params(conv) -> dict:
    """stride/padding/dilation/groups of an nn.Conv2d as plain values (string padding resolved)."""
    padding = conv.padding
    if isinstance(padding, str):  # 'valid' or 'same' (stride 1 only in PyTorch)
        kh, kw = conv.kernel_size
        dh, dw = conv.dilation
        padding = (0, 0) if padding == "valid" else (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    return {"stride": tuple(conv.stride), "padding": tuple(padding), "dilation": tuple(conv.dilation),
            "groups": conv.groups}


def _fmt(v: float) -> str:
    return f"{v:+.4f}"


def worked_markdown(w: WorkedValue, *, layer: str, actual: float, raw: np.ndarray | None = None,
                    mean: list[float] | None = None, std: list[float] | None = None,
                    max_rows: int = 27) -> str:
    """The worked value as Markdown: the terms table, the sum, and the check against the model."""
    lines = [
        f"Output value of `{layer}` at filter {w.filter}, row {w.row}, column {w.col}. "
        f"Its kernel window starts at input row {w.top}, column {w.left} "
        "(= output position x stride - padding).",
        "",
    ]
    if raw is not None and mean is not None and std is not None:
        lines += ["Each input value is the pixel scaled as in training: "
                  "`(pixel / 255 - mean) / std`; positions outside the image are padding zeros.", ""]
    else:
        lines += ["This layer's input is not the image itself but what the layers before it made of it "
                  "(for example an explicit padding layer); rows and columns count in that input.", ""]
    lines += ["| channel | row | col | pixel | input value | weight | product |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    shown = w.terms if len(w.terms) <= max_rows else w.terms[:max_rows]
    for t in shown:
        pixel = "-"  # the layer's input is not the image itself (a padding layer came first)
        if raw is not None:
            outside = t.row < 0 or t.col < 0 or t.row >= raw.shape[1] or t.col >= raw.shape[2]
            pixel = "pad" if outside else str(int(raw[t.channel, t.row, t.col]))
        lines.append(f"| {t.channel} | {t.row} | {t.col} | {pixel} | {_fmt(t.pixel)} | {_fmt(t.weight)} "
                     f"| {_fmt(t.product)} |")
    if len(shown) < len(w.terms):
        rest = sum(t.product for t in w.terms[len(shown):])
        lines.append(f"| ... | | | | | {len(w.terms) - len(shown)} more terms | {_fmt(rest)} |")
    total = sum(t.product for t in w.terms)
    lines += [
        "",
        f"- sum of the {len(w.terms)} products: {total:+.6f}",
        f"- plus the bias {w.bias:+.6f}",
        f"- **by hand: {w.value:+.6f}**",
        f"- the model's `{layer}` output there: {actual:+.6f}",
        f"- difference: {abs(w.value - actual):.2e} ({'agrees' if abs(w.value - actual) <= 1e-5 else 'DIFFERS'}"
        " within 1e-5)",
    ]
    return "\n".join(lines)
