"""TensorFlow "same" padding made constant for an export at one input size.

timm's TF-ported models (`tf_efficientnet_lite0`, the offline ImageNet model) pad each input
by an amount computed from its height and width at run time, as TensorFlow does. Traced to
ONNX, that arithmetic becomes Shape/Ceil/Clip nodes on tensors, which ONNX Runtime runs but
OpenCV DNN refuses to import ("ERROR during processing node ... [Clip]"). An exported model
has one input size, so the padding is a constant: each such layer is replaced by a fixed
`F.pad` and the same layer without padding, sharing its parameters. Outputs are unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def _same_pads(size: tuple[int, int], kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) as TensorFlow pads: the odd pixel goes right/bottom."""
    pads = []
    for x, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        total = max((-(-x // s) - 1) * s + (k - 1) * d + 1 - x, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class PaddedLayer(nn.Module):
    """A constant pad, then the wrapped convolution or pooling with no padding of its own."""

    def __init__(self, layer: nn.Module, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.layer, self.pads = layer, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        if isinstance(layer, nn.Conv2d):
            return F.conv2d(F.pad(x, self.pads), layer.weight, layer.bias, layer.stride, 0, layer.dilation,
                            layer.groups)
        if isinstance(layer, nn.MaxPool2d):
            return F.max_pool2d(F.pad(x, self.pads, value=-float("inf")), layer.kernel_size, layer.stride, 0,
                                layer.dilation, layer.ceil_mode)
        return F.avg_pool2d(F.pad(x, self.pads), layer.kernel_size, layer.stride, 0, layer.ceil_mode,
                            layer.count_include_pad)


def _dynamic_same_layers(model: nn.Module) -> dict[str, nn.Module]:
    try:
        from timm.layers import Conv2dSame
        from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
    except ImportError:  # without timm there are no such layers
        return {}
    kinds = (Conv2dSame, MaxPool2dSame, AvgPool2dSame)
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def freeze_same_padding(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """`model`, or a copy whose run-time "same" padding is constant for inputs shaped like `example`."""
    layers = _dynamic_same_layers(model)
    if not layers:
        return model
    model = copy.deepcopy(model)
    layers = _dynamic_same_layers(model)
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:  # None: the arguments go on unchanged
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in layers.items()]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    for name, layer in layers.items():
        dilation = _pair(getattr(layer, "dilation", 1))
        pads = _same_pads(sizes[name], _pair(layer.kernel_size), _pair(layer.stride), dilation)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, PaddedLayer(layer, pads))
    return model
