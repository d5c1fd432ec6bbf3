"""Seeded runs give the metrics.csv pinned in tests/golden/ (made before the Task redesign): the
trainer, the task and the data path compute exactly what they computed before."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from cnnkit.cli import main

GOLDEN = Path(__file__).parent.parent / "golden"
FP32 = ["--amp", "off", "--deterministic", "--no-tensorboard"]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _same_kind_of_cpu() -> bool:
    """The golden files were made on a CPU with AVX-512 BF16 (oneDNN's kernel path there)."""
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def check_against_golden(metrics: Path, golden: Path) -> None:
    if os.environ.get("CNNKIT_REGENERATE_GOLDEN"):
        shutil.copyfile(metrics, golden)
    ours, pinned = metrics.read_text(), golden.read_text()
    if _same_kind_of_cpu():
        assert ours == pinned
        return
    a, b = _rows(ours), _rows(pinned)
    assert [list(r) for r in a] == [list(r) for r in b] and len(a) == len(b)
    for row, expected in zip(a, b, strict=True):
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(float(value), abs=1e-4), (row["epoch"], key)


def test_seeded_digits_run_matches_the_pinned_metrics(tmp_path):
    assert main(["train", "--data", "digits", "--epochs", "4", *FP32, "--out", str(tmp_path), "--name", "d"]) == 0
    check_against_golden(tmp_path / "d" / "metrics.csv", GOLDEN / "train-digits-4-epochs.csv")
