"""Crash safety and repeatability: SIGKILL mid-epoch, resume, same metrics as a run never killed.

Real processes: one run is paused inside epoch 2 (after a mid-epoch checkpoint) and
killed with SIGKILL from here; `cnnkit train --resume` finishes it; an uninterrupted
run of the same command is the reference. Synchronisation is by polling for a marker
file, never by sleeping for a guessed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

FLAGS = ["--data", "digits", "--limit", "600", "--epochs", "3", "--checkpoint-every", "5", "--deterministic", "--no-tensorboard"]

# The same training as `cnnkit train FLAGS`, with a callback that stops in epoch 2 at step 7
# (two steps after the checkpoint of step 5) and waits there to be killed.
PAUSED_RUN = r"""
import pathlib, signal, sys
from cnnkit.train.run import finish_run, make_trainer, start_run
from cnnkit.cli import build_parser
from cnnkit.settings import flag_values
from cnnkit.train.config import TrainConfig
from cnnkit.models.registry import create_model

out, name, marker = sys.argv[1:4]
args = build_parser().parse_args(["train", *sys.argv[4:], "--out", out, "--name", name])
overrides = {k: v for k, v in flag_values(args, TrainConfig).items() if k not in ("out", "name")}
quiet = lambda *a, **k: None
config, data, run_dir, device = start_run(None, log=quiet, out=out, name=name, **overrides)
model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
trainer = make_trainer(model, data, config, device, run_dir, live=False, log=quiet)

class PauseInEpoch2:
    def on_step(self, tr, step, steps, loss, accuracy):
        if tr.state.epoch == 1 and step == 7:
            pathlib.Path(marker).write_text("paused")
            while True:
                signal.pause()  # until SIGKILL

trainer.callbacks.append(PauseInEpoch2())
trainer.fit()
finish_run(trainer, log=quiet)
"""


def _wait_for(path: Path, proc: subprocess.Popen, what: str, limit: float = 300.0) -> None:
    """Poll for `path` while `proc` is alive (a dead process fails at once with its output)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what} exited with {proc.returncode} before pausing:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not pause within {limit:.0f} s")
        time.sleep(0.05)  # polling interval, not synchronisation


def _no_clock(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("train_seconds", "images_per_second")}


@pytest.fixture(scope="module")
def kill_and_resume(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    marker = out / "paused.marker"
    paused = subprocess.Popen([sys.executable, "-c", PAUSED_RUN, str(out), "killed", str(marker), *FLAGS],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reference = subprocess.Popen([sys.executable, "-m", "cnnkit", "train", *FLAGS, "--out", str(out),
                                  "--name", "reference"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, paused, "the paused run")
        paused.send_signal(signal.SIGKILL)
        paused.wait()
    finally:
        if paused.poll() is None:
            paused.kill()
    killed = out / "killed"
    after_kill = {p.relative_to(killed): p.read_bytes() for p in killed.rglob("*") if p.is_file()}
    ref_out, ref_err = reference.communicate()
    assert reference.returncode == 0, ref_err
    resumed = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--resume", str(killed)], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    return out, after_kill, paused.returncode, resumed.stdout


def test_sigkill_left_only_whole_checkpoints(kill_and_resume, tmp_path):
    _, after_kill, returncode, _ = kill_and_resume
    assert returncode == -signal.SIGKILL
    assert not [p for p in after_kill if p.name.endswith(".tmp")], "a temporary file was left behind"
    assert Path(".lock") in after_kill  # the killed run's lock file stays, stale: the resume was not refused
    checkpoint = after_kill[Path("last/checkpoint.pt")]
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(checkpoint)
    payload = torch.load(path, weights_only=True)  # loads: it is whole
    assert payload["state"]["epoch"] == 1 and payload["state"]["step_in_epoch"] == 5  # mid-epoch 2
    for name, data in after_kill.items():  # every bundle that exists loads too
        if name.suffix == ".safetensors":
            from safetensors.torch import load

            assert load(data)


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(kill_and_resume):
    out, _, _, stdout = kill_and_resume
    assert "continuing after epoch 1, step 5" in stdout
    killed, reference = out / "killed", out / "reference"
    assert (killed / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    assert len((killed / "metrics.csv").read_text().splitlines()) == 4
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    assert _no_clock(a) == _no_clock(b)
    from safetensors.torch import load_file

    wa, wb = load_file(killed / "last" / "model.safetensors"), load_file(reference / "last" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_two_identical_runs_give_identical_metrics(tmp_path):
    import cnnkit

    runs = [cnnkit.train(data="digits", epochs=2, limit=400, out=str(tmp_path), name=f"r{i}",
                         tensorboard=False, log=lambda *_: None) for i in range(2)]
    a, b = ((r.run_dir / "metrics.csv").read_bytes() for r in runs)
    assert a == b
    assert a.splitlines()[0] == b"epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy"
    assert (runs[0].run_dir / "timing.csv").read_text().startswith("epoch,seconds,images_per_second")
