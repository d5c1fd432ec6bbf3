"""The guide's layers as a small language: text, YAML and Python forms of one spec.

Text form, comma-separated (`conv32-3-s1-same,relu,maxpool2,flatten,dense10`):

    conv{F}-{K}[-s{S}][-same|-valid|-p{P}][-d{D}][-g{G}][-nobias]   convolution, F filters, KxK
    relu  leaky_relu[{slope}]  elu  gelu  silu  tanh  sigmoid  softmax   activations
    maxpool{K}[-s{S}][-p{P}]   avgpool{K}[-s{S}][-p{P}]                 pooling (stride = K by default)
    gap  gmp                                                             global average / max pooling
    bn   dropout{P}   flatten   dense{N}[-nobias]

K, S, P and D take one number or two as `3x5` (height x width). Each layer is a
frozen dataclass (`Conv`, `Pool`, `Dense`, ...): `parse_spec(text)` gives the list,
`to_text(layers)` gives the text back, `to_yaml_list` / `from_yaml_list` the YAML
form. Values are normalised when a layer is made ((3, 3) -> 3, a pooling stride equal
to its window -> None), so spec -> text -> spec gives equal layers. A token that cannot
be read is a SpecError that shows the spec with the token underlined and lists the
valid forms. `infer_shapes` applies the output-size formula

    out = floor((n + 2p - d(k - 1) - 1) / s) + 1

layer by layer and names the layer whose output would be empty (a ShapeError).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ShapeError, SpecError

Pair = tuple[int, int]
Shape = tuple[int, ...]  # (C, H, W) for images, (N,) after flatten


def _int(v: Any) -> int:
    try:
        ok = not isinstance(v, bool) and int(v) == v
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise SpecError(f"expected a whole number, got {v!r}")
    return int(v)


def pair(v: int | tuple[int, int] | list[int]) -> Pair:
    """(height, width) from one whole number or two: the kernel, stride, padding... of a 2-D layer."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise SpecError(f"expected one number or two (height, width), got {v!r}")
        return _int(v[0]), _int(v[1])
    return _int(v), _int(v)


def _fmt_pair(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _norm(v: int | tuple[int, int] | list[int]) -> int | Pair:
    """One canonical value per size, so that spec -> text -> spec gives equal layers:
    (3, 3) and [3, 3] become 3, (3, 5) stays a tuple."""
    h, w = pair(v)
    return h if h == w else (h, w)


def _fmt_float(x: float) -> str:
    """Shortest text that reads back as the same float: 0.3, 0.01, 1e-05, 0."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """The output-size formula of convolution and pooling, per spatial dimension."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """Padding (before, after) that gives ceil(n / s) outputs, as Keras and TensorFlow do."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    """Base of every layer spec. `kind` is its YAML key."""

    kind: ClassVar[str] = ""

    def token(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """YAML form: {kind: {non-default fields}} or just the kind when all are defaults."""
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
        return {self.kind: fields} if fields else {self.kind: None}

    def output_shape(self, shape: Shape, index: int) -> Shape:
        return shape


@dataclass(frozen=True)
class Conv(Layer):
    filters: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: str | int | tuple[int, int] = "valid"  # valid | same | pixels
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    bias: bool = True
    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        _set(self, "filters", _int(self.filters))
        _set(self, "groups", _int(self.groups))
        if self.filters < 1:
            raise SpecError(f"conv needs at least one filter, got {self.filters}")
        for name in ("kernel", "stride", "dilation"):
            if min(pair(getattr(self, name))) < 1:
                raise SpecError(f"conv {name} must be >= 1, got {getattr(self, name)!r}")
            _set(self, name, _norm(getattr(self, name)))
        if isinstance(self.padding, str) and self.padding not in ("same", "valid"):
            raise SpecError(f"conv padding must be same, valid or a number, got {self.padding!r}")
        if not isinstance(self.padding, str):
            if min(pair(self.padding)) < 0:
                raise SpecError(f"conv padding must be >= 0, got {self.padding!r}")
            _set(self, "padding", "valid" if pair(self.padding) == (0, 0) else _norm(self.padding))
        if self.groups < 1 or self.filters % self.groups:
            raise SpecError(f"conv filters ({self.filters}) must be a multiple of groups ({self.groups})")

    def token(self) -> str:
        t = f"conv{self.filters}-{_fmt_pair(pair(self.kernel))}"
        if pair(self.stride) != (1, 1):
            t += f"-s{_fmt_pair(pair(self.stride))}"
        if isinstance(self.padding, str):
            t += "-same" if self.padding == "same" else ""
        elif pair(self.padding) != (0, 0):
            t += f"-p{_fmt_pair(pair(self.padding))}"
        if pair(self.dilation) != (1, 1):
            t += f"-d{_fmt_pair(pair(self.dilation))}"
        if self.groups != 1:
            t += f"-g{self.groups}"
        if not self.bias:
            t += "-nobias"
        return t

    def paddings(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an input of h x w."""
        (kh, kw), (sh, sw), (dh, dw) = pair(self.kernel), pair(self.stride), pair(self.dilation)
        if self.padding == "same":
            return (*same_padding(h, kh, sh, dh), *same_padding(w, kw, sw, dw))
        if self.padding == "valid":
            return 0, 0, 0, 0
        ph, pw = pair(self.padding)
        return ph, ph, pw, pw

    def output_shape(self, shape: Shape, index: int) -> Shape:
        c, h, w = _image_shape(shape, self, index)
        if c % self.groups:
            raise ShapeError(f"layer {index} ({self.token()}): {c} input channels are not divisible "
                             f"by groups={self.groups}")
        top, bottom, left, right = self.paddings(h, w)
        (kh, kw), (sh, sw), (dh, dw) = pair(self.kernel), pair(self.stride), pair(self.dilation)
        oh = _checked_size(self, index, "height", h, kh, sh, top + bottom, dh)
        ow = _checked_size(self, index, "width", w, kw, sw, left + right, dw)
        return self.filters, oh, ow


@dataclass(frozen=True)
class Activation(Layer):
    name: str = "relu"
    slope: float = 0.01  # leaky_relu only
    kind: ClassVar[str] = "activation"
    NAMES: ClassVar[tuple[str, ...]] = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid", "softmax")

    def __post_init__(self) -> None:
        if self.name not in self.NAMES:
            raise SpecError(f"unknown activation {self.name!r}; choose from {', '.join(self.NAMES)}")
        if self.name == "leaky_relu" and not 0.0 <= self.slope < 1.0:
            raise SpecError(f"leaky_relu slope must be in [0, 1), got {self.slope}")
        # The slope means nothing to the other activations; one value keeps equality exact.
        _set(self, "slope", float(self.slope) if self.name == "leaky_relu" else 0.01)

    def token(self) -> str:
        if self.name == "leaky_relu" and self.slope != 0.01:
            return f"leaky_relu{_fmt_float(self.slope)}"
        return self.name


@dataclass(frozen=True)
class Pool(Layer):
    op: str = "max"  # max | avg
    size: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None  # None = size (non-overlapping windows)
    padding: int | tuple[int, int] = 0
    kind: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        if self.op not in ("max", "avg"):
            raise SpecError(f"pool op must be max or avg, got {self.op!r}")
        if min(pair(self.size)) < 1 or (self.stride is not None and min(pair(self.stride)) < 1):
            raise SpecError(f"{self.op}pool size and stride must be >= 1")
        if min(pair(self.padding)) < 0:
            raise SpecError(f"{self.op}pool padding must be >= 0, got {self.padding!r}")
        if any(2 * p > k for p, k in zip(pair(self.padding), pair(self.size), strict=True)):
            raise SpecError(f"{self.op}pool padding must be at most half the window, as in PyTorch")
        _set(self, "size", _norm(self.size))
        _set(self, "padding", _norm(self.padding))
        if self.stride is not None:  # a stride equal to the window is the default: store None
            _set(self, "stride", None if pair(self.stride) == pair(self.size) else _norm(self.stride))

    @property
    def stride_pair(self) -> Pair:
        return pair(self.size if self.stride is None else self.stride)

    def token(self) -> str:
        t = f"{self.op}pool{_fmt_pair(pair(self.size))}"
        if self.stride is not None and pair(self.stride) != pair(self.size):
            t += f"-s{_fmt_pair(pair(self.stride))}"
        if pair(self.padding) != (0, 0):
            t += f"-p{_fmt_pair(pair(self.padding))}"
        return t

    def output_shape(self, shape: Shape, index: int) -> Shape:
        c, h, w = _image_shape(shape, self, index)
        (kh, kw), (sh, sw), (ph, pw) = pair(self.size), self.stride_pair, pair(self.padding)
        return (c, _checked_size(self, index, "height", h, kh, sh, 2 * ph, 1),
                _checked_size(self, index, "width", w, kw, sw, 2 * pw, 1))


@dataclass(frozen=True)
class GlobalPool(Layer):
    op: str = "avg"  # avg | max
    kind: ClassVar[str] = "global_pool"

    def __post_init__(self) -> None:
        if self.op not in ("max", "avg"):
            raise SpecError(f"global pool op must be max or avg, got {self.op!r}")

    def token(self) -> str:
        return "gap" if self.op == "avg" else "gmp"

    def output_shape(self, shape: Shape, index: int) -> Shape:
        c, _, _ = _image_shape(shape, self, index)
        return (c,)


@dataclass(frozen=True)
class BatchNorm(Layer):
    kind: ClassVar[str] = "bn"

    def token(self) -> str:
        return "bn"


@dataclass(frozen=True)
class Dropout(Layer):
    rate: float = 0.5
    kind: ClassVar[str] = "dropout"

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise SpecError(f"dropout rate must be in [0, 1), got {self.rate}")
        _set(self, "rate", float(self.rate))

    def token(self) -> str:
        return f"dropout{_fmt_float(self.rate)}"


@dataclass(frozen=True)
class Flatten(Layer):
    kind: ClassVar[str] = "flatten"

    def token(self) -> str:
        return "flatten"

    def output_shape(self, shape: Shape, index: int) -> Shape:
        return (math.prod(shape),)


@dataclass(frozen=True)
class Dense(Layer):
    units: int
    bias: bool = True
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        _set(self, "units", _int(self.units))
        if self.units < 1:
            raise SpecError(f"dense needs at least one unit, got {self.units}")

    def token(self) -> str:
        return f"dense{self.units}" + ("" if self.bias else "-nobias")

    def output_shape(self, shape: Shape, index: int) -> Shape:
        return (self.units,)  # an image input is flattened first (see model.build_layers)


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Conv, Activation, Pool, GlobalPool, BatchNorm, Dropout, Flatten, Dense)
}


def _image_shape(shape: Shape, layer: Layer, index: int) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"layer {index} ({layer.token()}) needs an image (C x H x W) input, "
                         f"but gets a flat vector of {shape[0]}; move it before flatten/dense")
    return shape  # type: ignore[return-value]


def _checked_size(layer: Layer, index: int, dim: str, n: int, k: int, s: int, p_total: int, d: int) -> int:
    out = (n + p_total - d * (k - 1) - 1) // s + 1
    if out < 1:
        raise ShapeError(
            f"layer {index} ({layer.token()}) empties the feature map: input {dim} {n}, "
            f"kernel {k}, stride {s}, padding {p_total / 2:g} per side, dilation {d} gives "
            f"floor(({n} + {p_total} - {d}*({k}-1) - 1)/{s}) + 1 = {out}. "
            "Use a smaller kernel or stride, 'same' padding, or fewer pooling layers."
        )
    return out


# --------------------------------------------------------------------------- text form

_NUM = r"\d+(?:x\d+)?"
_VALID_TOKENS = (
    "conv{F}-{K}[-s{S}][-same|-valid|-p{P}][-d{D}][-g{G}][-nobias], relu, leaky_relu[{slope}], "
    "elu, gelu, silu, tanh, sigmoid, softmax, maxpool{K}[-s{S}][-p{P}], avgpool{K}[-s{S}][-p{P}], "
    "gap, gmp, bn, dropout{P}, flatten, dense{N}[-nobias]"
)


_FLOAT = r"(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
# Words a token may start with, for "did you mean" hints.
_WORDS = ("conv", "maxpool", "avgpool", "gap", "gmp", "bn", "batchnorm", "dropout", "flatten",
          "dense", "fc", "linear", "relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid",
          "softmax")


def _parse_num(text: str) -> int | tuple[int, int]:
    if "x" in text:
        h, w = text.split("x")
        return int(h), int(w)
    return int(text)


def _token_error(token: str, index: int, why: str = "") -> SpecError:
    word = re.match(r"[a-z_]*", token.strip().lower())[0]
    hint = ""
    if word and word not in _WORDS:
        close = difflib.get_close_matches(word, _WORDS, n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
    why = f" ({why})" if why else ""
    err = SpecError(f"cannot read layer {index} {token.strip()!r}{why}{hint}\nValid layers: {_VALID_TOKENS}")
    err.token_index = index  # parse_spec uses it to point at the token
    return err


def parse_token(token: str, index: int = 1) -> Layer:
    """One text token -> one Layer; a SpecError names the token and lists the valid forms."""
    t = token.strip().lower()
    try:
        if m := re.fullmatch(rf"conv(\d+)-({_NUM})((?:-[a-z]+[\dx]*)*)", t):
            kwargs: dict[str, Any] = {"filters": int(m[1]), "kernel": _parse_num(m[2])}
            for opt in filter(None, m[3].split("-")):
                if opt in ("same", "valid"):
                    kwargs["padding"] = opt
                elif opt == "nobias":
                    kwargs["bias"] = False
                elif o := re.fullmatch(rf"([spdg])({_NUM})", opt):
                    key = {"s": "stride", "p": "padding", "d": "dilation", "g": "groups"}[o[1]]
                    if key == "groups" and "x" in o[2]:
                        raise _token_error(token, index, "groups is one number")
                    kwargs[key] = _parse_num(o[2])
                else:
                    raise _token_error(token, index, f"unknown conv option {opt!r}; "
                                       "use -s{S}, -p{P}, -same, -valid, -d{D}, -g{G} or -nobias")
            return Conv(**kwargs)
        if m := re.fullmatch(rf"(max|avg)pool({_NUM})((?:-[a-z]+[\dx]*)*)", t):
            kwargs = {"op": m[1], "size": _parse_num(m[2])}
            for opt in filter(None, m[3].split("-")):
                if not (o := re.fullmatch(rf"([sp])({_NUM})", opt)):
                    raise _token_error(token, index, f"unknown pooling option {opt!r}; use -s{{S}} or -p{{P}}")
                kwargs["stride" if o[1] == "s" else "padding"] = _parse_num(o[2])
            return Pool(**kwargs)
        if t in ("gap", "globalavgpool", "global_avg_pool", "global_pool"):
            return GlobalPool("avg")
        if t in ("gmp", "globalmaxpool", "global_max_pool"):
            return GlobalPool("max")
        if m := re.fullmatch(rf"leaky_?relu({_FLOAT})?", t):
            return Activation("leaky_relu", float(m[1]) if m[1] else 0.01)
        if t in Activation.NAMES:
            return Activation(t)
        if t in ("bn", "batchnorm"):
            return BatchNorm()
        if m := re.fullmatch(rf"dropout({_FLOAT})?", t):
            return Dropout(float(m[1]) if m[1] else 0.5)
        if t == "flatten":
            return Flatten()
        if m := re.fullmatch(r"(?:dense|fc|linear)(\d+)(-nobias)?", t):
            return Dense(int(m[1]), bias=not m[2])
    except SpecError as e:
        if "Valid layers" in str(e):
            raise
        raise _token_error(token, index, str(e)) from e
    except ValueError as e:
        raise _token_error(token, index, str(e)) from e
    if re.fullmatch(r"conv\d+", t):
        raise _token_error(token, index, f"a conv needs its kernel size too, e.g. {t}-3")
    if t in ("conv", "dense", "maxpool", "avgpool"):
        raise _token_error(token, index, f"{t} needs a number, e.g. {t}{'32-3' if t == 'conv' else 2}")
    raise _token_error(token, index)


def looks_like_spec(text: str) -> bool:
    """True when `text` reads as a layer spec rather than a model name or a path."""
    first = text.split(",")[0].strip().lower()
    try:
        parse_token(first)
    except SpecError:
        return False
    return "," in text or bool(re.match(r"(conv|dense|maxpool|avgpool)\d", first))


def parse_spec(text: str) -> list[Layer]:
    """The text form -> Layers. A bad token is shown in place, underlined, with the valid forms."""
    tokens = [t for t in text.split(",")]
    if not any(t.strip() for t in tokens):
        raise SpecError("empty layer spec; write layers separated by commas, e.g. conv32-3,relu,dense10")
    layers, start = [], 0
    for token in tokens:
        if token.strip():
            try:
                layers.append(parse_token(token, len(layers) + 1))
            except SpecError as e:
                first, _, rest = str(e).partition("\n")
                lead = len(token) - len(token.lstrip())
                pointer = " " * (start + lead) + "^" * max(len(token.strip()), 1)
                raise SpecError(f"{first}\n  {text}\n  {pointer}\n{rest}") from None
        start += len(token) + 1
    return layers


def to_text(layers: list[Layer]) -> str:
    return ",".join(layer.token() for layer in layers)


# --------------------------------------------------------------------------- YAML / dict form


def to_yaml_list(layers: list[Layer]) -> list[Any]:
    """[{conv: {filters: 32, kernel: 3}}, relu, maxpool2, ...]: plain data for yaml.safe_dump.
    A layer with nothing but defaults is written as its text token."""
    out: list[Any] = []
    for layer in layers:
        d = layer.to_dict()
        (_, fields), = d.items()
        if (isinstance(layer, Activation) and layer.slope == 0.01) or fields is None:
            out.append(layer.token())
        else:
            out.append(d)
    return out


def from_yaml_list(items: list[Any]) -> list[Layer]:
    """Inverse of `to_yaml_list`. An item is a text token (`relu`, `conv32-3`), a mapping
    {kind: {field: value}}, or {kind: value} for the kind's first field (`{dense: 10}`)."""
    if not isinstance(items, list):
        raise SpecError(f"a YAML layer spec is a list of layers, got {type(items).__name__}")
    layers: list[Layer] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, str):
            layers.append(parse_token(item, i))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise SpecError(f"layer {i}: expected a string or a one-key mapping, got {item!r}")
        (kind, fields), = item.items()
        if kind not in LAYER_KINDS:
            close = difflib.get_close_matches(str(kind), LAYER_KINDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SpecError(f"layer {i}: unknown kind {kind!r}{hint}; choose from {', '.join(LAYER_KINDS)}")
        cls = LAYER_KINDS[kind]
        if fields is None:
            fields = {}
        elif not isinstance(fields, dict):
            first = [f.name for f in dataclasses.fields(cls)]
            if not first:
                raise SpecError(f"layer {i} ({kind}) takes no value, got {fields!r}")
            fields = {first[0]: fields}
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        try:
            layers.append(cls(**fields))
        except TypeError as e:
            valid = ", ".join(f.name for f in dataclasses.fields(cls))
            raise SpecError(f"layer {i} ({kind}): {e}; its fields are: {valid or 'none'}") from e
        except SpecError as e:
            raise SpecError(f"layer {i} ({kind}): {e}") from e
    return layers


def as_layers(spec: str | list[Any] | list[Layer]) -> list[Layer]:
    """Any of the three forms -> a list of Layer objects."""
    if isinstance(spec, str):
        return parse_spec(spec)
    if all(isinstance(x, Layer) for x in spec):
        return list(spec)
    return from_yaml_list(list(spec))


# --------------------------------------------------------------------------- shapes


def infer_shapes(layers: list[Layer], input_shape: Shape) -> list[Shape]:
    """Output shape (without batch) of every layer; raises ShapeError where one would be empty."""
    shapes = []
    shape = tuple(input_shape)
    for i, layer in enumerate(layers, start=1):
        shape = layer.output_shape(shape, i)
        shapes.append(shape)
    return shapes
