"""Each strategy freezes exactly what it says, at every stage: requires_grad, BatchNorm mode and learning rates."""

from __future__ import annotations

import pytest
import torch
from helpers_transfer import tiny_splits

from cnnkit.errors import ConfigError
from cnnkit.models.bundle import BundleMeta, save_bundle
from cnnkit.models.registry import create_model
from cnnkit.transfer.finetune import finetune
from cnnkit.transfer.strategies import discriminative, plan, select_classes

LR = 1e-2


class Probe:
    """At every training step: which groups train, the mode of each BatchNorm, each group's learning rate."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_step(self, trainer, step, steps, loss, accuracy) -> None:
        model = trainer.model
        params = dict(model.named_parameters())
        record = {"stage": trainer.stage_name, "grad": {}, "bn": {}, "lr": {}}
        for group, names in model.groups:
            flags = {params[n].requires_grad for n in names}
            assert len(flags) == 1, f"group {group} is partly frozen"
            record["grad"][group] = flags.pop()
            bns = [m for n, m in model.named_modules()
                   if isinstance(m, torch.nn.BatchNorm2d) and f"{n}.weight" in names]
            record["bn"][group] = {m.training for m in bns}
        for g in trainer.optimizer.param_groups:
            record["lr"].setdefault(g["block_group"], set()).add(g["initial_lr"])
        record["in_optimizer"] = sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"])
        record["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.seen.append(record)


@pytest.fixture(scope="module")
def donor(tmp_path_factory):
    """A 'pretrained' cnnkit bundle with BatchNorm: simple-cnn on 1x16x16, 4 classes."""
    folder = tmp_path_factory.mktemp("donor")
    torch.manual_seed(3)
    model = create_model("simple-cnn", input_shape=(1, 16, 16), num_classes=4)
    save_bundle(model, folder, BundleMeta(model.cnnkit_arch, [1, 16, 16], list("abcd"), [0.3], [0.3],
                                          {"dataset": "tiny"}))
    return folder


def run(donor, tmp_path, strategy, epochs, **kw):
    probe = Probe()
    result = finetune(str(donor), tiny_splits(16, shape=(1, 16, 16)), strategy=strategy, epochs=epochs,
                      batch_size=8, lr=LR, out=str(tmp_path), callbacks=[probe], log=lambda *a: None,
                      live=False, **kw)
    stages: dict[str, dict] = {}
    for record in probe.seen:  # every step of a stage must look the same
        first = stages.setdefault(record["stage"], record)
        assert record == first
        assert record["in_optimizer"] == record["trainable"]  # only trainable tensors reach the optimizer
    return list(stages.values()), result


GROUPS = ["conv1..maxpool1", "conv2..maxpool2", "dense1", "head"]


def expect(record, trained: list[str], lrs: dict[str, float]) -> None:
    assert record["grad"] == {g: g in trained for g in GROUPS}
    # BatchNorm layers of frozen groups stay in eval mode while the model trains; trained ones update.
    assert record["bn"]["conv1..maxpool1"] == {"conv1..maxpool1" in trained}
    assert record["bn"]["conv2..maxpool2"] == {"conv2..maxpool2" in trained}
    assert {g: v.pop() for g, v in record["lr"].items()} == pytest.approx(lrs)


def test_feature_extractor_trains_only_the_head_and_keeps_the_backbone(donor, tmp_path):
    (stage,), result = run(donor, tmp_path, "feature-extractor", 2)
    expect(stage, ["head"], {"head": LR})
    from cnnkit.api import load

    before, after = load(donor), load(result.run_dir / "last")
    for name, tensor in before.state_dict().items():
        if not name.startswith("layers.dense2"):  # the old classifier was replaced
            assert torch.equal(tensor, after.backbone.state_dict()[name]), name  # running stats too


def test_freeze_until_n_and_by_name(donor, tmp_path):
    (stage,), _ = run(donor, tmp_path, "freeze", 1, freeze_until="1")
    expect(stage, GROUPS[1:], {g: LR for g in GROUPS[1:]})
    (stage,), _ = run(donor, tmp_path, "freeze", 1, freeze_until="conv2..maxpool2")
    expect(stage, GROUPS[2:], {g: LR for g in GROUPS[2:]})


def test_full_trains_everything_at_one_rate(donor, tmp_path):
    (stage,), _ = run(donor, tmp_path, "full", 1)
    expect(stage, GROUPS, {g: LR for g in GROUPS})


def test_gradual_unfreezes_one_group_per_stage_with_discriminative_rates(donor, tmp_path):
    stages, result = run(donor, tmp_path, "gradual", 4)
    rates = discriminative(GROUPS, LR, 100.0)
    assert rates["conv1..maxpool1"] == pytest.approx(LR / 100) and rates["head"] == pytest.approx(LR)
    assert len(stages) == 4 and result.summary["epochs"] == 4
    for k, stage in enumerate(stages, start=1):
        trained = GROUPS[-k:]
        expect(stage, trained, {g: rates[g] for g in trained})


def test_fine_tune_is_one_frozen_epoch_then_all_with_discriminative_rates(donor, tmp_path):
    stages, result = run(donor, tmp_path, "fine-tune", 3)
    assert len(stages) == 2
    expect(stages[0], ["head"], {"head": LR})
    expect(stages[1], GROUPS, discriminative(GROUPS, LR / 2, 100.0))
    report = (result.run_dir / "report.md").read_text()
    for step in ("Step 1: load", "Step 2: freeze", "Step 3: add", "Step 4: train", "Step 5: fine-tune"):
        assert step in report
    assert report.index("Step 1") < report.index("Step 2") < report.index("Step 3") < report.index("Step 5")


def test_logistic_classifier_on_cached_embeddings(donor, tmp_path, offline_cache):
    result = finetune(str(donor), tiny_splits(16, shape=(1, 16, 16)), strategy="feature-extractor",
                      classifier="logistic", out=str(tmp_path), log=lambda *a: None, live=False)
    assert result.summary["strategy"] == "feature-extractor (logistic)"
    assert result.test_accuracy >= 0.75  # the corner squares are linearly separable in these features
    cached = list((offline_cache / "embeddings").glob("*.safetensors"))
    assert len(cached) == 1
    lines = []
    finetune(str(donor), tiny_splits(16, shape=(1, 16, 16)), strategy="feature-extractor", classifier="svm",
             out=str(tmp_path), log=lines.append, live=False)
    assert any("reusing the cached" in line for line in lines)


def test_plan_errors_and_class_selection():
    with pytest.raises(ConfigError, match="fine-tune"):
        plan("fine-tuning", GROUPS, epochs=2, lr=1.0)
    with pytest.raises(ConfigError, match="did you mean 'dense1'"):
        plan("freeze", GROUPS, epochs=1, lr=1.0, freeze_until="dense2")
    data = tiny_splits(40, classes=4)
    few = select_classes(data, [2, 3], per_class=3, seed=0)
    assert few.class_names == ["c2", "c3"] and len(few.train) == 6
    assert sorted(few.train.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(few.test) == int(((data.test.labels == 2) | (data.test.labels == 3)).sum())
