"""`cnnkit train` under torchrun: 2 CPU processes with gloo on a small Fashion-MNIST subset.

Each test starts real processes through PyTorch's launcher (`--standalone` picks a free
port), so these are the slowest tests of the distributed lane (~15 s per launch on 2 cores).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnkit
from cnnkit.models.bundle import load_bundle
from cnnkit.train.distributed import HASH_ENV, KILL_ENV

# No BatchNorm, no dropout, no augmentation: then 2 processes x 50 images and 1 process x 100
# images compute the same gradient (DDP averages the two halves), up to float summation order.
SPEC = "conv8-3-same,relu,maxpool2,conv16-3-same,relu,maxpool2,flatten"
COMMON = ["--data", "fashion-mnist", "--limit", "1000", "--epochs", "2", "--augment", "none",
          "--amp", "off", "--device", "cpu", "--seed", "3", "--lr", "0.003"]
LAUNCH_TIMEOUT_S = 240  # a hang fails the test instead of blocking the suite


def _run(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(argv, cwd=tmp_path, env=full_env, capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S)


def _torchrun(nproc: int, train_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "cnnkit", "train", *train_args]


def _metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_two_processes_match_one_with_the_same_global_batch(fashion_available, tmp_path):
    hashes = tmp_path / "hashes"
    proc = _run(_torchrun(2, [*COMMON, "--model", SPEC, "--batch-size", "50", "--out", "runs", "--name", "ddp"]),
                tmp_path, **{HASH_ENV: str(hashes)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # The run directory is written once, by rank 0: one folder (plus the latest link), one metrics file.
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["ddp", "latest"]
    ddp = runs / "ddp"
    assert len(list(ddp.rglob("metrics.csv"))) == 1
    assert proc.stdout.count("test accuracy") == 1  # only rank 0 prints
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["global_batch_size"] == 100

    # Every rank ends with bit-identical weights, and they are the ones in the last/ bundle.
    digests = {json.loads((hashes / f"rank{r}.json").read_text())["sha256"] for r in (0, 1)}
    assert len(digests) == 1

    # One process with the same global batch (100) trains the same model, up to rounding.
    single = cnnkit.train(data="fashion-mnist", limit=1000, epochs=2, augment="none", amp="off", device="cpu",
                          seed=3, lr=0.003, model=SPEC, batch_size=100, out=str(tmp_path / "single"),
                          log=lambda _: None, live=False)
    a, _ = load_bundle(ddp / "last")
    b, _ = load_bundle(single.run_dir / "last")
    worst = max((pa - pb).abs().max().item() for pa, pb in zip(a.state_dict().values(), b.state_dict().values(),
                                                                strict=True))
    assert worst < 1e-4, worst  # stated tolerance: 1e-4 on any weight after 36 AdamW steps
    for row_ddp, row_one in zip(_metrics(ddp), _metrics(single.run_dir), strict=True):
        assert float(row_ddp["train_loss"]) == pytest.approx(float(row_one["train_loss"]), abs=1e-4)
        assert float(row_ddp["train_accuracy"]) == pytest.approx(float(row_one["train_accuracy"]), abs=1e-3)
        assert float(row_ddp["val_accuracy"]) == pytest.approx(float(row_one["val_accuracy"]), abs=1e-3)
    assert summary["test_accuracy"] == pytest.approx(single.summary["test_accuracy"], abs=1e-3)
    assert summary["train_images"] == single.summary["train_images"]


def test_a_killed_rank_ends_the_job_and_resume_continues_on_more_processes(tmp_path):
    # digits (embedded, loads at once) and simple-cnn, which has BatchNorm and dropout: after a resume
    # on a different number of processes every rank must still end with the same weights.
    args = ["--data", "digits", "--epochs", "2", "--batch-size", "50", "--checkpoint-every", "3", "--seed", "1",
            "--amp", "off", "--device", "cpu", "--name", "k"]
    killed = _run([sys.executable, "-m", "cnnkit", "train", "--nproc", "2", *args], tmp_path,
                  **{KILL_ENV: "1:2:5"})  # rank 1 dies after step 5 of epoch 2 (13 steps per epoch)
    assert killed.returncode == 2, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert "training processes stopped" in killed.stderr and "--resume runs/k`" in killed.stderr
    assert "SIGKILL" in killed.stderr  # torchrun names the rank that died and how
    run = tmp_path / "runs" / "k"
    state = torch.load(run / "last" / "checkpoint.pt", weights_only=True)["state"]
    # The last complete checkpoint: epoch 1 done, 3 steps of epoch 2, written by 2 processes.
    assert (state["epoch"], state["step_in_epoch"], state["world_size"]) == (1, 3, 2)
    assert state["partial"]["seen"] == 3 * 50 * 2  # global count, not rank 0's

    # Resume on 3 processes: the 300 images trained so far are steps 0-1 of the 3-rank dealing.
    hashes = tmp_path / "hashes"
    resumed = _run(_torchrun(3, ["--resume", str(run)]), tmp_path, **{HASH_ENV: str(hashes)})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "continuing after epoch 1, step 2" in resumed.stdout
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["k", "latest"]
    assert [int(r["epoch"]) for r in _metrics(run)] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["processes"] == 3
    assert summary["test_accuracy"] > 0.5  # it learned (10 classes)
    digests = {json.loads((hashes / f"rank{r}.json").read_text())["sha256"] for r in (0, 1, 2)}
    assert len(digests) == 1
