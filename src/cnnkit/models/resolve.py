"""Whatever a user names as a model -> a model and the image shape to show it with.

`cnnkit summary` (and anything else that takes SPEC_OR_MODEL_OR_BUNDLE) accepts a
layer spec, a registry name (`resnet-small`, `tv:resnet18`, ...) or a bundle / run
directory. This lives in models/ because bundles do; nn/summary.py stays free of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, ModelError
from ..nn.spec import looks_like_spec
from .bundle import BundleMeta, is_bundle_path, load_bundle
from .packaged import ALIASES
from .records import ArchRecord
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


class LibraryClassifier(nn.Module):
    """A transformers `*ForImageClassification` model as images -> logits (its own classifier on)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(pixel_values=x, return_dict=True).logits


# Sources whose models come from a pretrained library: without --classes they keep the library's
# own classifier (1,000 classes for an ImageNet model), as the library itself builds them.
LIBRARY_PREFIXES = ("tv", "timm", "hf-hub", "hf", "keras", "kerashub")


def library_model(prefix: str, name: str, input_shape: Shape) -> nn.Module:
    """`prefix:name` as its library builds it, classifier included, random weights; the first
    convolution takes `input_shape`'s channels.

    Keras Applications are built without their top here (sources_keras loads them that way), so
    a keras: model gets a 1,000-way linear classifier on its pooled features: Keras's own top for
    the families whose top is pooling + Dense(1000) (ResNet, EfficientNet, DenseNet, ConvNeXt, ...),
    not for VGG or MobileNet.
    """
    from .adapt import adapt_in_channels

    c = input_shape[0]
    if prefix == "tv":
        from . import sources_torchvision

        model, _ = sources_torchvision.build(name)
        adapt_in_channels(model, c)
    elif prefix in ("timm", "hf-hub"):
        from . import sources_timm

        timm = sources_timm._timm()
        full = f"hf-hub:{name}" if prefix == "hf-hub" else name
        if prefix == "timm" and not timm.is_model(name.split(".")[0]):
            sources_timm.build(name, in_chans=c)  # raises its ModelError (with close names)
        try:
            model = timm.create_model(full, pretrained=False, in_chans=c)
        except (OSError, RuntimeError, ValueError) as e:  # hf-hub: the config comes from the hub
            raise ModelError(f"{prefix}:{name}: timm cannot build it here ({str(e).splitlines()[0][:200]})") from e
    elif prefix == "hf":
        from . import sources_hf

        backbone, _ = sources_hf.build(name, in_chans=c)  # the full model, classifier still on
        model = LibraryClassifier(backbone.model)
    else:
        from .registry import create_model

        model = create_model(f"{prefix}:{name}", input_shape=input_shape, num_classes=1000)
    if not hasattr(model, "cnnkit_arch"):
        model.cnnkit_arch = ArchRecord(prefix, name)
    return model


def load_model(target: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, BundleMeta]:
    """(model in eval mode, meta) for a run or bundle, or for a pretrained model's name
    (`efficientnet-lite0`, `tv:resnet18`, `timm:NAME`) with its own ImageNet classifier and weights:
    what predict, explain and export run."""
    if is_bundle_path(target, found=False):
        return load_bundle(target, device=device)
    from .pretrained import pretrained_classifier

    model, meta = pretrained_classifier(str(target))
    return model.to(device), meta


def weights_note(target: str) -> str:
    """Which weights `resolve_model(target)` holds, one line for `cnnkit summary`."""
    target = target.strip()
    if is_bundle_path(target, found=False):
        return "Weights: the bundle's own (trained by cnnkit)"
    prefix, _, name = ALIASES.get(target, target).partition(":")
    if name and prefix in LIBRARY_PREFIXES:
        return (f"Weights: random (the structure of {target}); `cnnkit finetune --model {target}` loads its "
                f"ImageNet weights, `cnnkit predict/explain {target} IMAGE` uses them with the ImageNet classifier")
    return "Weights: random (a new model; `cnnkit train` trains it)"


def resolve_model(target: str, *, input_shape: str | Shape | None = None,
                  num_classes: int | None = None) -> tuple[nn.Module, Shape]:
    """(model, input shape) for a spec, a registry name or a bundle/run directory.

    A bundle brings its own input shape (an explicit one overrides it); a spec or a
    name needs one. A spec is built as written unless `num_classes` asks for a
    classifier. A model of a pretrained library (tv:, timm:, hf-hub:, hf:, keras:) is the
    library's own, with its classifier (1,000 classes for ImageNet models), unless
    `num_classes` asks for a new head; any other registry model gets `num_classes` or 10.
    """
    target = ALIASES.get(target.strip(), target.strip())
    if is_bundle_path(target, found=False):  # a path that holds no bundle: load_bundle says what is wrong
        model, meta = load_bundle(target)
        return model, parse_input_shape(input_shape) if input_shape else tuple(meta.input_shape)
    if input_shape is None:
        raise ConfigError(f"give the image shape for {target!r} with --input CxHxW, e.g. --input 1x28x28")
    shape = parse_input_shape(input_shape)
    if looks_like_spec(target):
        return spec_model(target, shape, num_classes), shape
    prefix, _, name = target.partition(":")
    if num_classes is None and name and prefix in LIBRARY_PREFIXES:
        return library_model(prefix, name, shape), shape
    return create_model(target, input_shape=shape, num_classes=num_classes or 10), shape
