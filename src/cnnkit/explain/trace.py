"""Look inside a forward pass: per-layer shapes, the conv layers, their inputs and outputs.

Layers are found by module type (`nn.Conv2d`), never by name, so the same code
serves a SpecNet (conv1, bn1, ...), a torchvision ResNet or a timm model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError


@dataclass
class LayerRecord:
    """One leaf module as the forward pass met it."""

    name: str
    kind: str  # the module's class name: Conv2d, BatchNorm2d, ReLU, ...
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every 2-D convolution, in registration order (for the models here, forward order)."""
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        if any(hasattr(m, "keras_model") for m in model.modules()):
            raise ModelError("a Keras backbone's layers are Keras layers, not torch modules, so cnnkit cannot "
                             "hook its feature maps; explain works on cnnkit, tv:, timm: and hf: models")
        raise ModelError("the model has no 2-D convolution layer to look inside; "
                         "explain works on convolutional networks")
    return convs


def last_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    return conv_layers(model)[-1]


@torch.no_grad()
def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[LayerRecord]:
    """The output shape of every leaf module for input `x` (batch of one), in execution order."""
    records: list[LayerRecord] = []

    def hook(name, m, inputs, output):
        if isinstance(output, torch.Tensor):
            records.append(LayerRecord(name, type(m).__name__, tuple(output.shape[1:]),
                                       sum(p.numel() for p in m.parameters(recurse=False))))

    _forward_with_hooks(model, x, leaf_modules(model), hook)
    return records


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, modules: list[tuple[str, nn.Module]]
            ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{name: (input, output)} of the given modules for one forward pass of `x`.

    Clones are kept, so an in-place activation after a layer cannot change what we show.
    The first call wins when a module runs twice (shared layers).
    """
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name, m, inputs, output):
        if name not in seen:
            seen[name] = (inputs[0].detach().clone(), output.detach().clone())

    _forward_with_hooks(model, x, modules, hook)
    return seen


def _forward_with_hooks(model: nn.Module, x: torch.Tensor, modules: list[tuple[str, nn.Module]], hook) -> None:
    """One forward pass of `x` with `hook(name, module, inputs, output)` on each module; hooks removed after."""
    handles = [module.register_forward_hook(functools.partial(hook, name)) for name, module in modules]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
