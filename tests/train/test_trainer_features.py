"""The loop's features on small real runs (digits) and units: EMA, early stopping, TTA, NaN guard,
schedules, weight decay groups, recipes, atomic checkpoints, lr-find, TensorBoard, report plots."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import cnnkit
from cnnkit.cli import main
from cnnkit.errors import ConfigError, TrainingError
from cnnkit.models.registry import create_model
from cnnkit.train import checkpoint as ckpt
from cnnkit.train.config import TrainConfig
from cnnkit.train.ema import ModelEma
from cnnkit.train.lr_find import suggest
from cnnkit.train.optim import param_groups, schedule_factor
from cnnkit.train.recipes import RECIPES, apply_recipe, recipe_for
from cnnkit.train.run import finish_run, make_trainer, start_run
from cnnkit.train.trainer import TrainState, amp_dtype

QUIET = dict(log=lambda *_: None)


def _trainer(tmp_path, **overrides):
    config, data, run_dir, device = start_run(None, data="digits", out=str(tmp_path), tensorboard=False,
                                              **QUIET, **overrides)
    model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    return make_trainer(model, data, config, device, run_dir, live=False, **QUIET)


# ------------------------------------------------------------------ whole runs


def test_full_run_writes_tensorboard_plots_and_report(tmp_path):
    run = cnnkit.train(data="digits", epochs=2, limit=300, out=str(tmp_path), ema=0.9, **QUIET)
    d = run.run_dir
    assert list((d / "tensorboard").glob("events.out.tfevents.*"))
    for png in ("curves.png", "confusion_matrix.png", "confident_mistakes.png"):
        assert (d / "plots" / png).stat().st_size > 1000, png
    report = (d / "report.md").read_text()
    assert "plots/confident_mistakes.png" in report and "plots/curves.png" in report
    summary = json.loads((d / "summary.json").read_text())
    assert summary["best_epoch"] in (1, 2) and summary["recipe"] == "default"
    assert 0.0 <= summary["test_accuracy"] <= 1.0


def test_early_stopping_stops_after_patience_epochs_without_progress(tmp_path):
    # lr so small that nothing improves after the first epoch's validation
    run = cnnkit.train(data="digits", epochs=6, limit=200, lr=1e-9, patience=2, out=str(tmp_path),
                       tensorboard=False, **QUIET)
    assert run.summary["stopped_early"] is True
    assert run.summary["epochs"] == run.summary["best_epoch"] + 2 < 6


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, epochs=3, limit=300)

    class Poison:  # a weight turns NaN in epoch 2: the next loss is NaN
        def on_step(self, tr, step, steps, loss, accuracy):
            if tr.state.epoch == 1 and step == 2:
                with torch.no_grad():
                    next(tr.model.parameters()).fill_(float("nan"))

    trainer.callbacks.append(Poison())
    with pytest.raises(TrainingError, match=r"loss became nan in epoch 2.*epoch 1, step 0.*--lr"):
        trainer.fit()
    payload = torch.load(trainer.checkpoint_path, weights_only=True)
    assert payload["state"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())


def test_flip_tta_averages_the_probabilities_of_image_and_mirror(tmp_path):
    trainer = _trainer(tmp_path, epochs=1, limit=100)
    loader = trainer.eval_loader(trainer.data.test)
    model = trainer.eval_model.eval()
    logits, _ = trainer.predict(loader, tta=True)
    x = torch.cat([x for x, _ in loader])
    with torch.no_grad(), torch.autocast("cpu", dtype=trainer.amp, enabled=trainer.amp is not None):
        expected = ((model(x).float().softmax(1) + model(x.flip(3)).float().softmax(1)) / 2).log()
    torch.testing.assert_close(logits, expected)


def test_grad_clip_and_sgd_and_cosine_run(tmp_path):
    run = cnnkit.train(data="digits", epochs=2, limit=200, grad_clip=0.5, optimizer="sgd", lr=0.05,
                       schedule="cosine", amp="off", channels_last=False, out=str(tmp_path),
                       tensorboard=False, **QUIET)
    assert run.summary["amp"] == "off" and run.summary["channels_last"] is False
    assert math.isfinite(run.summary["test_loss"])


def test_lr_find_cli_writes_plot_and_suggests_a_rate_in_range(tmp_path, capsys):
    out = tmp_path / "lrf"
    assert main(["lr-find", "--data", "digits", "--steps", "40", "--start-lr", "1e-5", "--end-lr", "1",
                 "--out", str(out)]) == 0
    result = json.loads((out / "lr_find.json").read_text())
    assert 1e-5 <= result["suggestion"] <= 1 and (out / "lr_find.png").stat().st_size > 1000
    assert "suggested --lr" in capsys.readouterr().out


# ------------------------------------------------------------------ units


def test_suggest_picks_the_steepest_descent_before_the_minimum():
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]
    # flat, then a steep fall centred at 1e-3, minimum near 1e-2, then a blow-up
    loss = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3) * 4)) + (max(0, math.log10(lr) + 2) ** 2) * 3
            for lr in lrs]
    steepest, minimum = suggest(lrs, loss)
    assert 5e-4 < steepest < 2e-3 and 3e-3 < minimum < 3e-2
    with pytest.raises(TrainingError):
        suggest(lrs[:5], loss[:5])


def test_schedules_warm_up_and_anneal():
    total = 100
    assert schedule_factor(0, total, "onecycle", 0.2) == pytest.approx(0.04)
    assert schedule_factor(20, total, "onecycle", 0.2) == pytest.approx(1.0)
    assert schedule_factor(100, total, "onecycle", 0.2) == pytest.approx(1e-4)
    assert schedule_factor(0, total, "cosine", 0.1) == 0.0
    assert schedule_factor(100, total, "cosine", 0.1) == pytest.approx(0.0)
    assert [schedule_factor(s, total, "step", 0) for s in (0, 60, 80)] == [1.0, 0.1, 0.01]


def test_weight_decay_spares_norms_and_biases():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sorted(p.ndim for p in decay["params"]) == [2, 4]
    assert all(p.ndim == 1 for p in no_decay["params"]) and len(no_decay["params"]) == 4


def test_ema_follows_the_weights_and_copies_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, decay=0.5)
    start = ema.module[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(3.0)
    ema.update(model)  # first update: decay min(0.5, 2/11)
    d = 2 / 11
    torch.testing.assert_close(ema.module[0].weight, d * start + (1 - d) * model[0].weight)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    restored = ModelEma(model, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 1 and torch.equal(restored.module[0].weight, ema.module[0].weight)


def test_checkpoint_write_is_atomic_when_saving_fails(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = tmp_path / "last" / "checkpoint.pt"
    ckpt.save_checkpoint(path, model, opt, sched, scaler, TrainState(epoch=1))
    good = path.read_bytes()

    def half_write(obj, f):  # f: the temporary file, open (checkpoint.save_checkpoint says why)
        f.write(b"PK\x03\x04 half")
        raise OSError("the disk went away")

    monkeypatch.setattr(ckpt.torch, "save", half_write)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(path, model, opt, sched, scaler, TrainState(epoch=2))
    assert path.read_bytes() == good and list(path.parent.iterdir()) == [path]
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path, model, opt, sched, scaler).epoch == 1
    path.write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="damaged"):
        ckpt.load_checkpoint(path, model, opt, sched, scaler)


def test_recipes_fill_only_what_the_user_left_open():
    config = apply_recipe(TrainConfig(data="fashion-mnist", epochs=2), "fashion-mnist")
    assert config.epochs == 2 and config.model == RECIPES["fashion-mnist"]["default"].model
    best = apply_recipe(TrainConfig(data="fashion-mnist", recipe="best"), "fashion-mnist")
    assert best.epochs == RECIPES["fashion-mnist"]["best"].epochs and best.tta is True
    # no recipe of its own: chosen from the image size
    assert recipe_for("some-folder", input_shape=(3, 32, 32)).model.startswith("conv64")
    assert recipe_for("some-folder", input_shape=(3, 8, 8)).model == "simple-cnn"
    assert recipe_for("digits", "best") == recipe_for("digits")  # falls back to default
    for levels in RECIPES.values():  # every recipe names only real config fields
        for level in levels.values():
            TrainConfig(**level.named())


def test_amp_auto_and_config_errors():
    cpu = torch.device("cpu")
    assert amp_dtype(TrainConfig(amp="off"), cpu) is None
    assert amp_dtype(TrainConfig(amp="bf16"), cpu) == torch.bfloat16
    assert amp_dtype(TrainConfig(amp="fp16"), cpu) == torch.float16
    for bad in (dict(ema=1.5), dict(patience=-1), dict(recipe="huge"), dict(grad_clip=0.0)):
        with pytest.raises(ConfigError):
            TrainConfig(**bad).validate()


def test_cli_train_rejects_a_bad_flag_value_with_exit_2(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--ema", "2", "--out", str(tmp_path)]) == 2
    assert "--ema" in capsys.readouterr().err


def test_finish_run_with_tta_reports_both_accuracies(tmp_path):
    trainer = _trainer(tmp_path, epochs=1, limit=200, tta=True, augment="crop-flip")
    trainer.fit()
    summary = finish_run(trainer, **QUIET).summary
    assert summary["tta"] is True and 0 <= summary["test_accuracy_no_tta"] <= 1
