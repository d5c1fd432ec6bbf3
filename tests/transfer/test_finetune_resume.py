"""`cnnkit finetune --resume`: a run that stops mid-stage continues from its checkpoint's stage and step."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.errors import ConfigError, Interrupted
from cnnkit.models.bundle import BundleMeta, save_bundle
from cnnkit.models.registry import create_model
from cnnkit.train.checkpoint import read_checkpoint
from cnnkit.transfer.finetune import finetune

OPTIONS = dict(strategy="gradual", epochs=4, limit=300, batch_size=32, checkpoint_every=3, deterministic=True,
               tensorboard=False, live=False, log=lambda *a: None)


class Crash(Exception):
    pass


class CrashAt:
    """Stops the run in its third epoch (run-wide numbering, across stages) at `step`: step 5 is two
    steps after that epoch's mid-epoch checkpoint; step 2 comes before it, so the last checkpoint is
    the end of the second epoch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, step, steps, loss, score) -> None:
        if trainer.state.epoch == 2 and step == self.step:
            raise Crash


@pytest.fixture(scope="module")
def donor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("donor")
    torch.manual_seed(5)
    model = create_model("simple-cnn", input_shape=(1, 8, 8), num_classes=3)
    save_bundle(model, folder, BundleMeta(model.cnnkit_arch, [1, 8, 8], list("abc"), [0.3], [0.3], {}))
    return folder


STRATEGIES = ("gradual", "fine-tune", "freeze", "full", "feature-extractor")


@pytest.fixture(scope="module")
def references(donor, tmp_path_factory):
    """One uninterrupted run per strategy, made when first asked for."""
    runs = {}

    def reference(strategy):
        if strategy not in runs:
            runs[strategy] = finetune(str(donor), "digits", out=str(tmp_path_factory.mktemp("ref")),
                                      name=f"reference-{strategy}", **{**OPTIONS, "strategy": strategy})
        return runs[strategy]

    return reference


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("crash_step, checkpoint", [
    (5, (2, 3)),  # a mid-epoch checkpoint of the third epoch
    (2, (2, 0)),  # the end-of-epoch checkpoint of the second epoch (for gradual, the end of stage 2)
])
def test_resumed_finetune_ends_like_an_uninterrupted_one(donor, references, tmp_path, strategy, crash_step,
                                                         checkpoint):
    reference = references(strategy)
    options = {**OPTIONS, "strategy": strategy}
    with pytest.raises(Crash):
        finetune(str(donor), "digits", out=str(tmp_path), name="crashed", callbacks=[CrashAt(crash_step)],
                 **options)
    crashed = tmp_path / "crashed"
    state = read_checkpoint(crashed / "last" / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"]) == checkpoint
    lines: list[str] = []
    resumed = finetune(None, resume=str(crashed), log=lines.append)
    epoch, step = checkpoint
    assert any(line.startswith("continuing stage") and line.endswith(f"after epoch {epoch}, step {step}")
               for line in lines), lines
    if strategy == "gradual":  # one epoch per stage: the third epoch is stage 3, the second stage 2
        assert "stage 1/4 (head only): done before the interruption" in lines
        assert any(line.startswith(f"continuing stage {3 if step else 2} ") for line in lines)
    assert (crashed / "metrics.csv").read_bytes() == (reference.run_dir / "metrics.csv").read_bytes()
    assert resumed.test_accuracy == reference.test_accuracy
    a = load_file(crashed / "last" / "model.safetensors")
    b = load_file(reference.run_dir / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if strategy == "gradual":
        assert "Step 5: fine-tune, stage 4" in (crashed / "report.md").read_text()
    with pytest.raises(ConfigError, match="has finished"):  # a finished run has nothing left to resume
        finetune(None, resume=str(crashed))


def test_resume_refuses_other_options_and_runs_that_are_not_finetunes(donor, tmp_path, capsys):
    assert main(["finetune", "--resume", str(tmp_path), "--strategy", "full"]) == 2
    assert "drop --strategy" in capsys.readouterr().err
    assert main(["finetune", "--resume", str(tmp_path), "--lr-ratio", "10"]) == 2  # a flag with a default too
    assert "drop --lr-ratio" in capsys.readouterr().err
    run = finetune(str(donor), "digits", out=str(tmp_path), name="logistic", strategy="feature-extractor",
                   classifier="logistic", limit=100, live=False, log=lambda *a: None)
    with pytest.raises(ConfigError, match="nothing to resume"):
        finetune(None, resume=str(run.run_dir))
    assert main(["finetune", "--data", "digits"]) == 2
    assert "--model" in capsys.readouterr().err


def test_one_tensorboard_log_numbers_epochs_across_stages(donor, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    options = {**OPTIONS, "tensorboard": True, "checkpoint_every": 0}
    run = finetune(str(donor), "digits", out=str(tmp_path), name="board", **options)
    files = list((run.run_dir / "tensorboard").glob("events.*"))
    assert len(files) == 1  # not one per stage
    events = EventAccumulator(str(files[0]))
    events.Reload()
    assert [e.step for e in events.Scalars("accuracy/val")] == [1, 2, 3, 4]  # 4 stages of one epoch each


class SignalAt:
    """Sends SIGTERM to this process after `step` of the third epoch (gradual: stage 3)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, step, steps, loss, score) -> None:
        if trainer.state.epoch == 2 and step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_stops_a_stage_with_a_checkpoint_and_names_finetunes_resume(donor, references, tmp_path):
    reference = references("gradual")
    with pytest.raises(Interrupted) as info:
        finetune(str(donor), "digits", out=str(tmp_path), name="signalled", callbacks=[SignalAt(2)], **OPTIONS)
    run = tmp_path / "signalled"
    assert info.value.exit_code == 143
    assert str(info.value) == ("stopped by SIGTERM once the step in progress was done; the last checkpoint "
                               f"(epoch 2, step 2) is intact in {run / 'last'}: continue with "
                               f"`cnnkit finetune --resume {run}`")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finetune(None, resume=str(run), log=lambda *a: None)
    assert (run / "metrics.csv").read_bytes() == (reference.run_dir / "metrics.csv").read_bytes()
    a = load_file(run / "last" / "model.safetensors")
    b = load_file(reference.run_dir / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
