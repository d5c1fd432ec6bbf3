"""TensorBoard event files in the run directory (`tensorboard --logdir runs`).

A Trainer callback: per epoch the train/val loss and accuracy, the learning rate
and images/s; every `every` steps the running training loss and the learning
rate. A resumed run purges the events written after its checkpoint, so the
curves have no doubled tail. Without the `tensorboard` package it does nothing
(and says so once).
"""

from __future__ import annotations

from pathlib import Path


class TensorBoardLogger:
    def __init__(self, run_dir: Path, every: int = 20, log=print) -> None:
        self.run_dir, self.every, self.log = Path(run_dir), every, log
        self.writer = None
        self._unavailable = False

    def _open(self, trainer):
        if self.writer is None and not self._unavailable:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the extra is not installed
                self._unavailable = True
                self.log("tensorboard is not installed (pip install 'cnnkit[tensorboard]'): no event files")
                return None
            # purge_step drops events a killed run wrote after its last checkpoint.
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=trainer.global_step or None)
        return self.writer

    def on_step(self, trainer, step: int, steps: int, loss: float, accuracy: float) -> None:
        if step % self.every:
            return
        writer = self._open(trainer)
        if writer is not None:
            gs = trainer.global_step
            writer.add_scalar("step/train_loss", loss, gs)
            writer.add_scalar("step/lr", trainer.optimizer.param_groups[0]["lr"], gs)

    def on_epoch_end(self, trainer, r) -> None:
        writer = self._open(trainer)
        if writer is None:
            return
        for key in ("train_loss", "val_loss"):
            writer.add_scalar(f"loss/{key[:-5]}", getattr(r, key), r.epoch)
        for key in ("train_accuracy", "val_accuracy"):
            writer.add_scalar(f"accuracy/{key[:-9]}", getattr(r, key), r.epoch)
        writer.add_scalar("epoch/lr", r.lr, r.epoch)
        writer.add_scalar("epoch/images_per_second", r.images_per_second, r.epoch)
        writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
