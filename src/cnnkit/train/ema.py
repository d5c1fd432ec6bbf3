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
        ema_p = [p for p in self.module.parameters()]
        live_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, live_p, 1.0 - d)  # one fused kernel for all tensors
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
