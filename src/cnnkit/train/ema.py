"""An exponential moving average of the weights (the "EMA model" of timm and YOLO).

The average is a second copy of the model whose parameters follow the trained ones
as `ema = decay * ema + (1 - decay) * w` after every optimizer step; batch-norm
statistics are copied, not averaged. Early in training the decay is lowered to
`(1 + n) / (10 + n)` so the average does not remember the random start. The EMA
copy is what validation, the best/last bundles and the test use when it is on.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        pairs = list(zip(self.module.parameters(), model.parameters(), strict=True))
        # Averaged: the float tensors being trained. Copied, like buffers: the rest (a Keras model's
        # moving statistics and seed states are parameters that do not train; frozen ones do not move).
        averaged = [(e, p.detach()) for e, p in pairs if p.requires_grad and p.is_floating_point()]
        if averaged:
            ema_p, live_p = [e for e, _ in averaged], [p for _, p in averaged]
            torch._foreach_lerp_(ema_p, live_p, 1.0 - d)  # one fused kernel for all tensors
        for e, p in pairs:
            if not (p.requires_grad and p.is_floating_point()):
                e.copy_(p)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
