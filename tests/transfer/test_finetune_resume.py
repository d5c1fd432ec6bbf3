"""`cnnkit finetune --resume`: a run that stops mid-stage continues from its checkpoint's stage and step."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.models.bundle import BundleMeta, save_bundle
from cnnkit.models.registry import create_model
from cnnkit.train.checkpoint import read_checkpoint
from cnnkit.transfer.finetune import finetune

OPTIONS = dict(strategy="gradual", epochs=4, limit=300, batch_size=32, checkpoint_every=3, deterministic=True,
               tensorboard=False, live=False, log=lambda *a: None)


class Crash(Exception):
    pass


class CrashInStage3:
    """Stops the run in the third stage's epoch at `step`: step 5 is two steps after that stage's
    mid-epoch checkpoint; step 2 comes before it, so the last checkpoint is stage 2's end of epoch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, step, steps, loss, accuracy) -> None:
        if trainer.state.stage == 2 and step == self.step:
            raise Crash


@pytest.fixture(scope="module")
def donor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("donor")
    torch.manual_seed(5)
    model = create_model("simple-cnn", input_shape=(1, 8, 8), num_classes=3)
    save_bundle(model, folder, BundleMeta(model.cnnkit_arch, [1, 8, 8], list("abc"), [0.3], [0.3], {}))
    return folder


@pytest.fixture(scope="module")
def reference(donor, tmp_path_factory):
    return finetune(str(donor), "digits", out=str(tmp_path_factory.mktemp("ref")), name="reference", **OPTIONS)


@pytest.mark.parametrize("crash_step, checkpoint, continuing", [
    (5, (2, 0, 3), "continuing stage 3 after its epoch 0, step 3"),  # a mid-epoch checkpoint of stage 3
    (2, (1, 1, 0), "continuing stage 2 after its epoch 1, step 0"),  # stage 2's last end-of-epoch checkpoint
])
def test_resumed_finetune_ends_like_an_uninterrupted_one(donor, reference, tmp_path, crash_step, checkpoint,
                                                         continuing):
    with pytest.raises(Crash):
        finetune(str(donor), "digits", out=str(tmp_path), name="crashed", callbacks=[CrashInStage3(crash_step)],
                 **OPTIONS)
    crashed = tmp_path / "crashed"
    state = read_checkpoint(crashed / "last" / "checkpoint.pt")["state"]
    assert (state["stage"], state["epoch"], state["step_in_epoch"]) == checkpoint
    lines: list[str] = []
    resumed = finetune(None, resume=str(crashed), log=lines.append)
    assert "stage 1/4 (head only): done before the interruption" in lines
    assert any(line.startswith(continuing) for line in lines)
    assert (crashed / "metrics.csv").read_bytes() == (reference.run_dir / "metrics.csv").read_bytes()
    assert resumed.test_accuracy == reference.test_accuracy
    a = load_file(crashed / "last" / "model.safetensors")
    b = load_file(reference.run_dir / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
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
