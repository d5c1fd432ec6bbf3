"""Turn a layer spec into a PyTorch model with readable layer names.

`SpecNet` keeps its spec, so model -> spec is exact, and follows the one model
interface of the registry (timm's): `forward_features`, `forward_head`,
`num_features`, `reset_classifier`. The last dense layer is the classifier.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..errors import ShapeError
from .spec import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Pool,
    Shape,
    as_layers,
    infer_shapes,
    pair,
    to_text,
)

_ACTIVATIONS = {
    "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}


def make_module(layer: Layer, in_shape: Shape) -> nn.Module:
    """The torch module for one layer spec, given the shape that reaches it."""
    if isinstance(layer, Conv):
        top, bottom, left, right = layer.paddings(in_shape[1], in_shape[2])
        symmetric = top == bottom and left == right
        conv = nn.Conv2d(
            in_shape[0], layer.filters, pair(layer.kernel), stride=pair(layer.stride),
            padding=(top, left) if symmetric else 0, dilation=pair(layer.dilation),
            groups=layer.groups, bias=layer.bias,
        )
        if symmetric:
            return conv
        # 'same' with an even kernel or a stride pads one pixel more after than before.
        return nn.Sequential(OrderedDict(pad=nn.ZeroPad2d((left, right, top, bottom)), conv=conv))
    if isinstance(layer, Activation):
        if layer.name == "leaky_relu":
            return nn.LeakyReLU(layer.slope)
        if layer.name == "softmax":
            return nn.Softmax(dim=1)
        return _ACTIVATIONS[layer.name]()
    if isinstance(layer, Pool):
        cls = nn.MaxPool2d if layer.op == "max" else nn.AvgPool2d
        kwargs = {} if layer.op == "max" else {"count_include_pad": False}
        return cls(pair(layer.size), stride=layer.stride_pair, padding=pair(layer.padding), **kwargs)
    if isinstance(layer, GlobalPool):
        pool = nn.AdaptiveAvgPool2d(1) if layer.op == "avg" else nn.AdaptiveMaxPool2d(1)
        return nn.Sequential(OrderedDict(pool=pool, flatten=nn.Flatten()))
    if isinstance(layer, BatchNorm):
        return nn.BatchNorm2d(in_shape[0]) if len(in_shape) == 3 else nn.BatchNorm1d(in_shape[0])
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dense):
        in_features = in_shape[0] if len(in_shape) == 1 else int(torch.tensor(in_shape).prod())
        return nn.Linear(in_features, layer.units, bias=layer.bias)
    raise TypeError(f"no module for {layer!r}")


def layer_name(layer: Layer, counts: dict[str, int]) -> str:
    """Readable, numbered names: conv1, bn1, relu1, maxpool1, dense1, ..."""
    base = {
        Conv: "conv", BatchNorm: "bn", Dropout: "dropout", Flatten: "flatten", Dense: "dense",
    }.get(type(layer))
    if isinstance(layer, Activation):
        base = layer.name
    elif isinstance(layer, Pool):
        base = f"{layer.op}pool"
    elif isinstance(layer, GlobalPool):
        base = "gap" if layer.op == "avg" else "gmp"
    counts[base] = counts.get(base, 0) + 1
    return f"{base}{counts[base]}"


class SpecNet(nn.Module):
    """A sequential CNN built from a layer spec (text, YAML list or Layer objects)."""

    def __init__(self, spec: str | list[Any], input_shape: Shape, num_classes: int | None = None) -> None:
        super().__init__()
        layers = as_layers(spec)
        shapes = infer_shapes(layers, input_shape)
        if num_classes is not None:
            # The classifier is a last dense layer, optionally followed by softmax (as the guide
            # draws it); a spec without one gets dense{num_classes} appended.
            tail = layers[-2] if layers[-1] == Activation("softmax") and len(layers) > 1 else layers[-1]
            if not isinstance(tail, Dense):
                layers.append(Dense(num_classes))
                shapes.append((num_classes,))
            elif tail.units != num_classes:
                raise ShapeError(
                    f"the spec ends in {tail.token()} but the data has {num_classes} classes; "
                    f"end it with dense{num_classes} or leave the last dense layer out"
                )
        self.spec_layers = layers
        self.spec_tokens: dict[str, str] = {}
        self.input_shape = tuple(input_shape)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        counts: dict[str, int] = {}
        shape: Shape = self.input_shape
        for layer, out_shape in zip(layers, shapes, strict=True):
            if isinstance(layer, Dense) and len(shape) == 3:
                modules[f"flatten{counts.get('flatten', 0) + 1}"] = nn.Flatten()
                counts["flatten"] = counts.get("flatten", 0) + 1
            name = layer_name(layer, counts)
            modules[name] = make_module(layer, shape)
            self.spec_tokens[name] = layer.token()  # for summaries: module name -> its spec token
            shape = out_shape
        self.layers = nn.Sequential(modules)
        self.output_shape = shape
        dense_names = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
        self.classifier_name = dense_names[-1] if dense_names else None

    @property
    def block_groups(self) -> list[str]:
        """Names (for `get_submodule`) of the layers that hold weights, input to output.

        The transfer-learning strategies freeze and unfreeze by these groups, as they do
        with resnet-small's stem/layer1/.../head; a spec net's groups are its own layers.
        """
        return [f"layers.{name}" for name, module in self.layers.named_children()
                if any(True for _ in module.parameters())]

    @property
    def spec(self) -> str:
        return to_text(self.spec_layers)

    @property
    def num_classes(self) -> int:
        return int(self.output_shape[0])

    @property
    def num_features(self) -> int:
        head = self.get_classifier()
        return head.in_features if isinstance(head, nn.Linear) else int(self.output_shape[0])

    def get_classifier(self) -> nn.Module:
        return getattr(self.layers, self.classifier_name) if self.classifier_name else nn.Identity()

    def _split(self) -> int:
        names = list(self.layers._modules)
        return names.index(self.classifier_name) if self.classifier_name else len(names)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for module in list(self.layers)[: self._split()]:
            x = module(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        for module in list(self.layers)[self._split() :]:
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh last dense layer with `num_classes` outputs (transfer learning)."""
        if self.classifier_name is None:
            raise ShapeError("this spec has no dense layer to replace")
        old = getattr(self.layers, self.classifier_name)
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        self.layers._modules[self.classifier_name] = new
        index = max(i for i, layer in enumerate(self.spec_layers) if isinstance(layer, Dense))
        self.spec_layers[index] = Dense(num_classes, bias=old.bias is not None)
        self.spec_tokens[self.classifier_name] = self.spec_layers[index].token()
        if all(isinstance(layer, (Activation, Dropout)) for layer in self.spec_layers[index + 1 :]):
            self.output_shape = (num_classes,)
