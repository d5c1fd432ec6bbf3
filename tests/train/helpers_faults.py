"""What the fault tests (signals, a full disk, out of memory) share: one small run and how to compare runs.

FLAGS is a run of 300 digits at batch 64, 5 steps per epoch, 2 epochs, checkpointed at step 3 and
at every epoch's end; `reference_run` is that run never interrupted, made once per session. A run
stopped by a fault and resumed must end byte-identical to it. (No conftest.py here: a second
module named `conftest` would hide tests/conftest.py from `from conftest import unavailable`.)
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from safetensors.torch import load_file

from cnnkit.cli import main

FLAGS = ["--data", "digits", "--limit", "300", "--epochs", "2", "--checkpoint-every", "3", "--deterministic",
         "--no-tensorboard"]

# `cnnkit.train` is also the name of the verb (cnnkit/__init__.py), so `import cnnkit.train.run as m`
# finds the function; importlib reaches the modules.
run_module = importlib.import_module("cnnkit.train.run")
trainer_module = importlib.import_module("cnnkit.train.trainer")


_made: list[Path] = []  # the session's reference run, once made


def reference_run(tmp_path_factory) -> Path:
    """`cnnkit train FLAGS` never interrupted (made in this process: the same results as in a new one)."""
    if not _made:
        out = tmp_path_factory.mktemp("reference")
        assert main(["train", *FLAGS, "--out", str(out), "--name", "reference"]) == 0
        _made.append(out / "reference")
    return _made[0]


def temporaries(run: Path) -> list[Path]:
    """Temporary files (fileio.atomic_path's `.NAME.XXXXXXXX.tmp`) anywhere in the run directory."""
    return [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def assert_same_run(a: Path, b: Path) -> None:
    """Byte-identical metrics.csv and identical best/ and last/ weights."""
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    for folder in ("best", "last"):
        wa, wb = load_file(a / folder / "model.safetensors"), load_file(b / folder / "model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def add_callback(monkeypatch, callback) -> None:
    """Every Trainer that `cnnkit train` makes from now on (in this process) also calls `callback`."""
    make_trainer = run_module.make_trainer

    def with_callback(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.append(callback)
        return trainer

    monkeypatch.setattr(run_module, "make_trainer", with_callback)
