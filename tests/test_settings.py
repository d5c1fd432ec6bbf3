"""Settings declared once (cnnkit/settings.py): the dataclass field is the flag, its help and its check."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from cnnkit.cli import FINETUNE_TRAINING, LR_FIND_TRAINING, build_parser
from cnnkit.errors import ConfigError
from cnnkit.settings import flag_values, setting
from cnnkit.train import config as config_module
from cnnkit.train.config import LRFindOptions, TrainConfig
from cnnkit.transfer import options as options_module
from cnnkit.transfer.options import TransferOptions


def _verb(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[verb]


def _help(parser: argparse.ArgumentParser, option: str) -> str:
    (action,) = [a for a in parser._actions if option in a.option_strings]
    return action.help


@dataclass
class MoreTraining(TrainConfig):
    mixup: float | None = setting(None, "mixup alpha (0 = off)", at_least=0)


@dataclass
class MoreTransfer(TransferOptions):
    head_dropout: float | None = setting(None, "dropout before the new head", at_least=0, below=1)


@dataclass
class MoreLRFind(LRFindOptions):
    smoothing: float = setting(0.98, "loss smoothing")


def test_a_new_field_is_a_flag_of_every_verb_that_takes_its_class(monkeypatch):
    monkeypatch.setattr(config_module, "TrainConfig", MoreTraining)
    monkeypatch.setattr(options_module, "TransferOptions", MoreTransfer)
    monkeypatch.setattr(config_module, "LRFindOptions", MoreLRFind)
    parser = build_parser()
    args = parser.parse_args(["train", "--mixup", "0.2", "--epochs", "3"])
    assert args.mixup == 0.2 and flag_values(args, MoreTraining)["mixup"] == 0.2
    assert _help(_verb(parser, "train"), "--mixup") == "mixup alpha (0 = off)"
    assert parser.parse_args(["train"]).mixup is None  # not given: the config file / recipe decides
    args = parser.parse_args(["finetune", "--model", "tv:resnet18", "--head-dropout", "0.3"])
    assert args.head_dropout == 0.3
    args = parser.parse_args(["lr-find", "--smoothing", "0.9", "--steps", "50"])
    assert args.smoothing == 0.9 and args.steps == 50
    assert "(default: 0.98)" in _help(_verb(parser, "lr-find"), "--smoothing")
    # the check comes from the same declaration
    with pytest.raises(ConfigError, match="--mixup must be >= 0"):
        MoreTraining(mixup=-1.0).validate()
    monkeypatch.undo()
    assert not hasattr(build_parser().parse_args(["train"]), "mixup")


def test_each_shared_setting_has_one_help_text():
    parser = build_parser()
    train, finetune, lr_find = (_verb(parser, v) for v in ("train", "finetune", "lr-find"))
    limit = _help(train, "--limit")
    assert limit == "N training images only, stratified by class"
    assert _help(finetune, "--limit") == _help(lr_find, "--limit") == limit
    for name in set(FINETUNE_TRAINING) - {"lr"}:  # finetune's --lr names the head's rate on purpose
        flag = "--" + name.replace("_", "-")
        assert _help(finetune, flag) == _help(train, flag), flag
    for name in LR_FIND_TRAINING:
        flag = "--" + name.replace("_", "-")
        assert _help(lr_find, flag) == _help(train, flag), flag


def test_flags_keep_their_names_and_forms():
    parser = build_parser()
    args = parser.parse_args(["train", "--no-tta", "--no-channels-last", "--no-tensorboard", "--strict",
                              "--compile", "--ema", "0.99", "--batch-size", "16", "--optimizer", "sgd"])
    assert (args.tta, args.channels_last, args.tensorboard) == (False, False, False)
    assert args.strict is True and args.compile is True and args.ema == 0.99 and args.batch_size == 16
    unset = parser.parse_args(["train"])
    assert all(v is None for v in flag_values(unset, TrainConfig).values())
    assert unset.config is None and unset.resume is None and unset.nproc is None
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--optimizer", "lion"])
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--no-strict"])  # False by default: a bare flag, as before
    ft = parser.parse_args(["finetune", "--model", "m", "--freeze-epochs", "2", "--lr-ratio", "10"])
    assert (ft.freeze_epochs, ft.lr_ratio, ft.strategy) == (2, 10.0, None)


def test_validate_reads_choices_and_ranges_from_the_fields():
    with pytest.raises(ConfigError, match="^--optimizer must be adamw or sgd$"):
        TrainConfig(optimizer="lion").validate()

    @dataclass
    class WithLion(TrainConfig):
        optimizer: str = setting("adamw", "optimizer", choices=("adamw", "sgd", "lion"))

    WithLion(optimizer="lion").validate()  # the choices are the field's, not a list in validate()
    with pytest.raises(ConfigError, match="^--optimizer must be adamw, sgd or lion$"):
        WithLion(optimizer="adam").validate()
    assert build_parser  # the parser takes its choices from the same place:
    p = argparse.ArgumentParser()
    from cnnkit.settings import add_flags

    add_flags(p, WithLion, ["optimizer"])
    assert p.parse_args(["--optimizer", "lion"]).optimizer == "lion"
    for kwargs, message in [(dict(warmup=1.0), "--warmup is a share of the steps, in [0, 1)"),
                            (dict(lr=0.0), "--lr must be positive"),
                            (dict(epochs=0), "--epochs must be at least 1"),
                            (dict(label_smoothing=1.0), "--label-smoothing must be in [0, 1)")]:
        with pytest.raises(ConfigError) as e:
            TrainConfig(**kwargs).validate()
        assert str(e.value) == message
    with pytest.raises(ConfigError, match="wrong type"):
        TrainConfig.from_dict({"epochs": "ten"}).validate()
    with pytest.raises(ConfigError, match="--strategy must be feature-extractor, freeze, full, gradual or fine-tune"):
        TransferOptions(model="m", strategy="fine-tuning").validate()
    with pytest.raises(ConfigError, match="--strategy feature-extractor"):
        TransferOptions(model="m", classifier="svm").validate()
