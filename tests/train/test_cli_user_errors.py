"""Mistakes in a command line or a config file end in one clear line and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from cnnkit.cli import main


@pytest.mark.parametrize("content, args, message", [
    (None, ["--config", "missing.yaml"], "missing.yaml cannot be read as YAML"),
    ("5\n", ["--config", "c.yaml"], "must be a mapping of keys to values"),
    ("epochs: ten\n", ["--config", "c.yaml"], "wrong type"),
    ("epochs: [1\n", ["--config", "c.yaml"], "c.yaml cannot be read as YAML"),
    ("epoch: 3\n", ["--config", "c.yaml"], "did you mean 'epochs'"),
    (None, ["--nproc", "0"], "--nproc must be at least 1"),
    (None, ["--resume", "runs/x", "--config", "c.yaml"], "drop --config"),
    ("", ["--out", "c.yaml", "--limit", "50", "--epochs", "1"], "give --out a folder you can write to"),
])
def test_train_user_errors(tmp_path, monkeypatch, capsys, content, args, message):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "c.yaml").write_text(content)
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_lr_find_needs_steps(capsys):
    assert main(["lr-find", "--steps", "0", "--limit", "50"]) == 2
    assert "at least 2 steps" in capsys.readouterr().err
