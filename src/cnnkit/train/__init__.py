"""Training: the config, the loop, schedules, checkpoints and the run directory."""

from .config import TrainConfig
from .trainer import EpochResult, Trainer, TrainState

__all__ = ["EpochResult", "TrainConfig", "TrainState", "Trainer"]
