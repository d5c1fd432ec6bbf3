"""`cnnkit finetune --model runs/<a Fashion-MNIST run> --data digits --strategy S` for every S, and the models verb."""

from __future__ import annotations

import json
import re

import pytest
import torch

import cnnkit
from cnnkit.cli import main


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory, fashion_available):
    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNKIT_OFFLINE", "1")
        mp.setenv("CNNKIT_HOME", str(out / "home"))
        # A small spec keeps the run cheap; any Fashion-MNIST run transfers the same way.
        run = cnnkit.train(data="fashion-mnist", model="conv8-3,bn,relu,maxpool2,conv16-3,bn,relu,maxpool2,dense32,relu",
                           limit=256, epochs=1, batch_size=64, val_fraction=0.02, out=str(out), name="fashion",
                           log=lambda *a: None, live=False)
    return run.run_dir


@pytest.mark.parametrize("strategy", ["feature-extractor", "freeze", "full", "gradual", "fine-tune"])
def test_finetune_a_fashion_run_on_digits(strategy, fashion_run, tmp_path, capsys):
    rc = main(["finetune", "--model", str(fashion_run), "--data", "digits", "--strategy", strategy,
               "--epochs", "2", "--limit", "120", "--batch-size", "32", "--out", str(tmp_path), "--name", "t"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "step 1, load: the cnnkit bundle" in out and "resize 8x8 -> 28x28" in out
    report = (tmp_path / "t" / "report.md").read_text()
    assert "Step 2: freeze layers" in report and "| head |" in report
    model = cnnkit.load(tmp_path / "t")
    assert model.cnnkit_meta.input_shape == [1, 8, 8] and model.cnnkit_meta.class_names[0] == "0"
    with torch.no_grad():
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_finetune_logistic_and_head_options(fashion_run, tmp_path, capsys):
    rc = main(["finetune", "--model", str(fashion_run), "--data", "digits", "--strategy", "feature-extractor",
               "--classifier", "logistic", "--limit", "200", "--out", str(tmp_path), "--name", "lr"])
    assert rc == 0
    assert "logistic on frozen features" in capsys.readouterr().out
    rc = main(["finetune", "--model", str(fashion_run), "--data", "digits", "--head", "dense32,relu,dropout0.2",
               "--strategy", "freeze", "--freeze-until", "conv1..maxpool1", "--epochs", "1", "--limit", "64",
               "--out", str(tmp_path), "--name", "head"])
    assert rc == 0
    model = cnnkit.load(tmp_path / "head")
    assert model.head.spec == "dense32,relu,dropout0.2,dense10"


def test_finetune_user_errors_exit_2(fashion_run, capsys, tmp_path):
    assert main(["finetune", "--model", "runs/nothing-here", "--data", "digits", "--out", str(tmp_path)]) == 2
    assert "give a run directory or bundle" in capsys.readouterr().err
    assert main(["finetune", "--model", str(fashion_run), "--data", "digits", "--strategy", "freeze",
                 "--freeze-until", "conv9", "--limit", "32", "--out", str(tmp_path)]) == 2
    assert "block group" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no run directory is left behind by a run that never trained
    assert main(["finetune", "--model", str(fashion_run), "--data", "digits", "--classifier", "svm",
                 "--out", str(tmp_path)]) == 2
    assert "feature-extractor" in capsys.readouterr().err


def test_models_verb_filters(capsys):
    assert main(["models", "tv:resnet1*", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "tv:resnet18" in out and "IMAGENET1K_V1" in out and "simple-cnn" not in out
    assert main(["models", "--source", "builtin"]) == 0
    assert "simple-cnn" in capsys.readouterr().out
    assert main(["models", "nothing-like-this*", "--source", "tv"]) == 2


def test_summary_shows_trainable_and_frozen_for_the_strategy(fashion_run, capsys):
    assert main(["finetune", "--model", str(fashion_run), "--data", "digits", "--strategy", "freeze",
                 "--freeze-until", "1", "--summary"]) == 0
    out = capsys.readouterr().out
    # conv1 (8 filters of 3x3 + 8 biases) and bn1 (8 + 8) make the first group: 96 parameters, all frozen.
    assert "| conv1..maxpool1 | 96 | frozen | - | eval mode |" in out
    assert re.search(r"Frozen params:\s+96\n", out) and "backbone.layers.conv1" in out


def test_summary_plans_the_run_that_would_happen(fashion_run, tmp_path, capsys):
    # No --epochs / --lr: both come from the digits recipe (20 epochs, lr 3e-3), for the plan as for the run.
    flags = ["finetune", "--model", str(fashion_run), "--data", "digits", "--strategy", "fine-tune",
             "--limit", "120", "--batch-size", "32"]
    assert main([*flags, "--summary"]) == 0
    plan = capsys.readouterr().out
    planned = re.findall(r"== stage \d+/\d+: (.+), (\d+) epoch\(s\) ==", plan)
    rates = re.findall(r"\| trained \| ([0-9.e+-]+) \|", plan)
    assert main([*flags, "--out", str(tmp_path), "--name", "run"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    report = (tmp_path / "run" / "report.md").read_text()
    ran = re.findall(r"Stage \d+/\d+ \((.+)\), (\d+) epoch\(s\)", report)
    assert planned == ran and sum(int(e) for _, e in planned) == summary["epochs"] == 20
    assert rates and re.findall(r"\| trained \| ([0-9.e+-]+) \|", report) == rates
