"""Hugging Face transformers image classifiers as a model source: `hf:microsoft/resnet-50` (being built)."""

from __future__ import annotations

from torch import nn

from ..errors import ModelError


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    return []


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, dict]:
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ModelError(f"hf:{name} needs Hugging Face transformers: pip install 'cnnkit[hf]'") from None
    raise ModelError(f"hf:{name}: transformers models are not wired into cnnkit yet")
