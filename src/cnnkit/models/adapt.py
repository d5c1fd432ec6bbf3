"""Adapting a pretrained backbone to new data: the wrapper a fine-tuned model lives in.

`TransferNet` = `resize` (to the size the backbone expects, done on the batch, on
the device) -> `backbone` (the pretrained network with its classifier removed;
it returns one feature vector per image) -> `head` (a fresh classifier for the
new classes, optionally with extra layers written in the layer-spec language).

The wrapper also knows the backbone's block groups (stem, stages..., head, in
input-to-output order) that the transfer strategies freeze and unfreeze — asked
of the backbone through `BackboneAdapter` (a library wrapper declares them; a
plain torch module gets `StructuralAdapter`, which reads its layout) —, and
its `train()` keeps the BatchNorm layers of frozen groups in eval mode, so their
running statistics stay those of the pretraining data (fastai and Keras do the
same: a frozen layer must not drift).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError, ShapeError, SpecError
from ..nn.model import SpecNet
from ..nn.spec import parse_spec

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class Resize(nn.Module):
    """Bilinear resize of a batch to `size` (H, W); a no-op when the batch already has it."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        return nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def make_head(num_features: int, num_classes: int, spec: str | None = None) -> nn.Module:
    """A fresh classifier: the optional extra layers of `spec`, then a dense layer of `num_classes`.

    `spec` is the layer-spec language on a feature vector, e.g. "dense256,relu,dropout0.3".
    """
    text = (spec or "").strip().strip(",")
    if text:
        try:
            parse_spec(text)
        except SpecError as e:
            raise ModelError(f"--head {spec!r} is not a layer spec ({e}); write e.g. 'dense256,relu,dropout0.3'") from e
    text = f"{text},dense{num_classes}" if text else f"dense{num_classes}"
    try:
        return SpecNet(text, (num_features,), num_classes=num_classes)
    except ShapeError as e:
        raise ModelError(f"--head {spec!r} does not fit a {num_features}-feature vector: {e}") from e


def adapt_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """First-conv weights for `in_chans` input channels (timm's adapt_input_conv).

    RGB -> 1 channel sums the filters over colour, so a grey image gives the
    response the colour version of it gave; 1 -> N repeats the filter and
    scales by 1/N; other counts repeat the RGB filters and rescale by 3/N.
    """
    old = weight.shape[1]
    if old == in_chans:
        return weight.clone()
    w = weight.float()
    if in_chans == 1:
        w = w.sum(dim=1, keepdim=True)
    elif old == 1:
        w = w.repeat(1, in_chans, 1, 1) / in_chans
    else:
        reps = -(-in_chans // old)
        w = w.repeat(1, reps, 1, 1)[:, :in_chans] * (old / in_chans)
    return w.to(weight.dtype)


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """(name, module) of the backbone's first convolution, as its adapter says."""
    return adapter(model).cnnkit_first_conv()


def _first_conv2d(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(model).__name__} has no Conv2d layer whose input channels could be adapted")


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child] = module


def adapt_in_channels(model: nn.Module, in_chans: int) -> str | None:
    """Make the first convolution take `in_chans` channels, weights adapted; what was done, or None.

    In place (a new weight, the same module), so a Conv2d subclass stays what it is, e.g. BiT's
    weight-standardising convolution."""
    name, conv = first_conv(model)
    old = conv.in_channels
    if old == in_chans:
        return None
    if conv.groups != 1:
        raise ModelError(f"the first convolution {name} is grouped; its input channels cannot be adapted")
    conv.weight = nn.Parameter(adapt_conv_weight(conv.weight.detach(), in_chans))
    conv.in_channels = in_chans
    return f"first convolution {name}: {old} -> {in_chans} input channels (filters summed/repeated as timm does)"


def _chunk(groups: list[tuple[str, list[str]]], most: int) -> list[tuple[str, list[str]]]:
    """Merge neighbouring groups so there are at most `most` (gradual unfreezing needs few stages)."""
    if len(groups) <= most:
        return groups
    size = -(-len(groups) // most)
    merged = []
    for i in range(0, len(groups), size):
        part = groups[i:i + size]
        merged.append((f"{part[0][0]}..{part[-1][0]}" if len(part) > 1 else part[0][0],
                       [p for _, ps in part for p in ps]))
    return merged


def _label(names: list[str]) -> str:
    """The module path the parameter names share ('layer1'), else 'first..last' module."""
    parts = [n.split(".")[:-1] for n in names]
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    if common:
        return ".".join(common)
    return f"{'.'.join(parts[0][:2])}..{'.'.join(parts[-1][:2])}"


# --------------------------------------------------------------- the backbone interface

Groups = list[tuple[str, list[str]]]  # [(group name, [parameter names])], input to output


class BackboneAdapter:
    """What transfer learning asks of a backbone: declared by the backbone, not guessed from its structure.

    A library wrapper (sources_hf.HFBackbone, sources_keras.KerasBackbone) implements it itself
    (fastai's `model_meta`, timm's `pretrained_cfg` names); a plain torch module (torchvision,
    timm, cnnkit's own nets) gets `StructuralAdapter`, which reads its structure.
    """

    def cnnkit_strip_classifier(self) -> tuple[int, str]:
        """Take the classifier off, so that forward() returns features; (number of features, its name)."""
        raise NotImplementedError

    def cnnkit_groups(self) -> Groups:
        """The block groups (stem, stages..., top) that the strategies freeze and unfreeze."""
        raise NotImplementedError

    def cnnkit_first_conv(self) -> tuple[str, nn.Conv2d]:
        """(name, module) of the first convolution, whose input channels adapt to the data."""
        return _first_conv2d(self)


def adapter(model: nn.Module) -> BackboneAdapter:
    """The model's own adapter when it has one, else the structural one."""
    return model if isinstance(model, BackboneAdapter) else StructuralAdapter(model)


def strip_classifier(model: nn.Module) -> tuple[int, str]:
    """Replace the classifier by Identity, so the model returns features; (num_features, name)."""
    return adapter(model).cnnkit_strip_classifier()


def backbone_groups(backbone: nn.Module) -> Groups:
    """Block groups of a backbone, input to output: [(group name, [parameter names])]."""
    if isinstance(backbone, BackboneAdapter):
        return _chunk(backbone.cnnkit_groups(), 6)
    return StructuralAdapter(backbone).cnnkit_groups()  # (merges its groups itself, where it should)


class StructuralAdapter(BackboneAdapter):
    """The one structural fallback, for plain torch modules: timm's own metadata where it has it,
    cnnkit's nets (SpecNet, a TransferNet transferred again, built-ins' `block_groups`), else the
    torchvision layout (ResNet's conv1/bn1 stem and layers, or one big `features` Sequential)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def cnnkit_first_conv(self) -> tuple[str, nn.Conv2d]:
        return _first_conv2d(self.model)

    def cnnkit_strip_classifier(self) -> tuple[int, str]:
        model = self.model
        if isinstance(model, SpecNet):
            if model.classifier_name is None:
                raise ModelError("the pretrained spec model has no dense classifier to replace")
            name = model.classifier_name
            num_features = model.layers._modules[name].in_features
            model.layers._modules[name] = nn.Identity()
            model.classifier_name = None
            return num_features, f"layers.{name}"
        if _is_timm(model) and hasattr(model, "reset_classifier") and hasattr(model, "num_features"):
            model.reset_classifier(0)  # timm: the pooled features come out of forward()
            # MobileNetV3 & co. have a conv head after pooling: forward() then gives head_hidden_size features.
            return int(getattr(model, "head_hidden_size", None) or model.num_features), "classifier"
        linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ModelError(f"{type(model).__name__} has no Linear classifier to replace")
        name, last = linears[-1]
        set_submodule(model, name, nn.Identity())
        return last.in_features, name

    def cnnkit_groups(self) -> Groups:
        backbone = self.model
        named = [n for n, p in backbone.named_parameters()]
        groups: Groups = []
        if _is_timm(backbone) and hasattr(backbone, "group_matcher"):  # timm's own split
            from timm.models import group_parameters

            grouped = group_parameters(backbone, backbone.group_matcher(coarse=True))
            for ordinal, names in grouped.items():
                label = "stem" if ordinal == 0 and len(grouped) > 1 else _label(names)
                groups.append((label, list(names)))
            return _chunk(groups, 6)
        if isinstance(backbone, TransferNet):  # a fine-tuned model transferred again: its own groups
            present = set(named)
            return [("old-head" if n == "head" else n, [p for p in ps if p in present]) for n, ps in backbone.groups
                    if any(p in present for p in ps)]  # what is left of its head (extra layers) stays a group
        if isinstance(backbone, SpecNet):  # one group per conv block (conv, bn, relu, pool), cut after each pool
            current: list[str] = []
            label: list[str] = []
            for child, module in backbone.layers.named_children():
                names = [f"layers.{child}.{n}" for n, _ in module.named_parameters()]
                current += names
                if names:
                    label = label[:1] + [child]
                if "pool" in type(module).__name__.lower() and current:
                    groups.append((f"{label[0]}..{child}", current))
                    current, label = [], []
            if current:
                groups.append((label[0] if len(label) == 1 or label[0] == label[-1] else f"{label[0]}..{label[-1]}",
                               current))
            return _chunk(groups, 6)
        declared = getattr(backbone, "block_groups", None)
        if declared:  # built-ins such as resnet-small: stem, layer1, ... (names or lists of names)
            for entry in declared:
                children = [entry] if isinstance(entry, str) else list(entry)
                prefixes = tuple(f"{c}." for c in children) + tuple(f"layers.{c}." for c in children)
                names = [n for n in named if n.startswith(prefixes)]
                if names:
                    groups.append(("+".join(children), names))
            if groups:
                return _chunk(groups, 6)
        # torchvision and the like: top-level children, expanding one big `features` Sequential.
        children = list(backbone.named_children())
        if {"conv1", "bn1"} <= {n for n, _ in children}:  # ResNet family: conv1/bn1 stem, layer1..4
            stem = [n for n in named if n.split(".")[0] in ("conv1", "bn1")]
            groups.append(("stem", stem))
            for child, _ in children:
                names = [n for n in named if n.split(".")[0] == child and child not in ("conv1", "bn1")]
                if names:
                    groups.append((child, names))
            return groups
        for child, module in children:
            sub = list(module.named_children())
            if isinstance(module, nn.Sequential) and len(sub) > 2 and child == "features":
                for grandchild, _ in sub:
                    names = [n for n in named if n.startswith(f"{child}.{grandchild}.")]
                    if names:
                        groups.append((f"{child}.{grandchild}", names))
            else:
                names = [n for n in named if n.split(".")[0] == child]
                if names:
                    groups.append((child, names))
        return _chunk(groups, 6)


def _is_timm(model: nn.Module) -> bool:
    """A timm model: it carries its pretrained_cfg (and timm's reset_classifier / group_matcher)."""
    return hasattr(model, "pretrained_cfg")

class TransferNet(nn.Module):
    """resize -> pretrained backbone (classifier removed) -> new head. See the module docstring."""

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, *,
                 head: str | None = None, resize: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.resize = Resize(resize) if resize else nn.Identity()
        self.backbone = backbone
        self.head = make_head(num_features, num_classes, head)
        self.num_features = num_features
        self.num_classes = num_classes
        self.groups = [(n, [f"backbone.{p}" for p in ps]) for n, ps in backbone_groups(backbone)]
        self.groups.append(("head", [f"head.{n}" for n, _ in self.head.named_parameters()]))

    @property
    def block_groups(self) -> list[str]:
        return [name for name, _ in self.groups]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(self.resize(x))
        return features.flatten(1) if features.ndim > 2 else features

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    # --------------------------------------------------------------- freezing

    def set_trainable(self, groups: set[str] | list[str]) -> None:
        """requires_grad=True for the parameters of `groups`, False for every other."""
        unknown = set(groups) - set(self.block_groups)
        if unknown:
            raise ModelError(f"unknown block group(s) {sorted(unknown)}; the groups are {self.block_groups}")
        params = dict(self.named_parameters())
        for name, names in self.groups:
            for p in names:
                params[p].requires_grad_(name in groups)

    def frozen_batchnorms(self) -> list[str]:
        """Names of BatchNorm layers whose parameters are all frozen (kept in eval mode)."""
        out = []
        for name, module in self.named_modules():
            if isinstance(module, _BN):
                params = list(module.parameters())
                if params and not any(p.requires_grad for p in params):
                    out.append(name)
        return out

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if mode:
            for name in self.frozen_batchnorms():
                self.get_submodule(name).eval()
        return self
