"""The one config object of `cnnkit train`: every field with its default and unit.

CLI flags and `--config run.yaml` both fill it; an unknown key is rejected with a
suggestion. Fields left as None are filled from the dataset's recipe
(train/recipes.py). The resolved config is saved as the run's `config.yaml`, so
`cnnkit train --config runs/x/config.yaml` re-runs it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError


@dataclass
class TrainConfig:
    data: str = "digits"  # catalog name, alias or image folder
    model: str | None = None  # registry name or layer spec; None = the recipe's
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None  # peak learning rate of the schedule
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)
    weight_decay: float | None = None  # decoupled; never applied to norms and biases
    schedule: str = "onecycle"  # onecycle | cosine | step | constant
    warmup: float = 0.15  # share of all steps spent warming up (onecycle, cosine)
    label_smoothing: float | None = None
    augment: str | None = None  # augmentation preset; None = the dataset's
    val_fraction: float = 0.1  # share of train held out for validation (stratified)
    limit: int | None = None  # N training images only, stratified by class
    fraction: float | None = None  # stratified share of the training images
    strict: bool = False  # an unreadable image is an error instead of a skipped, counted file
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto | bf16 | fp16 | off  (auto: see trainer.amp_dtype, chosen from measurements)
    channels_last: bool | None = None  # None = auto: on wherever mixed precision is on
    compile: bool = False  # torch.compile the model
    sync_bn: bool = False  # distributed: SyncBatchNorm across GPUs (train/distributed.py)
    scale_lr: bool = False  # distributed: linear scaling rule, lr x number of processes (global batch)
    grad_clip: float | None = None  # max global gradient norm
    ema: float | None = None  # decay of an exponential moving average of the weights (e.g. 0.999); off if None/0
    patience: int = 0  # early stopping: stop after this many epochs without a better val accuracy (0 = off)
    tta: bool | None = None  # flip test-time augmentation for the final val/test evaluation; None = recipe
    recipe: str = "default"  # default | best | fast: which of the dataset's recipes fills the None fields
    checkpoint_every: int = 0  # also checkpoint every N steps (0 = only at epoch ends)
    deterministic: bool = False
    tensorboard: bool = True  # write TensorBoard event files into the run directory
    out: str = "runs"  # folder that holds the run directories
    name: str | None = None  # run directory name; None = <data>-<date>-<time>

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return dataclass_from_dict(cls, data, "the config")

    def updated(self, **changes: Any) -> TrainConfig:
        """A copy with the non-None `changes` applied."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        try:
            self._check()
        except TypeError as e:  # e.g. `epochs: ten` in a YAML config compared with a number
            raise ConfigError(f"a config value has the wrong type ({e}); numbers must be numbers, "
                              "e.g. epochs: 10") from e

    def _check(self) -> None:
        checks = [
            (self.epochs is None or self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size is None or self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.optimizer in ("adamw", "sgd"), "--optimizer must be adamw or sgd"),
            (self.schedule in ("onecycle", "cosine", "step", "constant"),
             "--schedule must be onecycle, cosine, step or constant"),
            (self.amp in ("auto", "bf16", "fp16", "off"), "--amp must be auto, bf16, fp16 or off"),
            (0.0 <= self.warmup < 1.0, "--warmup is a share of the steps, in [0, 1)"),
            (self.checkpoint_every >= 0, "--checkpoint-every must be >= 0"),
            (self.ema is None or 0.0 <= self.ema < 1.0, "--ema is a decay in [0, 1), e.g. 0.999"),
            (self.patience >= 0, "--patience must be >= 0 (0 turns early stopping off)"),
            (self.grad_clip is None or self.grad_clip > 0, "--grad-clip must be positive"),
            (self.label_smoothing is None or 0.0 <= self.label_smoothing < 1.0,
             "--label-smoothing must be in [0, 1)"),
            (self.recipe in ("default", "best", "fast"), "--recipe must be default, best or fast"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def dataclass_from_dict(cls, data: Any, what: str):
    """`cls(**data)` for a mapping read from a file; anything else, or an unknown key, is a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping of keys to values, not {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key {key!r} in {what}{hint}")
    return cls(**data)
