"""Keras Applications through Keras 3's PyTorch backend: `keras:ResNet50` (being built)."""

from __future__ import annotations

from torch import nn

from ..errors import ModelError


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    return []


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, dict]:
    raise ModelError(f"keras:{name}: Keras Applications are not wired into cnnkit yet")
