"""TensorBoard event files in the run directory (`tensorboard --logdir runs`).

A Trainer callback: per epoch the train/val loss and the task's metric, the learning rate
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

    def _open(self, trainer=None, purge_step: int | None = None):
        if self.writer is None and not self._unavailable:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the extra is not installed
                self._unavailable = True
                self.log("tensorboard is not installed (pip install 'cnnkit[tensorboard]'): no event files")
                return None
            # purge_step drops events a killed run wrote after its last checkpoint.
            if trainer is not None:
                purge_step = trainer.global_step or None
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge_step)
        return self.writer

    def on_step(self, trainer, step: int, steps: int, loss: float, score: float) -> None:
        if step % self.every:
            return
        writer = self._open(trainer)
        if writer is not None:
            gs = trainer.global_step
            writer.add_scalar("step/train_loss", loss, gs)
            writer.add_scalar("step/lr", trainer.optimizer.param_groups[0]["lr"], gs)

    def on_epoch_end(self, trainer, r) -> None:
        self._epoch(self._open(trainer), r.row())

    @staticmethod
    def _epoch(writer, row: dict) -> None:
        if writer is None:
            return
        epoch = row["epoch"]
        for key in ("train_loss", "val_loss"):
            writer.add_scalar(f"loss/{key[:-5]}", row[key], epoch)
        for key, value in row.items():  # the task's metric: train_<metric>, val_<metric>
            split, _, metric = key.partition("_")
            if split in ("train", "val") and metric not in ("loss", ""):
                writer.add_scalar(f"{metric}/{split}", value, epoch)
        writer.add_scalar("epoch/lr", row["lr"], epoch)
        writer.add_scalar("epoch/images_per_second", row["images_per_second"], epoch)
        writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
