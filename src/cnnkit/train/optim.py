"""Optimizers and learning-rate schedules.

Weight decay is decoupled (AdamW, or SGD's own) and spares norms and biases: they
are scale parameters, and shrinking them towards zero only hurts (the standard
practice of timm and fastai).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two groups (decay_split)."""
    return decay_split([p for p in model.parameters() if p.requires_grad], weight_decay)


def decay_split(params: list[torch.Tensor], weight_decay: float) -> list[dict]:
    """Two groups: weights of convs and dense layers (decayed), norms and biases (not)."""
    return [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainConfig, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    groups = groups if groups is not None else param_groups(model, config.weight_decay or 0.0)
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def schedule_factor(step: int, total: int, kind: str, warmup: float) -> float:
    """Multiplier of the peak learning rate at `step` of `total`."""
    warm = int(total * warmup)
    if kind == "constant":
        return 1.0
    if kind == "step":  # x0.1 at 50% and 75% of training
        return 1.0 if step < total * 0.5 else (0.1 if step < total * 0.75 else 0.01)
    if step < warm:  # linear warm-up from 4% of the peak (onecycle) or 0 (cosine)
        start = 0.04 if kind == "onecycle" else 0.0
        return start + (1.0 - start) * step / max(warm, 1)
    progress = (step - warm) / max(total - warm, 1)
    if kind == "onecycle":  # cosine annealing down to 1/10,000 of the peak, as OneCycleLR
        return 1e-4 + (1.0 - 1e-4) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))  # cosine


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """A LambdaLR over the whole run (stepped once per batch); its state is just the step count."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(step, total_steps, config.schedule, config.warmup)
    )
