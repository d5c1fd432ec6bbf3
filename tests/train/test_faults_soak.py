"""The kill -9 soak, short: three SIGKILLs of a small digits run (one aimed at a checkpoint's write), each
followed by `--resume`, and the run compared with one never killed (benchmarks/faults.py; its full
version, 20 kills per scenario, is measured in docs/results/faults.md).

Marked `soak` and left out of the default run (pyproject.toml's addopts): it starts 5-8 processes, 30-40 s
on 2 cores, where the rest of the fault tests take about 30 s together. `make soak` or `pytest -m soak`
runs it.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "faults.py"
COMMAND = ["train", "--data", "digits", "--limit", "300", "--epochs", "2", "--checkpoint-every", "1",
           "--deterministic", "--no-tensorboard"]


@pytest.mark.soak
def test_three_kills_leave_no_half_written_file_and_change_no_result(tmp_path):
    spec = importlib.util.spec_from_file_location("faults_benchmark", BENCHMARK)
    faults = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = faults  # its dataclasses look their module up there
    spec.loader.exec_module(faults)
    s = faults.soak("digits", COMMAND, tmp_path, kills=3, rng=random.Random(0), log=lambda *a: None)
    assert s.kills == 3 and s.kills_aimed["checkpoint.pt"] + s.aims_missed["checkpoint.pt"] == 1
    assert s.mismatches == [] and s.half_written == [] and s.leftovers == [] and s.bad_latest == 0, s.log
