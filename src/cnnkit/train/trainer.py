"""The training loop: one screen of plain PyTorch inside a small Trainer.

The Trainer owns the model, optimizer, schedule and loaders; `fit()` runs epochs,
validates, keeps the best weights, writes a checkpoint after every epoch (and
every N steps when asked) and fires three events on its callbacks:
`on_epoch_start(trainer, epoch, steps)`, `on_step(trainer, step, steps, loss,
accuracy)` and `on_epoch_end(trainer, result)`; a callback may set
`trainer.stop_training`. Everything needed to
continue after a crash (weights, optimizer, schedule, RNG states, history) is in
one checkpoint file written atomically, so a killed run resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.dataset import DataSplits
from ..data.loader import TensorLoader
from ..errors import TrainingError
from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .optim import make_optimizer, make_scheduler


@dataclass
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float  # wall time of the training steps of this epoch
    images_per_second: float

    def row(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class TrainState:
    """What a checkpoint restores besides weights and optimizer."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches of the current epoch already done (mid-epoch checkpoints)
    best_val_accuracy: float = -1.0
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    partial: dict = field(default_factory=dict)  # running sums of a half-done epoch
    world_size: int = 1  # processes that wrote step_in_epoch (distributed resume remaps it)


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision: bf16 autocast on GPUs that have it by default; off on CPU unless asked."""
    if config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        data: DataSplits,
        config: TrainConfig,
        device: torch.device,
        run_dir: Path,
        *,
        callbacks: list | None = None,
        save_bundle: Callable[[nn.Module, Path], None] | None = None,
        param_groups: list[dict] | None = None,
    ) -> None:
        self.config, self.device, self.run_dir, self.data = config, device, run_dir, data
        self.model = model.to(device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # [distributed] under torchrun: optional SyncBatchNorm, then DDP; `net` is self.model otherwise.
        self.model, net = distributed.wrap_model(self.model, device, sync_bn=config.sync_bn)
        self.train_loader = TensorLoader(
            data.train, batch_size=config.batch_size, mean=data.mean, std=data.std, device=device,
            shuffle=True, augment=self._augment(), seed=config.seed, channels_last=config.channels_last,
            **distributed.shard(),  # [distributed] this rank's disjoint slice of each epoch
        )
        self.val_loader = self.eval_loader(data.val)
        # param_groups: e.g. discriminative learning rates for fine-tuning ({'params', 'lr'} dicts).
        self.optimizer = make_optimizer(self.model, config, param_groups)
        self.total_steps = config.epochs * len(self.train_loader)
        self.scheduler = make_scheduler(self.optimizer, config, self.total_steps)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing or 0.0)
        self.amp = amp_dtype(config, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.forward = torch.compile(net) if config.compile else net
        self.state = TrainState()
        self.callbacks = list(callbacks or [])
        self.save_bundle = save_bundle
        self.stop_training = False

    def _augment(self):
        from ..data.augment import get_augment

        return get_augment(self.config.augment or self.data.augment)

    def eval_loader(self, split) -> TensorLoader:
        return TensorLoader(split, batch_size=max(512, self.config.batch_size), mean=self.data.mean,
                            std=self.data.std, device=self.device, channels_last=self.config.channels_last,
                            **distributed.shard())  # [distributed] predict() gathers the shards back

    def fire(self, event: str, *args) -> None:
        """Call `event` (on_epoch_start, on_step, on_epoch_end) on every callback that has it."""
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(self, *args)

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last" / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        state = distributed.checkpoint_state(self.state)  # [distributed] all ranks: global counters
        if distributed.is_main():  # [distributed] only rank 0 writes
            save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.scheduler, self.scaler, state)

    def resume(self) -> None:
        self.state = load_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.scheduler,
                                     self.scaler)
        distributed.adapt_resumed_state(self)  # [distributed] map steps to this world size

    # ------------------------------------------------------------------ the loop

    def fit(self) -> TrainState:
        cfg = self.config
        while self.state.epoch < cfg.epochs and not self.stop_training:
            epoch = self.state.epoch
            result = self.train_epoch(epoch)
            val_loss, val_acc = self.evaluate(self.val_loader)
            result.val_loss, result.val_accuracy = val_loss, val_acc
            self.state.history.append(result.row())
            self.state.epoch, self.state.step_in_epoch, self.state.partial = epoch + 1, 0, {}
            if val_acc > self.state.best_val_accuracy:
                self.state.best_val_accuracy = val_acc
                if self.save_bundle:
                    self.save_bundle(self.model, self.run_dir / "best")
            if self.save_bundle:
                self.save_bundle(self.model, self.run_dir / "last")
            self.save_checkpoint()
            self.fire("on_epoch_end", result)
            self.stop_training = distributed.any_rank(self.stop_training)  # [distributed] stop together
        return self.state

    def train_epoch(self, epoch: int) -> EpochResult:
        self.model.train()
        loader = self.train_loader
        loader.set_epoch(epoch)
        start_step = self.state.step_in_epoch
        sums = self.state.partial or {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        steps = len(loader)
        self.fire("on_epoch_start", epoch + 1, steps)
        tic = time.perf_counter()
        for step, (x, y) in enumerate(loader.iterate(start_step), start=start_step):
            loss, correct = self.train_step(x, y)
            sums["loss"] += loss * len(y)
            sums["correct"] += correct
            sums["seen"] += len(y)
            self.fire("on_step", step + 1, steps, sums["loss"] / sums["seen"], sums["correct"] / sums["seen"])
            every = self.config.checkpoint_every
            if every and (step + 1) % every == 0 and step + 1 < steps:
                now = time.perf_counter()
                sums["seconds"] += now - tic
                self.state.train_seconds += now - tic
                tic = now
                self.state.step_in_epoch, self.state.partial = step + 1, dict(sums)
                self.save_checkpoint()
        elapsed = time.perf_counter() - tic
        sums["seconds"] += elapsed
        self.state.train_seconds += elapsed
        sums = distributed.end_of_epoch(self.model, sums)  # [distributed] global counters, same BN stats
        seen = max(sums["seen"], 1)
        return EpochResult(
            epoch=epoch + 1, lr=self.optimizer.param_groups[0]["lr"],
            train_loss=sums["loss"] / seen, train_accuracy=sums["correct"] / seen,
            val_loss=math.nan, val_accuracy=math.nan, seconds=sums["seconds"],
            images_per_second=sums["seen"] / max(sums["seconds"], 1e-9),
        )

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            logits = self.forward(x)
            loss = self.criterion(logits, y)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss.item()} in epoch {self.state.epoch + 1}; the last good "
                f"checkpoint is kept in {self.checkpoint_path.parent}. Lower --lr (now "
                f"{self.config.lr}) or set --grad-clip, then start again or --resume."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.item(), int((logits.argmax(1) == y).sum())

    @torch.no_grad()
    def predict(self, loader: TensorLoader, model: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) for a whole split."""
        model = model or self.forward
        was_training = self.model.training
        self.model.eval()
        outputs, labels = [], []
        for x, y in loader:
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                outputs.append(model(x).float())
            labels.append(y)
        self.model.train(was_training)
        # [distributed] each rank predicted its shard; gather the whole split back, in order
        return distributed.gather_split(torch.cat(outputs), torch.cat(labels), loader)

    def evaluate(self, loader: TensorLoader) -> tuple[float, float]:
        logits, labels = self.predict(loader)
        loss = nn.functional.cross_entropy(logits, labels).item()
        return loss, (logits.argmax(1) == labels).float().mean().item()
