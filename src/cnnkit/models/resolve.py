"""Whatever a user names as a model -> a model and the image shape to show it with.

`cnnkit summary` (and anything else that takes SPEC_OR_MODEL_OR_BUNDLE) accepts a
layer spec, a registry name (`resnet-small`, `tv:resnet18`, ...) or a bundle / run
directory. This lives in models/ because bundles do; nn/summary.py stays free of it.
"""

from __future__ import annotations

import re

from torch import nn

from ..errors import ConfigError
from ..nn.spec import looks_like_spec
from .bundle import is_bundle_path, load_bundle
from .registry import create_model, spec_model

Shape = tuple[int, int, int]


def parse_input_shape(text: str | tuple | list) -> Shape:
    """'1x28x28' (or 1,28,28 / (1, 28, 28)) -> (1, 28, 28)."""
    if isinstance(text, (tuple, list)):
        parts = [str(v) for v in text]
    else:
        parts = [p for p in re.split(r"[x,\s]+", str(text).strip().lower().strip("()[]")) if p]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"input shape {text!r} is not CxHxW; write channels x height x width, e.g. 1x28x28 "
                          "or 3x32x32")
    return int(parts[0]), int(parts[1]), int(parts[2])


def resolve_model(target: str, *, input_shape: str | Shape | None = None,
                  num_classes: int | None = None) -> tuple[nn.Module, Shape]:
    """(model, input shape) for a spec, a registry name or a bundle/run directory.

    A bundle brings its own input shape (an explicit one overrides it); a spec or a
    name needs one. A spec is built as written unless `num_classes` asks for a
    classifier; a registry model gets `num_classes` or 10.
    """
    target = target.strip()
    if is_bundle_path(target, found=False):  # a path that holds no bundle: load_bundle says what is wrong
        model, meta = load_bundle(target)
        return model, parse_input_shape(input_shape) if input_shape else tuple(meta.input_shape)
    if input_shape is None:
        raise ConfigError(f"give the image shape for {target!r} with --input CxHxW, e.g. --input 1x28x28")
    shape = parse_input_shape(input_shape)
    if looks_like_spec(target):
        return spec_model(target, shape, num_classes), shape
    return create_model(target, input_shape=shape, num_classes=num_classes or 10), shape
