"""The one config object of `cnnkit train`: every field with its default and unit.

Each field is declared once, with its help, choices and range (cnnkit/settings.py): the
CLI flags and `validate()` follow from it. CLI flags and
`--config run.yaml` both fill it; an unknown key is rejected with a suggestion. Fields left as None are filled from the dataset's recipe
(train/recipes.py). The resolved config is saved as the run's `config.yaml`, so
`cnnkit train --config runs/x/config.yaml` re-runs it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..settings import check, setting

RECIPE_LEVELS = ("default", "best", "fast")


@dataclass
class TrainConfig:
    data: str = setting("digits", "dataset name, alias or image folder")
    model: str | None = setting(None, "registry name or layer spec (default: the dataset's recipe)")
    epochs: int | None = setting(None, "epochs to train (default: the recipe's)", at_least=1)
    batch_size: int | None = setting(None, "images per step; per process under torchrun", at_least=1)
    lr: float | None = setting(None, "peak learning rate of the schedule", above=0)
    optimizer: str = setting("adamw", "adamw, or sgd with Nesterov momentum 0.9", choices=("adamw", "sgd"))
    weight_decay: float | None = setting(None, "decoupled weight decay; never applied to norms and biases")
    schedule: str = setting("onecycle", "learning-rate schedule", choices=("onecycle", "cosine", "step", "constant"))
    warmup: float = setting(0.15, "share of all steps spent warming up (onecycle, cosine)",  # 0..1 of the steps
                            at_least=0, below=1, range_text="is a share of the steps, in [0, 1)")
    label_smoothing: float | None = setting(None, "label smoothing of the loss", at_least=0, below=1)
    augment: str | None = setting(None, "augmentation preset (default: the dataset's recipe)")
    val_fraction: float = setting(0.1, "share of train held out for validation (stratified)")
    limit: int | None = setting(None, "N training images only, stratified by class")
    fraction: float | None = setting(None, "stratified share of the training images")  # 0..1
    strict: bool = setting(False, "stop at an unreadable image instead of skipping and counting it")
    seed: int = setting(0, "seed of every random number generator")
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps")
    amp: str = setting("auto", "mixed precision (auto: chosen from measurements, see trainer.amp_dtype)",
                       choices=("auto", "bf16", "fp16", "off"))
    channels_last: bool | None = setting(None, "NHWC memory format (default: on wherever mixed precision is on)")
    compile: bool = setting(False, "torch.compile the model")
    sync_bn: bool = setting(False, "distributed: SyncBatchNorm across GPUs (train/distributed.py)")
    scale_lr: bool = setting(False, "distributed: multiply --lr by the number of processes (linear scaling rule)")
    grad_clip: float | None = setting(None, "max global gradient norm", above=0)
    ema: float | None = setting(None, "keep an EMA of the weights with this decay, e.g. 0.999 (0 = off)",
                                at_least=0, below=1, range_text="is a decay in [0, 1), e.g. 0.999", metavar="DECAY")
    patience: int = setting(0, "early stopping: stop after N epochs without a better val accuracy (0 = off)",
                            at_least=0, range_text="must be >= 0 (0 turns early stopping off)")
    tta: bool | None = setting(None, "flip test-time augmentation for the final val/test evaluation "
                                     "(default: the recipe's)")
    recipe: str = setting("default", "which of the dataset's recipes (default, best, fast) fills the unset settings",
                          choices=RECIPE_LEVELS)
    checkpoint_every: int = setting(0, "also checkpoint every N steps (0 = only at epoch ends)", at_least=0)
    deterministic: bool = setting(False, "deterministic algorithms (slower)")
    tensorboard: bool = setting(True, "write TensorBoard event files into the run directory (default: on)")
    out: str = setting("runs", "folder that holds the run directories")
    name: str | None = setting(None, "run directory name (default: DATA-DATE-TIME)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return dataclass_from_dict(cls, data, "the config")

    def updated(self, **changes: Any) -> TrainConfig:
        """A copy with the non-None `changes` applied."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        validate(self)


@dataclass
class LRFindOptions:
    """The range test's own settings (`cnnkit lr-find`; train/lr_find.py), besides the TrainConfig ones."""

    start_lr: float = setting(1e-6, "learning rate of the first step", above=0)
    end_lr: float = setting(1.0, "learning rate of the last step", above=0)
    steps: int = setting(100, "steps of the range test")  # range_test says why fewer than 2 fail
    out: str | None = setting(None, "folder for the plot and lr_find.json (default: runs/lr-find-DATA-TIME)")


def validate(settings) -> None:
    """Choices and ranges from the fields' metadata (settings.check); a wrong type is a ConfigError too."""
    try:
        check(settings)
    except TypeError as e:  # e.g. `epochs: ten` in a YAML config compared with a number
        raise ConfigError(f"a config value has the wrong type ({e}); numbers must be numbers, "
                          "e.g. epochs: 10") from e


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
