"""Training checkpoints: one file, written atomically, loaded with weights_only=True.

It holds the model and optimizer states, the schedule's step, the grad scaler,
the RNG states and the run's history, so that `--resume` continues exactly where
the last checkpoint was taken. A damaged file names itself and what to do.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch

from ..errors import TrainingError
from ..fileio import atomic_path
from ..models.bundle import unwrap

VERSION = 1


def save_checkpoint(path: Path, model, optimizer, scheduler, scaler, state, ema=None) -> None:
    """Write everything `--resume` needs to one file; a crash leaves the previous file intact."""
    payload = {
        "version": VERSION,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "state": dataclasses.asdict(state),
        "ema": ema.state_dict() if ema is not None else None,
    }
    # Through a Python file object: torch.save given a path writes from C++, where a full disk
    # becomes a RuntimeError without its errno (fileio.atomic_path needs it to say "disk full").
    with atomic_path(path, needed=lambda: serialized_size(payload)) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


class _ByteCounter:
    """A file-like sink that keeps only the number of bytes written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def serialized_size(payload: dict) -> int:
    """The bytes torch.save writes for `payload`, counted without keeping them (for a full disk's message)."""
    counter = _ByteCounter()
    torch.save(payload, counter)
    return counter.size


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents, checked to be a cnnkit checkpoint (tensors only: weights_only=True)."""
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path}: the run never finished an epoch "
                            "(or --checkpoint-every steps); start it again without --resume")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as e:
        raise TrainingError(f"{path} is damaged and cannot be resumed from ({e})") from e
    if not isinstance(payload, dict) or payload.get("version") != VERSION:
        raise TrainingError(f"{path} is not a cnnkit checkpoint of version {VERSION}")
    return payload


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler, ema=None, payload: dict | None = None):
    """Restore the states saved by save_checkpoint; returns the TrainState (`payload`: read_checkpoint's,
    when the caller has read the file already)."""
    from .trainer import TrainState

    payload = payload if payload is not None else read_checkpoint(path)
    try:
        unwrap(model).load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise TrainingError(f"{path} does not match this model or optimizer ({str(e).splitlines()[0]}); "
                            "resume with the run's own config.yaml") from e
    if ema is not None:
        if payload.get("ema") is None:
            raise TrainingError(f"{path} holds no EMA weights, but this run has --ema on; "
                                "resume with the run's own config.yaml")
        ema.load_state_dict(payload["ema"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng_cpu"])
    if payload["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng_cuda"])
    return TrainState(**_current_state_keys(payload["state"]))


# Checkpoints written before the Task interface named the metric generically (and kept a finetune
# stage index, now derived from the epoch) still resume.
_RENAMED = {"best_val_accuracy": "best_val_score"}


def _current_state_keys(saved: dict) -> dict:
    from .trainer import TrainState

    known = {f.name for f in dataclasses.fields(TrainState)}
    state = {_RENAMED.get(k, k): v for k, v in saved.items()}
    partial = state.get("partial") or {}
    if "correct" in partial:
        state["partial"] = {("score" if k == "correct" else k): v for k, v in partial.items()}
    return {k: v for k, v in state.items() if k in known}
