"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.

For a target conv layer with activations A (K x h x w) and the class score y_c:
weights a_k = mean over h, w of dy_c/dA_k; map = ReLU(sum_k a_k A_k), then scaled
up to the input size. The target is the last `nn.Conv2d` found by module type.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .trace import last_conv


@dataclass
class GradCam:
    layer: str
    class_index: int
    score: float  # the class logit
    cam: torch.Tensor  # h x w at the layer's resolution, >= 0, not rescaled
    heatmap: torch.Tensor  # H x W at the input's resolution, scaled into 0..1


def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int | None = None,
             layer: str | None = None) -> GradCam:
    """Grad-CAM for one image x (1 x C x H x W); class_index None = the top class."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ConfigError(f"grad_cam takes one image (1 x C x H x W), got shape {tuple(x.shape)}")
    modules = dict(model.named_modules())
    if layer is None:
        layer, target = last_conv(model)
    elif layer in modules:
        target = modules[layer]
    else:
        raise ConfigError(f"the model has no layer {layer!r}")
    captured: list[torch.Tensor] = []

    def hook(m, inputs, output):
        captured.append(output)
        return output.clone()  # a later in-place activation must not overwrite A

    handle = target.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(False)
            logits = model(x)
            if class_index is None:
                class_index = int(logits[0].argmax())
            if not 0 <= class_index < logits.shape[1]:
                raise ConfigError(f"class {class_index} is out of range; the model has {logits.shape[1]} classes")
            activation = captured[0]
            score = logits[0, class_index]
            (grads,) = torch.autograd.grad(score, activation)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads[0].mean(dim=(1, 2))  # one weight per channel
    cam = F.relu((weights[:, None, None] * activation[0]).sum(0)).detach()
    up = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    top = float(up.max())
    heatmap = up / top if top > 0 else torch.zeros_like(up)
    return GradCam(layer, int(class_index), float(score.detach()), cam, heatmap)
