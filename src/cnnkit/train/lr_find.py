"""The learning-rate range test (Smith 2015; fastai's `lr_find`).

Train for a few hundred steps while the learning rate grows exponentially from
`start` to `end`; record the (smoothed) loss at each rate; stop once the loss
has blown up. The suggested rate is where the smoothed loss falls fastest
(steepest negative slope against log lr) before its minimum: high enough to
learn quickly, safely below the rate where training diverges. For one-cycle
training the peak rate can go a little above it (up to the minimum / 10 rule).

It trains a throwaway copy of the model with the run's own optimizer, mixed
precision and augmentation (a Trainer builds them), and touches no run directory.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import pick_device
from ..errors import TrainingError
from ..fileio import write_json
from ..models.registry import create_model
from .config import LRFindOptions, TrainConfig
from .run import prepare
from .rundir import new_run_dir
from .trainer import Trainer


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # raw loss per step
    smoothed: list[float] = field(default_factory=list)  # bias-corrected exponential moving average
    suggestion: float = math.nan  # steepest descent of the smoothed loss
    minimum: float = math.nan  # the rate of the lowest smoothed loss
    stopped_early: bool = False  # the loss diverged before `end`

    def to_dict(self) -> dict:
        return {"suggestion": self.suggestion, "minimum": self.minimum, "stopped_early": self.stopped_early,
                "steps": len(self.lrs), "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed}


def suggest(lrs: list[float], smoothed: list[float], skip_start: int = 5, skip_end: int = 3) -> tuple[float, float]:
    """(steepest-descent rate, minimum-loss rate) of a range test's smoothed curve."""
    if len(lrs) < skip_start + skip_end + 3:
        raise TrainingError(f"the range test ran only {len(lrs)} steps; give it more (--steps 100) "
                            "or a smaller --start-lr")
    x = np.log10(np.asarray(lrs[skip_start:len(lrs) - skip_end]))
    y = np.asarray(smoothed[skip_start:len(smoothed) - skip_end])
    lowest = int(np.argmin(y))
    slope = np.gradient(y, x)
    window = slope[: max(lowest, 1)]  # only the descent before the minimum
    steepest = int(np.argmin(window))
    return float(10 ** x[steepest]), float(10 ** x[lowest])


def range_test(trainer, *, start: float = 1e-6, end: float = 1.0, steps: int = 100,
               beta: float | None = None, diverge: float = 4.0, on_step=None) -> LRFindResult:
    """Run the range test with `trainer`'s model, optimizer, loader, loss and precision.

    The trainer's weights are changed: use a Trainer made for this purpose.
    """
    if not 0 < start < end:
        raise TrainingError(f"--start-lr ({start:g}) must be positive and below --end-lr ({end:g})")
    if steps < 2:
        raise TrainingError(f"--steps {steps}: the range test needs at least 2 steps (100 is usual)")
    factor = (end / start) ** (1.0 / max(steps - 1, 1))
    # Smoothing over ~5% of the test: fastai's 0.98 at its 100 steps lags the curve by a decade.
    beta = beta if beta is not None else max(0.8, 1.0 - 5.0 / steps)
    model, optimizer, loader = trainer.model, trainer.optimizer, trainer.train_loader
    model.train()
    result = LRFindResult()
    avg, best, step, epoch = 0.0, math.inf, 0, 0
    while step < steps:
        loader.set_epoch(epoch)
        for x, y in loader:
            lr = start * factor**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(trainer.device.type, dtype=trainer.amp, enabled=trainer.amp is not None):
                loss = trainer.criterion(trainer.forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            trainer.scaler.scale(loss).backward()
            trainer.scaler.step(optimizer)
            trainer.scaler.update()
            value = float(loss.item())  # the test needs every loss: a sync per step is the point here
            step += 1
            avg = beta * avg + (1 - beta) * (value if math.isfinite(value) else 1e9)
            smooth = avg / (1 - beta**step)
            result.lrs.append(lr)
            result.losses.append(value)
            result.smoothed.append(smooth)
            if on_step is not None:
                on_step(step, steps, lr, smooth)
            best = min(best, smooth)
            if not math.isfinite(value) or (step > 10 and smooth > diverge * best):
                result.stopped_early = True
                break
            if step >= steps:
                break
        if result.stopped_early:
            break
        epoch += 1
    result.suggestion, result.minimum = suggest(result.lrs, result.smoothed)
    return result


def run_lr_find(config: TrainConfig | dict | None = None, *, options: LRFindOptions | None = None,
                start: float | None = None, end: float | None = None, steps: int | None = None,
                out: str | Path | None = None, log=print, **overrides: Any) -> dict[str, Any]:
    """The learning-rate range test on a dataset's recipe model: plot + suggested peak lr.

    The test's own settings are `options` (LRFindOptions) with `start`/`end`/`steps`/`out`
    applied where given. Writes lr_find.png and lr_find.json into `out` (default
    runs/lr-find-<data>-<time>/) and returns {suggestion, minimum, stopped_early, plot, ...}.

    Examples:
        >>> cnnkit.lr_find(data="fashion-mnist", steps=100)["suggestion"]   # doctest: +SKIP
    """
    import tempfile

    from ..report.plots import plot_lr_find

    given = {"start_lr": start, "end_lr": end, "steps": steps, "out": out}
    options = dataclasses.replace(options or LRFindOptions(), **{k: v for k, v in given.items() if v is not None})
    start, end, steps, out = options.start_lr, options.end_lr, options.steps, options.out
    config, data, _ = prepare(config, log=log, **overrides)
    # The schedule is replaced by the test's own exponential ramp; one "epoch" keeps the Trainer small.
    config = config.updated(epochs=1, lr=start, ema=0.0, tensorboard=False)
    device = pick_device(config.device)
    model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    log(f"range test of {config.model} on {data.name}: lr {start:g} -> {end:g} over {steps} steps")
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(model, data, config, device, Path(scratch))
        result = range_test(trainer, start=start, end=end, steps=steps)
    folder = Path(out) if out else new_run_dir(config.out, f"lr-find-{data.name}")
    png = plot_lr_find(result.lrs, result.losses, result.smoothed, result.suggestion, folder / "lr_find.png",
                       title=f"{data.name}, {config.model[:50]}, batch {config.batch_size}")
    payload = {**result.to_dict(), "plot": str(png), "dataset": data.name, "model": config.model,
               "batch_size": config.batch_size, "optimizer": config.optimizer}
    write_json(folder / "lr_find.json", payload)
    return payload
