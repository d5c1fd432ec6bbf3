"""The guide's layers: the spec language, shape inference, models built from specs."""

from .model import SpecNet
from .spec import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Pool,
    conv_output_size,
    infer_shapes,
    parse_spec,
    to_text,
)

__all__ = [
    "Activation", "BatchNorm", "Conv", "Dense", "Dropout", "Flatten", "GlobalPool", "Layer",
    "Pool", "SpecNet", "conv_output_size", "infer_shapes", "parse_spec", "to_text",
]
