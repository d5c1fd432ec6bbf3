"""The training loop: one screen of plain PyTorch inside a small Trainer.

The Trainer owns the model, optimizer, schedule and loaders; `fit()` runs epochs,
validates, keeps the best weights, writes a checkpoint after every epoch (and
every N steps when asked) and fires three events on its callbacks:
`on_epoch_start(trainer, epoch, steps)`, `on_step(trainer, step, steps, loss,
score)` and `on_epoch_end(trainer, result)`; a callback may set
`trainer.stop_training`. What the loss and the score are is the task's business
(tasks/: the trainer asks its Task object, it never branches on the task).

`fit(epochs, param_groups=..., stage=...)` trains a stage: that many more epochs
with a fresh optimizer and schedule over the given parameter groups, continuing
the same TrainState (epochs, history, best score, time), as fastai's `fine_tune`
calls `fit` twice; transfer/finetune.py runs its stages that way. Everything
needed to continue after a crash (weights, optimizer, schedule, EMA, RNG states,
history) is in one checkpoint file written atomically, so a killed run resumes
exactly.

The loop never waits for the GPU inside an epoch: loss and score sums are
summed on the device and read back every `sync_every` steps (every step on the
CPU, where reading costs nothing), which is also where a NaN/inf loss is caught;
a checkpoint is only written after checking that the loss and the weights are
finite, so the last checkpoint is always a good one. Why the defaults (bf16
autocast, channels_last) are what they are: docs/training.md.

Faults: `trainer.interrupt` (set by train/guard.py's signal handler) makes the loop write a
checkpoint after the current step and raise `Interrupted`; a batch that does not fit in memory
raises `OutOfMemoryError` with a batch size that does (train/memory.py). Both leave the last
checkpoint as it was written.
"""

from __future__ import annotations

import functools
import math
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.dataset import DataSplits
from ..data.loader import TensorLoader, make_loader
from ..errors import Interrupted, OutOfMemoryError, TrainingError
from ..tasks.base import Task, get_task
from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .ema import ModelEma
from .guard import signal_name
from .memory import batch_size_that_fits, free_memory, is_out_of_memory
from .optim import make_optimizer, make_scheduler


@dataclass
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    train_score: float  # the task's metric (classification: accuracy) on the training batches
    val_loss: float
    val_score: float
    seconds: float  # wall time of the training steps of this epoch
    images_per_second: float
    metric: str = "accuracy"  # the task's metric name: the row's keys are train_<metric>, val_<metric>
    stage: str | None = None  # the stage of a staged run (finetune), tagged on the row

    def row(self) -> dict:
        values = {"epoch": self.epoch, "lr": self.lr, "train_loss": self.train_loss,
                  f"train_{self.metric}": self.train_score, "val_loss": self.val_loss,
                  f"val_{self.metric}": self.val_score, "seconds": self.seconds,
                  "images_per_second": self.images_per_second}
        row = {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}
        if self.stage is not None:
            row["stage"] = self.stage
        return row


@dataclass
class TrainState:
    """What a checkpoint restores besides weights and optimizer."""

    epoch: int = 0  # epochs completed (across all stages of a staged run)
    step_in_epoch: int = 0  # batches of the current epoch already done (mid-epoch checkpoints)
    best_val_score: float = -1.0  # the best validation value of the task's metric (higher is better)
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    partial: dict = field(default_factory=dict)  # running sums of a half-done epoch
    world_size: int = 1  # processes that wrote step_in_epoch (distributed resume remaps it)
    best_epoch: int = 0  # the epoch whose weights are in best/
    stopped_early: bool = False  # early stopping (--patience) ended the run
    lr_trace: list = field(default_factory=list)  # [global step, lr] about 200 times per stage, for the plot


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX (oneDNN then runs bf16 convs natively)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32.

    auto: bf16 on GPUs that have it, fp16 (with a grad scaler) on older GPUs, bf16 on
    CPUs with native bf16 (measured 1.5-2.5x faster on small convs, same accuracy:
    docs/training.md), fp32 elsewhere (emulated bf16 on CPUs is slower, MPS is patchy).
    """
    if config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def use_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """auto (None): on CUDA and the CPU (oneDNN and cuDNN prefer NHWC), off on MPS."""
    if config.channels_last is not None:
        return bool(config.channels_last)
    return device.type in ("cuda", "cpu")


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
        task: Task | None = None,
    ) -> None:
        self.config, self.device, self.run_dir, self.data = config, device, run_dir, data
        self.task = task or get_task(data.task)
        self.channels_last = use_channels_last(config, device)
        self.model = model.to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # [distributed] under torchrun: optional SyncBatchNorm, then DDP; `net` is self.model otherwise.
        self.model, net = distributed.wrap_model(self.model, device, sync_bn=config.sync_bn)
        # make_loader: the tensor path for in-memory splits, the streaming path for image files.
        self.train_loader = make_loader(
            data.train, batch_size=config.batch_size, mean=data.mean, std=data.std, device=device,
            shuffle=True, augment=self._augment(), seed=config.seed, channels_last=self.channels_last,
            **distributed.shard(),  # [distributed] this rank's disjoint slice of each epoch
        )
        self.val_loader = self.eval_loader(data.val)
        self.state = TrainState()
        self.stage_name: str | None = None  # the stage `fit` is running (a staged run), for rows and callbacks
        self.start_stage(config.epochs, param_groups)
        self.criterion = self.task.criterion(config)
        self.amp = amp_dtype(config, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.forward = torch.compile(net) if config.compile else net
        # The EMA copy (when on) is what validation, the bundles and the test see.
        self.ema = ModelEma(self.model, config.ema) if config.ema else None
        self.eval_model = self.ema.module if self.ema is not None else self.forward
        # Read the device-side sums back every step on the CPU (free), every 25 on accelerators.
        self.sync_every = 1 if device.type == "cpu" else 25
        self.callbacks = list(callbacks or [])
        self.save_bundle = save_bundle
        self.stop_training = False
        self.last_good: str | None = None  # where the last checkpoint was taken, for messages
        self.fitting = False  # inside fit(): a signal can wait for the current step to end
        self.interrupt: int | None = None  # a signal number: checkpoint after this step, then stop

    def _augment(self):
        from ..data.augment import get_augment

        return get_augment(self.config.augment or self.data.augment)

    def eval_loader(self, split) -> TensorLoader:
        return make_loader(split, batch_size=max(512, self.config.batch_size), mean=self.data.mean,
                            std=self.data.std, device=self.device, channels_last=self.channels_last,
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

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far in this run (across stages)."""
        return self.steps_before_stage + int(self.scheduler.last_epoch)

    def start_stage(self, epochs: int, param_groups: list[dict] | None = None, *,
                    start: int | None = None, name: str | None = None) -> None:
        """A fresh optimizer and schedule for the `epochs` epochs from epoch `start` (default: now).

        param_groups: e.g. discriminative learning rates for fine-tuning ({'params', 'lr'} dicts).
        `fit(epochs, ...)` calls this; a resumed staged run calls it for the checkpoint's stage
        (whose start lies before the checkpoint) and then `resume()`."""
        self.stage_start = self.state.epoch if start is None else start
        self.stage_end = self.stage_start + epochs
        self.steps_before_stage = self.stage_start * len(self.train_loader)  # global_step's offset, once
        self.stage_name = name
        self.optimizer = make_optimizer(self.model, self.config, param_groups)
        self.total_steps = epochs * len(self.train_loader)
        self.scheduler = make_scheduler(self.optimizer, self.config, self.total_steps)

    def save_checkpoint(self) -> None:
        self.check_finite()
        state = distributed.checkpoint_state(self.state)  # [distributed] all ranks: global counters
        if distributed.is_main():  # [distributed] only rank 0 writes
            save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.scheduler, self.scaler, state,
                            ema=self.ema)
        self.last_good = f"epoch {self.state.epoch}, step {self.state.step_in_epoch}"

    def resume(self, payload: dict | None = None) -> None:
        self.state = load_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.scheduler,
                                     self.scaler, ema=self.ema, payload=payload)
        distributed.adapt_resumed_state(self)  # [distributed] map steps to this world size
        self.last_good = f"epoch {self.state.epoch}, step {self.state.step_in_epoch}"

    def check_finite(self, loss: float | None = None) -> None:
        """Stop with a clear message if the loss or any weight is NaN/inf (the last checkpoint stays good)."""
        bad = None
        if loss is not None and not math.isfinite(loss):
            bad = f"the loss became {loss}"
        elif loss is None:
            params = [p.detach() for p in self.model.parameters()]
            if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
                bad = "the weights became NaN/inf"
        if bad:
            raise TrainingError(
                f"{bad} in epoch {self.state.epoch + 1}; training stopped. The last good checkpoint "
                f"({self.last_good or 'none yet'}) is kept in {self.checkpoint_path.parent}. Lower --lr (now "
                f"{self.config.lr:g}) or set --grad-clip 1.0, then start again (or --resume)."
            )

    # ------------------------------------------------------------------ the loop

    def fit(self, epochs: int | None = None, *, param_groups: list[dict] | None = None,
            stage: str | None = None) -> TrainState:
        """Train to the end of the current stage (a plain run: config.epochs; a resumed run carries
        on where it stopped), or, given `epochs`, a new stage of that many more epochs with a fresh
        optimizer and schedule over `param_groups`, named `stage` in the metrics rows."""
        cfg = self.config
        if epochs is not None:
            self.start_stage(epochs, param_groups, name=stage)
        self.fitting = True
        try:
            while (self.state.epoch < self.stage_end and not self.stop_training
                   and not self.state.stopped_early):
                epoch = self.state.epoch
                result = self.train_epoch(epoch)
                self.check_finite(result.train_loss)
                result.val_loss, result.val_score = self.evaluate(self.val_loader)
                self.state.history.append(result.row())
                self.state.epoch, self.state.step_in_epoch, self.state.partial = epoch + 1, 0, {}
                if result.val_score > self.state.best_val_score:
                    self.state.best_val_score, self.state.best_epoch = result.val_score, epoch + 1
                    if self.save_bundle:
                        self.save_bundle(self.eval_model, self.run_dir / "best")
                elif cfg.patience and epoch + 1 - self.state.best_epoch >= cfg.patience:
                    self.state.stopped_early = True  # saved in the checkpoint: a resume does not restart it
                if self.save_bundle:
                    self.save_bundle(self.eval_model, self.run_dir / "last")
                self.save_checkpoint()
                self.fire("on_epoch_end", result)
                self.stop_training = distributed.any_rank(self.stop_training)  # [distributed] stop together
                if self.stop_requested():  # a signal during the last step, validation or the writes
                    raise self.interrupted()
        finally:
            self.fitting = False
        # A signal between the last check and `fitting = False` waited for a step that never came.
        if self.interrupt is not None:
            raise self.interrupted()
        return self.state

    def stop_requested(self, sync: bool = True) -> bool:
        """Has a signal asked the loop to stop (train/guard.py sets `interrupt`)? [distributed] The
        ranks agree on it at the steps where they read their sums back (`sync`), so that all of
        them checkpoint and stop at the same step."""
        if distributed.world_size() == 1:
            return self.interrupt is not None
        return sync and distributed.any_rank(self.interrupt is not None)

    def interrupted(self) -> Interrupted:
        """The error that ends a run stopped by a signal, once its checkpoint is written."""
        signum = self.interrupt or signal.SIGTERM  # [distributed] a peer was signalled, not this rank
        return Interrupted(f"stopped by {signal_name(signum)} once the step in progress was done", signum)

    def train_epoch(self, epoch: int) -> EpochResult:
        self.model.train()
        loader = self.train_loader
        loader.set_epoch(epoch)
        start_step = self.state.step_in_epoch
        partial = self.state.partial or {"loss": 0.0, "score": 0, "seen": 0, "seconds": 0.0}
        # Running sums live on the device (no host sync per step); a half-done epoch's come from the checkpoint.
        loss_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        loss_sum = torch.tensor(float(partial["loss"]), dtype=loss_dtype, device=self.device)
        # The task's score summed over samples (classification: correct counts, kept as integers).
        score_sum = torch.tensor(partial["score"], device=self.device)
        sums = {"loss": float(partial["loss"]), "score": partial["score"],
                "seen": int(partial["seen"]), "seconds": float(partial["seconds"])}
        steps = len(loader)
        every = self.config.checkpoint_every
        trace_every = max(1, self.total_steps // 200)
        self.fire("on_epoch_start", epoch + 1, steps)
        tic = time.perf_counter()
        for step, (x, y) in enumerate(loader.iterate(start_step), start=start_step):
            if self.global_step % trace_every == 0:
                self.state.lr_trace.append([self.global_step, self.optimizer.param_groups[0]["lr"]])
            try:
                loss, score = self.train_step(x, y)
            except Exception as e:  # only out-of-memory errors become a message
                if not is_out_of_memory(e):
                    raise
                raise self.out_of_memory(e, x, y, step) from e
            loss_sum += loss * len(y)
            score_sum += score
            sums["seen"] += len(y)
            sync = (step + 1) % self.sync_every == 0 or step + 1 == steps
            if sync:
                sums["loss"], sums["score"] = loss_sum.item(), score_sum.item()
                self.check_finite(sums["loss"])
            self.fire("on_step", step + 1, steps, sums["loss"] / max(sums["seen"], 1),
                      sums["score"] / max(sums["seen"], 1))
            # Asked after the callbacks, so a signal that came during one still counts for this step.
            stop = self.stop_requested(sync)
            if ((every and (step + 1) % every == 0) or stop) and step + 1 < steps:
                sums["loss"], sums["score"] = loss_sum.item(), score_sum.item()
                self.check_finite(sums["loss"])  # only a finite state is checkpointed
                now = time.perf_counter()
                sums["seconds"] += now - tic
                self.state.train_seconds += now - tic
                self.state.step_in_epoch, self.state.partial = step + 1, dict(sums)
                self.save_checkpoint()
                tic = time.perf_counter()  # the checkpoint's write is not training time
                if stop:
                    raise self.interrupted()
        sums["loss"], sums["score"] = loss_sum.item(), score_sum.item()
        elapsed = time.perf_counter() - tic
        sums["seconds"] += elapsed
        self.state.train_seconds += elapsed
        sums = distributed.end_of_epoch(self.model, sums)  # [distributed] global counters, same BN stats
        seen = max(sums["seen"], 1)
        return EpochResult(
            epoch=epoch + 1, lr=self.optimizer.param_groups[0]["lr"],
            train_loss=sums["loss"] / seen, train_score=sums["score"] / seen,
            val_loss=math.nan, val_score=math.nan, seconds=sums["seconds"],
            images_per_second=sums["seen"] / max(sums["seconds"], 1e-9),
            metric=self.task.metric, stage=self.stage_name,
        )

    def out_of_memory(self, error: BaseException, x: torch.Tensor, y: torch.Tensor, step: int) -> OutOfMemoryError:
        """The error for a training batch that does not fit, with a batch size that does (found by
        halving: train/memory.py; [distributed] not tried, a lone rank's backward would wait for peers)."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if len(first) > 160:  # allocator messages run long: keep whole words
            first = first[:160].rsplit(" ", 1)[0] + " ..."
        traceback.clear_frames(error.__traceback__)  # its frames hold the failed step's tensors
        free_memory(self)
        if distributed.world_size() > 1:
            fits, how = len(x) // 2, "half of it may"
        else:
            fits, how = batch_size_that_fits(self, x, y), "found by halving"
        advice = (f"--batch-size {fits} fits ({how}): start again with it" if fits else
                  "not even a batch of 1 fits: use a smaller --model or --device cpu")
        return OutOfMemoryError(
            f"out of memory on {self.device} with a batch of {len(x)} (epoch {self.state.epoch + 1}, "
            f"step {step + 1}: {first}); {advice}")

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (mean loss, the batch's summed score) as 0-d tensors on the device."""
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            logits = self.forward(x)
            loss = self.criterion(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach().float(), self.task.batch_score(logits.detach(), y)

    @torch.no_grad()
    def predict(self, loader: TensorLoader, model: nn.Module | None = None,
                tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) for a whole split, from the EMA weights when on.

        tta: also look at each image mirrored left-right and merge the two outputs as the task
        says (classification: the mean of the probability vectors, as log-probabilities).
        """
        model = model or self.eval_model
        was_training = self.model.training
        self.model.eval()
        model.eval()
        outputs, labels = [], []
        for x, y in loader:
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                out = model(x).float()
                if tta:
                    out = self.task.merge_flip(out, model(x.flip(3)).float())
                outputs.append(out)
            labels.append(y)
        self.model.train(was_training)
        # [distributed] each rank predicted its shard; gather the whole split back, in order
        return distributed.gather_split(torch.cat(outputs), torch.cat(labels), loader)

    def evaluate(self, loader: TensorLoader, tta: bool = False) -> tuple[float, float]:
        """(mean loss, the task's metric) on a loader's split."""
        outputs, targets = self.predict(loader, tta=tta)
        return self.task.split_scores(outputs, targets)
