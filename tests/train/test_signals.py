"""Ctrl-C and SIGTERM: the run finishes its step, checkpoints, names its resume command and exits 130/143.

A real process and a real SIGINT: `cnnkit train` runs with a callback that holds it at one step
until a signal has come (polling the trainer's `interrupt`, the flag the signal handler sets), so
the signal lands mid-epoch without guessing a time; while it is held there, a second `cnnkit
train --resume` of the same folder is refused (the run lock). SIGTERM at an epoch's last step and
a second SIGINT in the middle of a checkpoint's write are sent by the run to itself (in this
process: cheaper, and exactly placed). Each stopped run is resumed and must end byte-identical to
the run never stopped (`reference`).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_faults import (
    FLAGS,
    add_callback,
    assert_same_run,
    reference_run,
    temporaries,
    trainer_module,
)

from cnnkit.cli import main
from cnnkit.train.checkpoint import read_checkpoint

# `cnnkit train ARGS` with a callback that holds the run at (epoch, step) until a signal came.
HELD_RUN = r"""
import importlib, os, pathlib, sys, time
run = importlib.import_module("cnnkit.train.run")  # `cnnkit.train` is also the name of the verb
from cnnkit.cli import main

marker, epoch, step = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
make_trainer = run.make_trainer

class HoldUntilSignalled:
    def on_step(self, trainer, s, steps, loss, score):
        if trainer.state.epoch == epoch and s == step:
            marker.write_text(str(os.getpid()))
            deadline = time.monotonic() + 300
            while trainer.interrupt is None and time.monotonic() < deadline:
                time.sleep(0.01)  # the handler runs in this thread between two of these

def held(*args, **kwargs):
    trainer = make_trainer(*args, **kwargs)
    trainer.callbacks.append(HoldUntilSignalled())
    return trainer

run.make_trainer = held
sys.exit(main(sys.argv[4:]))
"""

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory)


def _wait_for(path: Path, proc: subprocess.Popen, limit: float = 300.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run exited with {proc.returncode} before it was held:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run was not held within {limit:.0f} s")
        time.sleep(0.05)  # polling interval, not synchronisation


def _stopped_like_this(run: Path, err: str, first_words: str, checkpoint: tuple[int, int]) -> None:
    """One line: what stopped it, where the checkpoint is, the resume command; nothing half written."""
    assert err.splitlines()[-1] == (
        f"{first_words}; the last checkpoint (epoch {checkpoint[0]}, step {checkpoint[1]}) is intact in "
        f"{run / 'last'}: continue with `cnnkit train --resume {run}`"), err
    state = read_checkpoint(run / "last" / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"]) == checkpoint
    assert not temporaries(run) and not (run / "summary.json").exists()
    assert not (run / ".lock").exists()  # given back on the way out


def test_sigint_mid_epoch_checkpoints_refuses_a_second_writer_and_resumes_exactly(reference, tmp_path, capsys):
    marker, run = tmp_path / "held", tmp_path / "sigint"
    proc = subprocess.Popen([sys.executable, "-c", HELD_RUN, str(marker), "1", "2", "train", *FLAGS,
                             "--out", str(tmp_path), "--name", "sigint"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, proc)  # held after step 2 of the second epoch
        busy = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--resume", str(run)], env=ENV,
                              capture_output=True, text=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert busy.returncode == 2
    assert busy.stderr == (f"error: {run} is in use by process {proc.pid} on {os.uname().nodename}, which is "
                           f"still writing it; wait for it to end or stop it with `kill -INT {proc.pid}` (it "
                           "writes a checkpoint first), then try again\n")
    assert proc.returncode == 130, err
    assert "SIGINT (Ctrl-C): stopping after this step with a checkpoint (send it again to stop at once)" in out
    _stopped_like_this(run, err, "stopped by SIGINT (Ctrl-C) once the step in progress was done", (1, 2))
    assert main(["train", "--resume", str(run)]) == 0
    assert "continuing after epoch 1, step 2" in capsys.readouterr().out
    assert_same_run(run, reference)


class SendAt:
    """Sends `signum` to this process after (epoch, step)."""

    def __init__(self, signum: int, epoch: int, step: int) -> None:
        self.signum, self.epoch, self.step = signum, epoch, step

    def on_step(self, trainer, step, steps, loss, score) -> None:
        if (trainer.state.epoch, step) == (self.epoch, self.step):
            os.kill(os.getpid(), self.signum)


def test_sigterm_at_an_epochs_last_step_ends_the_epoch_then_stops_with_143(reference, tmp_path, monkeypatch,
                                                                            capsys):
    add_callback(monkeypatch, SendAt(signal.SIGTERM, 0, 5))  # step 5 of 5: validation and the epoch's checkpoint
    run = tmp_path / "sigterm"
    assert main(["train", *FLAGS, "--out", str(tmp_path), "--name", "sigterm"]) == 143
    _stopped_like_this(run, capsys.readouterr().err, "stopped by SIGTERM once the step in progress was done", (1, 0))
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # the header and the finished epoch
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the run gave the handlers back
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(run, reference)


def test_a_second_signal_during_a_checkpoint_write_stops_at_once_and_keeps_the_last_one(
        reference, tmp_path, monkeypatch, capsys):
    """Both SIGINTs arrive while the second checkpoint (the end of epoch 1) is half written."""
    real_torch_save, real_save_checkpoint = torch.save, trainer_module.save_checkpoint
    calls = []

    def half_written_then_two_signals(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_torch_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        os.kill(os.getpid(), signal.SIGINT)  # the first asks for a stop after this step ...
        os.kill(os.getpid(), signal.SIGINT)  # ... the second stops here, in the middle of the write
        raise AssertionError("the second SIGINT did not stop the run")

    def save_checkpoint(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            monkeypatch.setattr(torch, "save", half_written_then_two_signals)
        try:
            real_save_checkpoint(*args, **kwargs)
        finally:
            monkeypatch.setattr(torch, "save", real_torch_save)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_checkpoint)
    run = tmp_path / "twice"
    assert main(["train", *FLAGS, "--out", str(tmp_path), "--name", "twice"]) == 130
    _stopped_like_this(run, capsys.readouterr().err, "stopped at once by a second SIGINT (Ctrl-C)", (0, 3))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(run, reference)
