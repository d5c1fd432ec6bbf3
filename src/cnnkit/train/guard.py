"""What a run does when it is stopped: Ctrl-C, SIGTERM, a full disk, a batch too large for memory.

`RunGuard(run_dir, verb)` is held around the part of `cnnkit train` / `finetune` that writes the
run directory (train/run.py, transfer/finetune.py):

- The first SIGINT (Ctrl-C) or SIGTERM (what `timeout`, `docker stop` and job schedulers send)
  during training asks the Trainer to stop after its current step: it writes a checkpoint there,
  and the run ends with `Interrupted`, which names the exact resume command; the CLI exits 130
  (SIGINT) or 143 (SIGTERM). Outside training (start-up, the final test) there is no step to
  finish, so the first signal stops at once, as a second one always does: every file is written
  atomically (fileio.atomic_path), so stopping anywhere leaves the last checkpoint whole.
- `Interrupted`, `DiskFullError` and `OutOfMemoryError` leaving the run get the same last
  sentence: where the last checkpoint was taken and the command that continues from it.
- On the way out the run's lock (train/runlock.py) is released and the callbacks are closed
  (a live progress bar stops before the message is printed).

Signal handlers can only be set from the main thread; elsewhere (a run started in a worker
thread) signals keep Python's defaults.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from pathlib import Path

from ..errors import DiskFullError, Interrupted, OutOfMemoryError
from . import runlock
from .rundir import shown_path

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return "SIGINT (Ctrl-C)" if signum == signal.SIGINT else signal.Signals(signum).name


class RunGuard:
    """Around the writing of a run directory: signals, fault messages, the lock's release."""

    def __init__(self, run_dir: Path, verb: str, log=print) -> None:
        self.run_dir, self.verb, self.log = Path(run_dir), verb, log
        self.trainer = None
        self.stopping = False  # a first signal has asked the trainer to stop
        self._previous: dict[int, object] = {}

    @property
    def resume_command(self) -> str:
        return f"cnnkit {self.verb} --resume {shlex.quote(shown_path(self.run_dir))}"

    def watch(self, trainer) -> None:
        """From now on a first signal during `trainer.fit()` lets it finish its step and checkpoint."""
        self.trainer = trainer

    def resume_hint(self) -> str:
        """Where the last checkpoint is and how to continue from it (or that there is none)."""
        checkpoint = self.run_dir / "last" / "checkpoint.pt"
        if not checkpoint.is_file():
            return "no checkpoint was written yet, so there is nothing to resume: run the command again"
        where = f" ({self.trainer.last_good})" if self.trainer is not None and self.trainer.last_good else ""
        return (f"the last checkpoint{where} is intact in {shown_path(checkpoint.parent)}: "
                f"continue with `{self.resume_command}`")

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum: int, frame) -> None:
        name = signal_name(signum)
        trainer = self.trainer
        if self.stopping or trainer is None or not trainer.fitting:
            again = "a second " if self.stopping else ""
            raise Interrupted(f"stopped at once by {again}{name}", signum)
        self.stopping = True
        trainer.interrupt = signum
        notice = f"{name}: stopping after this step with a checkpoint (send it again to stop at once)"
        try:
            self.log(notice)
        except RuntimeError:  # the signal came in the middle of a print: "reentrant call"
            os.write(2, (notice + "\n").encode())

    def __enter__(self) -> RunGuard:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        if self.trainer is not None:
            for callback in self.trainer.callbacks:  # e.g. stop a live progress bar before the message
                if error is not None and hasattr(callback, "close"):
                    callback.close()
        runlock.release(self.run_dir)
        if isinstance(error, (Interrupted, DiskFullError, OutOfMemoryError)):
            # One message, one place that knows the run and its verb: the last sentence is added
            # here to the error raised deeper down (args[0] is what str() and the CLI print).
            error.args = (f"{error.args[0]}; {self.resume_hint()}",)
