"""What training prints: a live bar per epoch on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable


class EpochPrinter:
    def __init__(self, epochs: int, live: bool | None = None, write: Callable[[str], None] = print,
                 metric: str = "acc") -> None:
        self.epochs, self.metric = epochs, metric  # metric: the task's short label of its score
        self.live = sys.stdout.isatty() if live is None else live
        self.write = write
        self._progress = None
        self._task = None

    def on_epoch_start(self, trainer, epoch: int, steps: int) -> None:
        if not self.live:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn(f"epoch {epoch}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=steps, stats="")

    def on_step(self, trainer, step: int, steps: int, loss: float, score: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=f"loss {loss:.4f} {self.metric} {score:.4f}")

    def close(self) -> None:
        """Stop the live bar (a run that stopped mid-epoch prints its message after it)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_epoch_end(self, trainer, r) -> None:
        self.close()
        self.write(
            f"epoch {r.epoch:>3}/{self.epochs}  loss {r.train_loss:.4f}  {self.metric} {r.train_score:.4f}  "
            f"val_loss {r.val_loss:.4f}  val_{self.metric} {r.val_score:.4f}  "
            f"{r.seconds:.1f}s  {r.images_per_second:,.0f} img/s"
        )
