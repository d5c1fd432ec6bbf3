"""The guide's layers in plain NumPy: the arithmetic of every layer, worked by hand.

Each layer comes twice. The plain name (`conv2d`, `max_pool2d`, `dense`) is a loop
version written to be read: the sliding window of the guide, one output value at a
time. The `_fast` name beside it computes the same numbers with whole-array NumPy
(a strided view of every window, then one `einsum`), fast enough for real images.
`conv2d_at` works ONE output value of a convolution and returns the list of
multiplications that make it, so that `cnnkit explain` can print the sum.

Conventions (PyTorch's, so weights can be copied straight from a model):
images are N x C x H x W, a conv weight is F x C/groups x KH x KW, a dense weight
is OUT x IN. Everything is computed in float64. tests/nn/test_reference.py checks
every function against torch on hundreds of random configurations.

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2))
    >>> float(conv2d(x, w)[0, 0, 0, 0])     # 0 + 1 + 4 + 5
    10.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .spec import conv_output_size, pair, same_padding

Padding = int | tuple[int, int] | tuple[int, int, int, int] | str


def paddings(padding: Padding, h: int, w: int, kernel, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for `padding` = "valid", "same", p, (ph, pw) or all four."""
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel), pair(stride), pair(dilation)
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":  # as Keras: ceil(n / s) outputs, the odd pixel of padding goes after
        return (*same_padding(h, kh, sh, dh), *same_padding(w, kw, sw, dw))
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def pad2d(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float = 0.0) -> np.ndarray:
    """Add a border of `value` around every feature map of an N x C x H x W batch."""
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


# --------------------------------------------------------------------------- convolution


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
           padding: Padding = 0, dilation=1, groups: int = 1) -> np.ndarray:
    """Convolution, loop by loop: slide each filter over the image, multiply and add."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    n, _, h, w = x.shape
    filters, group_channels, kh, kw = weight.shape
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    top, bottom, left, right = paddings(padding, h, w, (kh, kw), (sh, sw), (dh, dw))
    xp = pad2d(x, top, bottom, left, right)
    # The output-size formula, with the padding already added to the image.
    oh = conv_output_size(h + top + bottom, kh, sh, 0, dh)
    ow = conv_output_size(w + left + right, kw, sw, 0, dw)
    filters_per_group = filters // groups
    out = np.zeros((n, filters, oh, ow))
    for b in range(n):
        for f in range(filters):
            # With groups, filter f only sees the input channels of its own group.
            first_channel = (f // filters_per_group) * group_channels
            for i in range(oh):
                for j in range(ow):
                    total = 0.0 if bias is None else float(bias[f])
                    for c in range(group_channels):
                        for u in range(kh):
                            for v in range(kw):
                                pixel = xp[b, first_channel + c, i * sh + u * dh, j * sw + v * dw]
                                total += pixel * weight[f, c, u, v]
                    out[b, f, i, j] = total
    return out


def _windows(xp: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """Every window of a padded batch as an array N x C x OH x OW x KH x KW (a view, no copy)."""
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel), pair(stride), pair(dilation)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the window's extent with dilation
    view = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def conv2d_fast(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1,
                padding: Padding = 0, dilation=1, groups: int = 1) -> np.ndarray:
    """The same convolution as `conv2d`, vectorised: all windows at once, one einsum per batch."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    n, c, h, w = x.shape
    filters, group_channels, kh, kw = weight.shape
    xp = pad2d(x, *paddings(padding, h, w, (kh, kw), stride, dilation))
    win = _windows(xp, (kh, kw), stride, dilation)  # N, C, OH, OW, KH, KW
    oh, ow = win.shape[2:4]
    win = win.reshape(n, groups, group_channels, oh, ow, kh, kw)
    wg = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    out = np.einsum("ngchwuv,gfcuv->ngfhw", win, wg, optimize=True).reshape(n, filters, oh, ow)
    if bias is not None:
        out = out + np.asarray(bias, np.float64)[None, :, None, None]
    return out


@dataclass(frozen=True)
class Term:
    """One multiplication of a convolution: input pixel x kernel weight."""

    channel: int  # input channel
    row: int  # input row (negative or past the edge: a padding pixel)
    col: int
    kernel_row: int
    kernel_col: int
    pixel: float
    weight: float
    padding: bool  # True where the window hangs over the edge and sees an added zero

    @property
    def product(self) -> float:
        return self.pixel * self.weight


@dataclass(frozen=True)
class ConvTrace:
    """One output value of a convolution, worked by hand: value = bias + sum of the terms."""

    out_channel: int
    i: int  # output row
    j: int  # output column
    terms: list[Term]
    bias: float
    value: float

    def format(self, max_terms: int | None = None, digits: int = 4) -> str:
        """The sum written out, one multiplication per line, as the guide does it."""
        shown = self.terms if max_terms is None else self.terms[:max_terms]
        lines = [f"output[{self.out_channel}, {self.i}, {self.j}] = bias + sum of "
                 f"{len(self.terms)} multiplications"]
        for t in shown:
            where = f"x[{t.channel},{t.row},{t.col}]" + (" (padding)" if t.padding else "")
            kernel = f"w[{t.kernel_row},{t.kernel_col}]"
            lines.append(f"  {where:<22} {t.pixel:>{digits + 6}.{digits}f}  x  {kernel:<8}"
                         f" {t.weight:>{digits + 6}.{digits}f}  =  {t.product:>{digits + 6}.{digits}f}")
        if len(shown) < len(self.terms):
            rest = sum(t.product for t in self.terms[len(shown):])
            lines.append(f"  ... {len(self.terms) - len(shown)} more terms, adding up to {rest:.{digits}f}")
        lines.append(f"  bias {self.bias:.{digits}f}; total = {self.value:.{digits}f}")
        return "\n".join(lines)


def conv2d_at(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, out_channel: int, i: int,
              j: int, stride=1, padding: Padding = 0, dilation=1, groups: int = 1) -> ConvTrace:
    """Work one output value of a convolution by hand, keeping every multiplication.

    `x` is one image, C x H x W (or a batch of one). Returns a `ConvTrace`: `.value` is
    the output at (out_channel, i, j), `.terms` the (pixel, weight) products in the order
    the sliding window meets them, `.format()` the sum written out.
    """
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    if x.ndim == 4:
        x = x[0]
    _, h, w = x.shape
    filters, group_channels, kh, kw = weight.shape
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    top, bottom, left, right = paddings(padding, h, w, (kh, kw), (sh, sw), (dh, dw))
    oh = conv_output_size(h + top + bottom, kh, sh, 0, dh)
    ow = conv_output_size(w + left + right, kw, sw, 0, dw)
    if not (0 <= out_channel < filters and 0 <= i < oh and 0 <= j < ow):
        raise IndexError(f"output ({out_channel}, {i}, {j}) is outside {filters} x {oh} x {ow}")
    first_channel = (out_channel // (filters // groups)) * group_channels
    terms = []
    for c in range(group_channels):
        for u in range(kh):
            for v in range(kw):
                row, col = i * sh + u * dh - top, j * sw + v * dw - left  # in the unpadded image
                inside = 0 <= row < h and 0 <= col < w
                pixel = float(x[first_channel + c, row, col]) if inside else 0.0
                terms.append(Term(first_channel + c, row, col, u, v, pixel,
                                  float(weight[out_channel, c, u, v]), not inside))
    b = 0.0 if bias is None else float(bias[out_channel])
    return ConvTrace(out_channel, i, j, terms, b, b + sum(t.product for t in terms))


# --------------------------------------------------------------------------- pooling


def max_pool2d(x: np.ndarray, size=2, stride=None, padding=0) -> np.ndarray:
    """Max pooling, loop by loop: the largest value of each window (padding never wins)."""
    return _pool_loops(x, size, stride, padding, "max")


def avg_pool2d(x: np.ndarray, size=2, stride=None, padding=0, count_include_pad: bool = False) -> np.ndarray:
    """Average pooling, loop by loop. By default (as cnnkit builds it) padding pixels are not
    counted in the average; `count_include_pad=True` divides by the whole window."""
    return _pool_loops(x, size, stride, padding, "avg", count_include_pad)


def _pool_loops(x, size, stride, padding, op, count_include_pad=False) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    (kh, kw) = pair(size)
    (sh, sw) = pair(size if stride is None else stride)
    (ph, pw) = pair(padding)
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    values = []  # the real pixels under the window
                    for u in range(kh):
                        for v in range(kw):
                            row, col = i * sh + u - ph, j * sw + v - pw
                            if 0 <= row < h and 0 <= col < w:
                                values.append(x[b, ch, row, col])
                    if op == "max":
                        out[b, ch, i, j] = max(values)
                    else:
                        out[b, ch, i, j] = sum(values) / (kh * kw if count_include_pad else len(values))
    return out


def max_pool2d_fast(x: np.ndarray, size=2, stride=None, padding=0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    (ph, pw) = pair(padding)
    xp = pad2d(x, ph, ph, pw, pw, value=-np.inf)
    return _windows(xp, size, size if stride is None else stride, 1).max(axis=(-2, -1))


def avg_pool2d_fast(x: np.ndarray, size=2, stride=None, padding=0, count_include_pad: bool = False) -> np.ndarray:
    x = np.asarray(x, np.float64)
    (ph, pw) = pair(padding)
    stride = size if stride is None else stride
    sums = _windows(pad2d(x, ph, ph, pw, pw), size, stride, 1).sum(axis=(-2, -1))
    if count_include_pad:
        return sums / (pair(size)[0] * pair(size)[1])
    ones = pad2d(np.ones((1, 1, *x.shape[2:])), ph, ph, pw, pw)  # 1 where a real pixel is
    return sums / _windows(ones, size, stride, 1).sum(axis=(-2, -1))


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """N x C x H x W -> N x C: the mean of each feature map."""
    return np.asarray(x, np.float64).mean(axis=(2, 3))


def global_max_pool(x: np.ndarray) -> np.ndarray:
    """N x C x H x W -> N x C: the largest value of each feature map."""
    return np.asarray(x, np.float64).max(axis=(2, 3))


# --------------------------------------------------------------------------- activations
# Element-wise functions: each is its formula, so there is no separate loop version.


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(x, np.float64), 0.0)


def leaky_relu(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, x, slope * x)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """x times the standard normal CDF of x (the exact form, as torch's default)."""
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    # Two branches so that exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float64) * sigmoid(x)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(np.asarray(x, np.float64))


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """exp(x_i) / sum_j exp(x_j) along `axis`; the max is subtracted first so exp cannot overflow."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "relu": relu, "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu, "silu": silu,
    "tanh": tanh, "sigmoid": sigmoid, "softmax": softmax,
}


# --------------------------------------------------------------------------- flatten, dense, norm


def flatten(x: np.ndarray) -> np.ndarray:
    """N x C x H x W -> N x (C*H*W), channel by channel, row by row (PyTorch's order)."""
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Fully connected layer, loop by loop: every output is a weighted sum of every input."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    n, (units, inputs) = x.shape[0], weight.shape
    out = np.zeros((n, units))
    for b in range(n):
        for o in range(units):
            total = 0.0 if bias is None else float(bias[o])
            for k in range(inputs):
                total += x[b, k] * weight[o, k]
            out[b, o] = total
    return out


def dense_fast(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    return out if bias is None else out + np.asarray(bias, np.float64)


def batch_norm(x: np.ndarray, mean, var, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Batch norm at inference: (x - running mean) / sqrt(running var + eps) * gamma + beta."""
    x = np.asarray(x, np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)  # per channel
    y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + eps)
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


# --------------------------------------------------------------------------- a whole model


def forward(model, x: np.ndarray, keep: bool = False):
    """Run a spec-built model (or any plain stack of these layers) in NumPy, with its weights.

    Returns the output, or with `keep=True` the output and a list of (layer name,
    activation) pairs, one per layer, for pictures and per-layer dumps. Raises
    TypeError for a module it has no reference for.
    """
    from torch import nn  # the weights live in torch modules; the arithmetic stays NumPy

    def arr(t):
        return None if t is None else t.detach().cpu().double().numpy()

    def run(module, name, h, kept):
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                h = run(child, f"{name}.{child_name}" if name else child_name, h, kept)
            return h
        if isinstance(module, nn.Conv2d):
            if isinstance(module.padding, str):
                padding = module.padding  # "same" / "valid", as torch spells them
            else:
                padding = tuple(module.padding)
            h = conv2d_fast(h, arr(module.weight), arr(module.bias), module.stride, padding,
                            module.dilation, module.groups)
        elif isinstance(module, nn.ZeroPad2d):
            left, right, top, bottom = module.padding
            h = pad2d(h, top, bottom, left, right)
        elif isinstance(module, nn.MaxPool2d):
            h = max_pool2d_fast(h, module.kernel_size, module.stride, module.padding)
        elif isinstance(module, nn.AvgPool2d):
            h = avg_pool2d_fast(h, module.kernel_size, module.stride, module.padding, module.count_include_pad)
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and module.output_size in (1, (1, 1)):
            pooled = global_avg_pool(h) if isinstance(module, nn.AdaptiveAvgPool2d) else global_max_pool(h)
            h = pooled[:, :, None, None]
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            h = batch_norm(h, arr(module.running_mean), arr(module.running_var), arr(module.weight),
                           arr(module.bias), module.eps)
        elif isinstance(module, nn.Flatten):
            h = flatten(h)
        elif isinstance(module, nn.Linear):
            h = dense_fast(h, arr(module.weight), arr(module.bias))
        elif isinstance(module, (nn.Dropout, nn.Identity)):
            pass  # dropout does nothing at inference
        elif isinstance(module, nn.LeakyReLU):
            h = leaky_relu(h, module.negative_slope)
        elif isinstance(module, nn.ELU):
            h = elu(h, module.alpha)
        elif isinstance(module, nn.Softmax):
            h = softmax(h, axis=module.dim)
        elif type(module) in _SIMPLE and getattr(module, "approximate", "none") == "none":
            h = ACTIVATIONS[_SIMPLE[type(module)]](h)
        else:
            raise TypeError(f"no NumPy reference for layer {name} ({type(module).__name__})")
        kept.append((name, h))
        return h

    _SIMPLE = {nn.ReLU: "relu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    kept: list[tuple[str, np.ndarray]] = []
    root = getattr(model, "layers", model)
    out = run(root, "", np.asarray(x, np.float64), kept)
    return (out, kept) if keep else out
