"""Choosing the device: CUDA, then Apple's MPS, then the CPU, unless the user says."""

from __future__ import annotations

import torch

from .errors import ConfigError


def pick_device(name: str | None = None) -> torch.device:
    """Return the device to train on; `name` may be auto, cpu, cuda, cuda:N or mps."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for CUDA, but no CUDA GPU is visible; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name} asked for MPS, which this machine lacks; use --device cpu")
    return device
